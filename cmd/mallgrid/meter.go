package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/gateway/tech"
)

// exitInterrupted is the status of a command stopped by Ctrl-C or SIGTERM
// before it finished (a scan), as shells report a process ended by SIGINT.
const exitInterrupted = 130

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
	f.DurationVar(&p.Timeout, "timeout", 500*time.Millisecond, "reply deadline per request (a request with no reply is sent twice)")
	f.StringVarP(&p.config, "config", "c", "", "configuration whose custom models to use (optional)")
	f.StringVar(&p.LockDir, "lock-dir", modbus.DefaultLockDir(), "directory of serial ports' lock files (LCK..ttyUSB0), where the gateway holds its ports")
}

// checkPort insists on --port for a command that talks to the line itself.
func (p *portFlags) checkPort() error {
	if p.Port.Port == "" {
		return errors.New(`required flag "port" not set`)
	}
	return nil
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
	if err := p.checkPort(); err != nil {
		return nil, nil, err
	}
	if err := tech.CheckAddress(addr); err != nil {
		return nil, nil, err
	}
	m, err := p.model(model)
	if err != nil {
		return nil, nil, err
	}
	t, err := tech.Open(p.Port)
	if err != nil {
		return nil, nil, tech.Explain(err, p.Port.Port, 0)
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
		api    apiFlags
	)
	cmd := &cobra.Command{
		Use:   "read --port DEV --addr A --model M [--json] | read METER-ID -c FILE",
		Short: "Read every value of one meter, with units (on the line, or through the running gateway)",
		Long: "Read every value of one meter, with units.\n\n" +
			"With --port the command is the line's master for a moment: it fails at once if the gateway\n" +
			"(or another program) holds the port. With a meter id and -c FILE it asks the running gateway\n" +
			"instead (GET /api/v1/meters/ID at the configuration's http.listen, or --url), and prints the\n" +
			"gateway's latest reading with its age: the line keeps one master.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return api.readLive(cmd, pf.config, args[0], asJSON)
			}
			t, m, err := pf.open(addr, model)
			if err != nil {
				return err
			}
			defer t.Close()
			rd, err := tech.Read(cmd.Context(), t, byte(addr), m)
			if err != nil {
				return tech.Explain(fmt.Errorf("read %s at address %d on %s: %w", m.Name, addr, pf.Port.Port, err), pf.Port.Port, addr)
			}
			if asJSON {
				return tech.WriteReadingJSON(cmd.OutOrStdout(), m, byte(addr), rd)
			}
			return tech.WriteReading(cmd.OutOrStdout(), m, byte(addr), rd)
		},
	}
	pf.register(cmd)
	api.register(cmd)
	cmd.Flags().IntVar(&addr, "addr", 1, "meter address 1..247")
	cmd.Flags().StringVar(&model, "model", "kpm33b", "meter model")
	cmd.Flags().IntVar(&pf.function, "function", 0, "read with function code 3 or 4 instead of the model's (what meter scan reports)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// apiFlags say how to reach the running gateway's API.
type apiFlags struct {
	url   string
	token string
}

func (a *apiFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.url, "url", "", "the gateway's address, e.g. http://127.0.0.1:8080 (default: from http.listen in -c FILE)")
	cmd.Flags().StringVar(&a.token, "token", "", "API token (one of http.tokens), if the gateway asks for one")
}

