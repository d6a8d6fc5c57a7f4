package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/gateway/replay"
)

func newBillingCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "billing", Short: "Billing tools: replay a captured meter log through validation and pricing"}
	cmd.AddCommand(newBillingReplayCmd())
	return cmd
}

func newBillingReplayCmd() *cobra.Command {
	var (
		opt    replay.Options
		tz     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "replay --format compere-mqtt FILE --tariff flat:PRICE [--json]",
		Short: "Run a captured meter log through the daemon's counter validation and pricing",
		Long: `Replay reads a captured log (one MQTT message a line, "TOPIC {json}" or bare
JSON), validates every MQTT_ENY_NOW counter as the daemon does (zero frames,
duplicates, lower counters, spikes) and prices the accepted energy, per meter.

The log has no gateway time. Readings are applied in log order. A message is
timed by its meter's clock when that is plausible (from 2020 on, within the
log's span of the median clock), else by the latest plausible clock seen, as
the gateway would have stamped its arrival; a meter's times only go forward.
A log with no plausible clock is timed as line index × --period.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return fmt.Errorf("--tz %q: %w", tz, err)
			}
			opt.Location = loc
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			res, err := replay.Log(f, opt)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if !asJSON {
				return res.WriteText(cmd.OutOrStdout())
			}
			// The array is for scripts; lines that were no message are for
			// the person running it.
			for _, m := range res.Malformed {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s (skipped)\n", args[0], m)
			}
			return res.WriteJSON(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Format, "format", "compere-mqtt", "log format: compere-mqtt")
	f.StringVar(&opt.Tariff, "tariff", "", "tariff: flat:PRICE in yuan per kWh, e.g. flat:0.8523 (required)")
	f.IntVar(&opt.RatedCurrent, "rated-current", replay.DefaultRatedCurrent, "rated current of every meter's circuit in A, for the spike limit (three phases)")
	f.DurationVar(&opt.Period, "period", replay.DefaultPeriod, "the meters' typical upload period")
	f.StringVar(&tz, "tz", "Asia/Shanghai", "time zone the meters' clocks are set in")
	f.BoolVar(&asJSON, "json", false, "print one JSON array, an object per meter")
	_ = cmd.MarkFlagRequired("tariff")
	return cmd
}
