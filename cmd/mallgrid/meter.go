package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/gateway/tech"
)

// portFlags are the bus flags every meter command takes.
type portFlags struct {
	tech.Port
	config   string // optional YAML whose custom models join the catalogue
	function int    // 3 or 4 overrides the model's function code; 0 keeps it
}

func (p *portFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.Port.Port, "port", "", "serial device, tcp://host:port or rtu+tcp://host:port (required)")
	f.IntVar(&p.Baud, "baud", 9600, "baud rate (serial)")
	f.StringVar(&p.Parity, "parity", "E", "parity N, E or O (serial; KPM33B factory setting is E)")
	f.IntVar(&p.StopBits, "stop-bits", 1, "stop bits 1 or 2 (serial)")
	f.DurationVar(&p.Timeout, "timeout", 500*time.Millisecond, "reply deadline per request")
	f.StringVarP(&p.config, "config", "c", "", "configuration whose custom models to use (optional)")
	_ = cmd.MarkFlagRequired("port")
}

// model looks up name, with the --function override applied: a DDSU666
// that answers on FC03 is read as the configuration's function: 3 would.
func (p *portFlags) model(name string) (*meter.Model, error) {
	cat, err := p.catalogue()
	if err != nil {
		return nil, err
	}
	m, err := cat.Lookup(name)
	if err != nil || p.function == 0 {
		return m, err
	}
	return m.WithFunction(uint8(p.function))
}

func (p *portFlags) catalogue() (*meter.Catalogue, error) {
	if p.config == "" {
		return meter.NewCatalogue()
	}
	cfg, err := loadConfig(p.config)
	if err != nil {
		return nil, err
	}
	return cfg.Catalogue, nil
}

// open checks the address, looks the model up and opens the port: what
// every command addressing one meter does first.
func (p *portFlags) open(addr int, model string) (*modbus.Transport, *meter.Model, error) {
	if err := tech.CheckAddress(addr); err != nil {
		return nil, nil, err
	}
	m, err := p.model(model)
	if err != nil {
		return nil, nil, err
	}
	t, err := tech.Open(p.Port)
	if err != nil {
		return nil, nil, err
	}
	return t, m, nil
}

func newMeterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "meter", Short: "Commission meters: read, scan a bus, switch a relay"}
	cmd.AddCommand(newMeterReadCmd(), newMeterScanCmd(), newMeterRelayCmd())
	return cmd
}

func newMeterReadCmd() *cobra.Command {
	var (
		pf     portFlags
		addr   int
		model  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "read --port DEV --addr A --model M [--json]",
		Short: "Read every value of one meter, with units",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, m, err := pf.open(addr, model)
			if err != nil {
				return err
			}
			defer t.Close()
			rd, err := tech.Read(cmd.Context(), t, byte(addr), m)
			if err != nil {
				return fmt.Errorf("read %s at address %d on %s: %w", m.Name, addr, pf.Port.Port, err)
			}
			if asJSON {
				return tech.WriteReadingJSON(cmd.OutOrStdout(), m, byte(addr), rd)
			}
			return tech.WriteReading(cmd.OutOrStdout(), m, byte(addr), rd)
		},
	}
	pf.register(cmd)
	cmd.Flags().IntVar(&addr, "addr", 1, "meter address 1..247")
	cmd.Flags().StringVar(&model, "model", "kpm33b", "meter model")
	cmd.Flags().IntVar(&pf.function, "function", 0, "read with function code 3 or 4 instead of the model's (what meter scan reports)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newMeterRelayCmd() *cobra.Command {
	var (
		pf    portFlags
		addr  int
		model string
	)
	cmd := &cobra.Command{
		Use:       "relay --port DEV --addr A --model M on|off",
		Short:     "Switch a meter's relay (on = power restored), then read it back",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			t, m, err := pf.open(addr, model)
			if err != nil {
				return err
			}
			defer t.Close()
			state, err := tech.Relay(cmd.Context(), t, byte(addr), m, args[0] == "on")
			if err != nil {
				return fmt.Errorf("relay %s at address %d: %w", args[0], addr, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "relay of %s at address %d is %s (read back)\n", m.Name, addr, state)
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().IntVar(&addr, "addr", 1, "meter address 1..247")
	cmd.Flags().StringVar(&model, "model", "kpm33b", "meter model")
	cmd.Flags().IntVar(&pf.function, "function", 0, "read with function code 3 or 4 instead of the model's (what meter scan reports)")
	return cmd
}

func newMeterScanCmd() *cobra.Command {
	var (
		pf       portFlags
		from, to int
	)
	cmd := &cobra.Command{
		Use:   "scan --port DEV [--from 1 --to 247]",
		Short: "List the addresses that answer on a bus, with the model each looks like",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tech.CheckAddress(from); err != nil {
				return err
			}
			if err := tech.CheckAddress(to); err != nil {
				return err
			}
			if from > to {
				return fmt.Errorf("--from %d is after --to %d", from, to)
			}
			cat, err := pf.catalogue()
			if err != nil {
				return err
			}
			var models []*meter.Model
			for _, n := range cat.Names() {
				m, _ := cat.Lookup(n)
				models = append(models, m)
			}
			t, err := tech.Open(pf.Port)
			if err != nil {
				return err
			}
			defer t.Close()
			found, err := tech.Scan(cmd.Context(), t, from, to, models, nil)
			for _, f := range found {
				switch {
				case f.Model != "" && f.Function != 0:
					fmt.Fprintf(cmd.OutOrStdout(), "%3d  %-8s import %s kWh  (answers on FC%02d: set function: %d)\n", f.Address, f.Model, f.Import, f.Function, f.Function)
				case f.Model != "":
					fmt.Fprintf(cmd.OutOrStdout(), "%3d  %-8s import %s kWh\n", f.Address, f.Model, f.Import)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%3d  ?         %s\n", f.Address, f.Note)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d addresses answered\n", len(found), to-from+1)
			return err
		},
	}
	pf.register(cmd)
	cmd.Flags().IntVar(&from, "from", 1, "first address")
	cmd.Flags().IntVar(&to, "to", 247, "last address")
	cmd.Flags().Lookup("timeout").DefValue = "200ms"
	_ = cmd.Flags().Set("timeout", "200ms")
	return cmd
}