// readLive prints meter id's latest reading from the running gateway.
func (a *apiFlags) readLive(cmd *cobra.Command, config, id string, asJSON bool) error {
	for _, name := range []string{"port", "addr", "model", "function"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s is for reading on the line; a meter id is read through the gateway (give one or the other)", name)
		}
	}
	base := a.url
	if base == "" {
		if config == "" {
			return errors.New("reading meter " + id + " through the gateway needs -c FILE (for http.listen) or --url")
		}
		cfg, err := loadConfig(config)
		if err != nil {
			return err
		}
		if base, err = tech.APIBase(cfg.HTTP.Listen); err != nil {
			return err
		}
	}
	m, err := tech.FetchMeter(cmd.Context(), base, a.token, id)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	return tech.WriteLive(cmd.OutOrStdout(), m, time.Now())
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
				return tech.Explain(fmt.Errorf("relay %s at address %d: %w", args[0], addr, err), pf.Port.Port, addr)
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
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "scan --port DEV [--from 1 --to 247] [--json]",
		Short: "List the addresses that answer on a bus, with the model each looks like",
		Long: "List the addresses that answer on a bus, with the model each looks like.\n\n" +
			"Progress goes to stderr (address n of N, found so far) at least once a second. Ctrl-C stops\n" +
			"the scan: what was found up to the last address probed to the end is printed, and the exit\n" +
			"status is 130. An empty address costs two timeouts (a request with no reply is sent twice).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.checkPort(); err != nil {
				return err
			}
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
				return tech.Explain(err, pf.Port.Port, 0)
			}
			defer t.Close()
			res, err := tech.Scan(cmd.Context(), t, from, to, models, scanProgress(cmd.ErrOrStderr()))
			interrupted := err != nil && cmd.Context().Err() != nil
			if err != nil && !interrupted {
				if res.Done > 0 {
					writeScan(cmd.OutOrStdout(), res, false) // what it found before the link failed
				}
				return tech.Explain(fmt.Errorf("scan %s, after %d addresses: %w", pf.Port.Port, res.Done, err), pf.Port.Port, 0)
			}
			if asJSON {
				if err := writeScanJSON(cmd.OutOrStdout(), res, interrupted); err != nil {
					return err
				}
			} else {
				writeScan(cmd.OutOrStdout(), res, interrupted)
			}
			if interrupted {
				return &exitError{code: exitInterrupted, err: errors.New("mallgrid: scan interrupted")}
			}
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().IntVar(&from, "from", 1, "first address")
	cmd.Flags().IntVar(&to, "to", 247, "last address")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().Lookup("timeout").DefValue = "200ms"
	_ = cmd.Flags().Set("timeout", "200ms")
	return cmd
}

// scanProgress writes a progress line to w as each address is probed (an
// empty address takes about two timeouts, so lines come at least that
// often), and a last line at the end.
func scanProgress(w io.Writer) func(tech.Progress) {
	return func(p tech.Progress) {
		if p.Address == 0 {
			fmt.Fprintf(w, "scan: %d of %d addresses probed, %d answered\n", p.Done, p.Total, p.Found)
			return
		}
		fmt.Fprintf(w, "scan: address %d (%d of %d), %d found so far\n", p.Address, p.Done+1, p.Total, p.Found)
	}
}

func writeScan(w io.Writer, res tech.ScanResult, interrupted bool) {
	for _, f := range res.Found {
		switch {
		case f.Model != "" && f.Function != 0:
			fmt.Fprintf(w, "%3d  %-8s import %s kWh  (answers on FC%02d: set function: %d)\n", f.Address, f.Model, f.Import, f.Function, f.Function)
		case f.Model != "":
			fmt.Fprintf(w, "%3d  %-8s import %s kWh\n", f.Address, f.Model, f.Import)
		default:
			fmt.Fprintf(w, "%3d  ?         %s\n", f.Address, f.Note)
		}
	}
	if interrupted {
		if res.Done == 0 {
			fmt.Fprintf(w, "interrupted before address %d was probed to the end: nothing scanned\n", res.From)
			return
		}
		fmt.Fprintf(w, "interrupted: %d of %d addresses answered (%d..%d scanned, %d..%d not)\n",
			len(res.Found), res.Done, res.From, res.From+res.Done-1, res.From+res.Done, res.To)
		return
	}
	fmt.Fprintf(w, "%d of %d addresses answered\n", len(res.Found), res.Done)
}

// scanJSON is the --json form of a scan.
type scanJSON struct {
	From        int          `json:"from"`
	To          int          `json:"to"`
	Scanned     int          `json:"scanned"` // addresses probed to the end, from From on
	Interrupted bool         `json:"interrupted"`
	Found       []tech.Found `json:"found"`
}

func writeScanJSON(w io.Writer, res tech.ScanResult, interrupted bool) error {
	out := scanJSON{From: res.From, To: res.To, Scanned: res.Done, Interrupted: interrupted, Found: res.Found}
	if out.Found == nil {
		out.Found = []tech.Found{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
