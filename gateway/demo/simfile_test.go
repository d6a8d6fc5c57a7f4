package demo

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
)

// simProblems returns the problems err holds as their messages.
func simProblems(t *testing.T, err error) []string {
	t.Helper()
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T); want config.Problems", err, err)
	}
	got := make([]string, len(ps))
	for i, p := range ps {
		got[i] = p.Error()
	}
	return got
}

func TestParseSimFile_Problems(t *testing.T) {
	const kinds = "no-reply, bad-crc, late, exception, garbage, truncated, wrong-slave"
	const meters = "\nmeters:\n  - {model: kpm33b, address: 1}\n"
	tests := []struct {
		name string
		file string
		want []string // every problem, in order; a want ending in "…" is a prefix
	}{
		{"empty", "", []string{"sim.yaml:1: file is empty; want a mapping with listen or port, and meters"}},
		{"comment only", "# nothing\n", []string{"sim.yaml:1: file is empty; want a mapping with listen or port, and meters"}},
		{"not YAML", "listen: tcp:x:1\nmeters: [\n", []string{"sim.yaml:2: not YAML: …"}},
		{"two documents", "listen: tcp::1" + meters + "---\nlisten: tcp::2\n", []string{"sim.yaml:4: a second YAML document; the file must hold one"}},
		{"a list", "- listen: tcp::1\n", []string{`sim.yaml:1: want a mapping of keys, got a list`}},
		{"nowhere to serve", "meters:\n  - {model: kpm33b, address: 1}\n", []string{
			"sim.yaml:1: want port (a serial device like /dev/ttyUSB1) or listen (tcp:HOST:PORT or rtu+tcp:HOST:PORT)"}},
		{"port and listen", "port: /dev/ttyUSB1\nlisten: tcp::1502" + meters, []string{
			"sim.yaml:2: listen: give port or listen, not both (port at line 1)"}},
		{"serial keys on TCP", "listen: tcp::1502\nbaud: 9600\nstop_bits: 2" + meters, []string{
			"sim.yaml:2: baud: applies to a serial port only (this bus listens on TCP)",
			"sim.yaml:3: stop_bits: applies to a serial port only (this bus listens on TCP)"}},
		{"listen scheme", "listen: udp:127.0.0.1:1502" + meters, []string{
			`sim.yaml:1: listen: want tcp:HOST:PORT or rtu+tcp:HOST:PORT, got "udp:127.0.0.1:1502"`}},
		{"listen without port", "listen: rtu+tcp:127.0.0.1" + meters, []string{
			`sim.yaml:1: listen: want rtu+tcp:HOST:PORT, got "rtu+tcp:127.0.0.1"`}},
		{"listen port number", "listen: tcp:127.0.0.1:70000" + meters, []string{
			`sim.yaml:1: listen: want a port number 0..65535, got "70000"`}},
		{"listen empty", "listen: ''" + meters, []string{"sim.yaml:1: listen: must not be empty"}},
		{"port not a device", "port: 10.0.0.7:502" + meters, []string{
			`sim.yaml:1: port: want a device path like /dev/ttyUSB1, got "10.0.0.7:502" (a TCP address goes in listen)`}},
		{"line settings", "port: /dev/ttyUSB1\nbaud: 9601\nparity: e\nstop_bits: 3" + meters, []string{
			"sim.yaml:2: baud: want one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, got 9601",
			`sim.yaml:3: parity: want one of N, E, O, got "e"`,
			"sim.yaml:4: stop_bits: want one of 1, 2, got 3"}},
		{"wire", "listen: tcp::1\nwire:\n  baud: 1000\n  bits_per_char: 9\n  turnaround: -1s\n  bits: 11" + meters, []string{
			"sim.yaml:3: wire.baud: want one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, got 1000",
			"sim.yaml:4: wire.bits_per_char: want 10..12, got 9",
			"sim.yaml:5: wire.turnaround: want 0s..10s, got -1s",
			"sim.yaml:6: wire.bits: unknown key (allowed: baud, bits_per_char, turnaround)"}},
		{"wire not a mapping", "listen: tcp::1\nwire: 9600" + meters, []string{
			`sim.yaml:2: wire: want a mapping of keys, got "9600"`}},
		{"unknown and duplicate top-level keys", "listen: tcp::1\nlisten: tcp::2\nmeter: []\nzzz: 1" + meters, []string{
			"sim.yaml:2: listen: duplicate key (first at line 1)",
			"sim.yaml:3: meter: unknown key (did you mean meters?)",
			"sim.yaml:4: zzz: unknown key (allowed: baud, config, listen, meters, mqtt, parity, port, stop_bits, wire)"}},
		{"no meters", "listen: tcp::1\nmeters: []\n", []string{"sim.yaml:2: meters: at least one meter is required"}},
		{"meters left out", "listen: tcp::1\n", []string{"sim.yaml:1: meters: at least one meter is required"}},
		{"model", "listen: tcp::1\nmeters:\n  - address: 1\n  - {model: sdm999, address: 2}\n  - {model: '', address: 3}\n", []string{
			"sim.yaml:3: meters[0].model: required, not set",
			`sim.yaml:4: meters[1].model: unknown model "sdm999" (models: ` + strings.Join(meter.BuiltinNames(), ", ") + ")",
			"sim.yaml:5: meters[2].model: must not be empty"}},
		{"wrong types", "listen: tcp::1\nmeters:\n  - model: kpm33b\n    address: one\n    base_w: [1]\n    remote: maybe\n    late_delay: 500\n    import_wh: 1.5\n", []string{
			`sim.yaml:4: meters[0].address: want an integer, got "one"`,
			"sim.yaml:5: meters[0].base_w: want a number, got a list",
			`sim.yaml:6: meters[0].remote: want true or false, got "maybe"`,
			`sim.yaml:7: meters[0].late_delay: want a duration like 500ms, 5s or 1m, got "500"`,
			`sim.yaml:8: meters[0].import_wh: want an integer, got "1.5"`}},
		{"address forms", "listen: tcp::1\nmeters:\n" +
			"  - {model: kpm33b}\n" +
			"  - {model: kpm33b, address: 1, addresses: [2]}\n" +
			"  - {model: kpm33b, from: 3}\n" +
			"  - {model: kpm33b, to: 4}\n" +
			"  - {model: kpm33b, from: 9, to: 5}\n" +
			"  - {model: kpm33b, addresses: []}\n" +
			"  - model: kpm33b\n    to: 20\n    address: 10\n", []string{
			"sim.yaml:3: meters[0].address: required, not set (or addresses: [1, 2], or from: 1 and to: 32)",
			"sim.yaml:4: meters[1].address: give one of address, addresses, or from and to", // one line: no last
			"sim.yaml:5: meters[2].to: required with from",
			"sim.yaml:6: meters[3].from: required with to",
			"sim.yaml:7: meters[4].to: want an address >= from (9), got 5",
			"sim.yaml:8: meters[5].addresses: want at least one address",
			"sim.yaml:11: meters[6].address: give one of address, addresses, or from and to"}},
		{"address range", "listen: tcp::1\nmeters:\n  - {model: kpm33b, address: 0}\n  - {model: kpm33b, addresses: [1, 248]}\n  - {model: kpm33b, from: 0, to: 300}\n", []string{
			"sim.yaml:3: meters[0].address: want 1..247, got 0",
			"sim.yaml:4: meters[1].addresses[1]: want 1..247, got 248",
			"sim.yaml:5: meters[2].from: want 1..247, got 0",
			"sim.yaml:5: meters[2].to: want 1..247, got 300"}},
		{"addresses unique", "listen: tcp::1\nmeters:\n" +
			"  - {model: kpm33b, from: 1, to: 8}\n" +
			"  - {model: kpm33b, address: 20}\n" +
			"  - {model: kpm33b, from: 5, to: 20}\n" +
			"  - {model: kpm33b, addresses: [30, 31, 30, 2]}\n", []string{
			"sim.yaml:5: meters[2].from: address 5-8 already used by meters[0] (line 3)",
			"sim.yaml:5: meters[2].from: address 20 already used by meters[1] (line 4)",
			"sim.yaml:6: meters[3].addresses: address 30 given more than once",
			"sim.yaml:6: meters[3].addresses: address 2 already used by meters[0] (line 3)"}},
		{"load", "listen: tcp::1\nmeters:\n  - {model: kpm33b, address: 1, load_w: 100, base_w: 200}\n" +
			"  - {model: kpm33b, address: 2, base_w: -1, import_wh: -5}\n  - {model: kpm33b, address: 3, load_w: .nan}\n", []string{
			"sim.yaml:3: meters[0].base_w: give load_w (a constant load) or base_w (the mall profile), not both",
			"sim.yaml:4: meters[1].base_w: want a number >= 0, got -1",
			"sim.yaml:4: meters[1].import_wh: want an integer >= 0, got -5",
			"sim.yaml:5: meters[2].load_w: want a number, got NaN"}},
		{"relay, late delay, exception code", "listen: tcp::1\nmeters:\n  - model: kpm33b\n    address: 1\n    relay: off\n    late_delay: 0s\n    exception_code: 0\n", []string{
			`sim.yaml:5: meters[0].relay: want one of closed, open, got "off"`,
			"sim.yaml:6: meters[0].late_delay: want 1ms..1m, got 0s",
			"sim.yaml:7: meters[0].exception_code: want 1..255, got 0"}},
		{"fault kinds and rates", "listen: tcp::1\nmeters:\n  - model: kpm33b\n    address: 1\n    faults:\n      no-reply: 1.5\n      timeout: 0.1\n      late: -0.1\n      garbage: lots\n", []string{
			"sim.yaml:6: meters[0].faults.no-reply: want a rate 0..1, got 1.5",
			"sim.yaml:7: meters[0].faults.timeout: unknown fault kind (kinds: " + kinds + ")",
			"sim.yaml:8: meters[0].faults.late: want a rate 0..1, got -0.1",
			`sim.yaml:9: meters[0].faults.garbage: want a number, got "lots"`}},
		{"fault rates add up", "listen: tcp::1\nmeters:\n  - model: kpm33b\n    address: 1\n    faults: {no-reply: 0.5, bad-crc: 0.3, late: 0.3}\n", []string{
			"sim.yaml:5: meters[0].faults: rates add up to 1.1; want at most 1"}},
		{"faults not a mapping", "listen: tcp::1\nmeters:\n  - {model: kpm33b, address: 1, faults: [no-reply]}\n", []string{
			"sim.yaml:3: meters[0].faults: want a mapping, got a list"}},
		{"meter not a mapping", "listen: tcp::1\nmeters:\n  - kpm33b\n", []string{
			`sim.yaml:3: meters[0]: want a mapping of keys, got "kpm33b"`}},
		{"unknown meter key", "listen: tcp::1\nmeters:\n  - {model: kpm33b, address: 1, seeds: 1, colour: red}\n", []string{
			"sim.yaml:3: meters[0].seeds: unknown key (did you mean seed?)",
			"sim.yaml:3: meters[0].colour: unknown key (allowed: address, addresses, base_w, exception_code, faults, from, id, ids, import_wh, late_delay, load_w, model, relay, remote, seed, to)"}},
		{"duplicate key in a merged mapping, reported once", "listen: tcp::1\nmeters:\n  - &m {model: kpm33b, model: kpm33b, address: 1}\n  - {<<: *m, address: 2}\n", []string{
			"sim.yaml:3: meters[0].model: duplicate key (first at line 3)"}},
		{"bad value in a merged mapping, reported once", "listen: tcp::1\nmeters:\n  - &m {model: kpm33b, address: 1, remote: maybe}\n  - {<<: *m, address: 2}\n", []string{
			`sim.yaml:3: meters[0].remote: want true or false, got "maybe"`}},
		{"merge of a scalar", "listen: tcp::1\nmeters:\n  - {<<: 1, model: kpm33b, address: 1}\n", []string{
			`sim.yaml:3: meters[0]: << merges mappings, got "1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseSimFile("sim.yaml", t.TempDir(), []byte(tt.file), nil)
			if err == nil {
				t.Fatalf("parse = %+v, nil; want problems", o)
			}
			if !reflect.DeepEqual(o, SimOptions{}) {
				t.Errorf("options with problems = %+v; want zero", o)
			}
			got := simProblems(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i, w := range tt.want {
				if p, ok := strings.CutSuffix(w, "…"); ok && strings.HasPrefix(got[i], p) {
					continue
				}
				if got[i] != w {
					t.Errorf("problem %d = %q; want %q", i, got[i], w)
				}
			}
		})
	}
}

func TestParseSimFile_Options(t *testing.T) {
	const file = `# a bus of four meters
listen: rtu+tcp:127.0.0.1:0
wire: {turnaround: 20ms}
meters:
  - &shop
    model: kpm33b
    from: 1
    to: 3
    base_w: 2000
    seed: 10
    import_wh: 5000
  - <<: *shop
    from: ~
    to: ~
    address: 9
    relay: open
    remote: true
    faults: {no-reply: 0.25, late: 0.5, garbage: ~}
    late_delay: 2s
    exception_code: 6
  - {model: kpm33b, addresses: [20, 21], load_w: -500}
`
	o, err := parseSimFile("sim.yaml", t.TempDir(), []byte(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Listen != "rtu+tcp:127.0.0.1:0" || o.Port != "" {
		t.Errorf("listen %q port %q; want rtu+tcp:127.0.0.1:0 and no port", o.Listen, o.Port)
	}
	if want := (sim.WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: 20 * time.Millisecond}); o.Wire != want {
		t.Errorf("wire = %+v; want %+v", o.Wire, want)
	}
	if got, want := o.Summary(), "6 kpm33b meter(s) at address 1-3,9,20,21"; got != want {
		t.Errorf("summary = %q; want %q", got, want)
	}

	// The profile, seed and counter the file gives, seen through the built
	// meters at a fixed time.
	noon := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	clock := sim.WithClock(func() time.Time { return noon })
	type want struct {
		addr        int
		power       float64
		importWh    int64
		relayClosed bool
		remote      bool
		faults      map[sim.FaultKind]float64
		late        time.Duration
		code        byte
	}
	wants := []want{
		{addr: 1, power: sim.MallProfile(2000, 10)(noon), importWh: 5000, relayClosed: true},
		{addr: 2, power: sim.MallProfile(2000, 11)(noon), importWh: 5000, relayClosed: true},
		{addr: 3, power: sim.MallProfile(2000, 12)(noon), importWh: 5000, relayClosed: true},
		{addr: 9, power: 0, importWh: 5000, remote: true,
			faults: map[sim.FaultKind]float64{sim.NoReply: 0.25, sim.Late: 0.5}, late: 2 * time.Second, code: 6},
		{addr: 20, power: -500, relayClosed: true},
		{addr: 21, power: -500, relayClosed: true},
	}
	if len(o.Meters) != len(wants) {
		t.Fatalf("got %d meters; want %d", len(o.Meters), len(wants))
	}
	for i, w := range wants {
		m := o.Meters[i]
		if m.Address != w.addr || m.Model == nil || m.Model.Name != "kpm33b" {
			t.Errorf("meter %d: address %d model %v; want %d kpm33b", i, m.Address, m.Model, w.addr)
		}
		if !reflect.DeepEqual(m.Faults, w.faults) || m.LateDelay != w.late || m.ExceptionCode != w.code {
			t.Errorf("meter %d: faults %v late %v code %d; want %v %v %d", w.addr, m.Faults, m.LateDelay, m.ExceptionCode, w.faults, w.late, w.code)
		}
		sm, err := m.Build(clock)
		if err != nil {
			t.Fatalf("build meter %d: %v", w.addr, err)
		}
		s := sm.Snapshot()
		if math.Abs(s.Power-w.power) > 0.001 {
			t.Errorf("meter %d: power %v W; want %v", w.addr, s.Power, w.power)
		}
		if s.ImportWh != w.importWh || s.RelayClosed != w.relayClosed || s.Remote != w.remote {
			t.Errorf("meter %d: import %d Wh relay closed %v remote %v; want %d %v %v",
				w.addr, s.ImportWh, s.RelayClosed, s.Remote, w.importWh, w.relayClosed, w.remote)
		}
	}
}

func TestParseSimFile_SerialPort(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantLine modbus.Config
		wantWire sim.WireTiming
	}{
		{"defaults", "port: /dev/ttyUSB1\nmeters: [{model: kpm33b, address: 1}]\n",
			modbus.Config{Kind: modbus.RTU, Address: "/dev/ttyUSB1", Baud: 9600, Parity: 'E', StopBits: 1}, sim.WireTiming{}},
		{"wire follows the line", "port: /dev/ttyS1\nbaud: 19200\nparity: N\nstop_bits: 2\nwire: {}\nmeters: [{model: kpm33b, address: 1}]\n",
			modbus.Config{Kind: modbus.RTU, Address: "/dev/ttyS1", Baud: 19200, Parity: 'N', StopBits: 2},
			sim.WireTiming{Baud: 19200, BitsPerChar: 11, Turnaround: 10 * time.Millisecond}},
		{"wire of its own", "port: /dev/ttyS1\nparity: N\nwire: {baud: 2400, bits_per_char: 12, turnaround: 0s}\nmeters: [{model: kpm33b, address: 1}]\n",
			modbus.Config{Kind: modbus.RTU, Address: "/dev/ttyS1", Baud: 9600, Parity: 'N', StopBits: 1},
			sim.WireTiming{Baud: 2400, BitsPerChar: 12}},
		{"8N1 is ten bits", "port: /dev/ttyS1\nparity: N\nwire: {turnaround: 5ms}\nmeters: [{model: kpm33b, address: 1}]\n",
			modbus.Config{Kind: modbus.RTU, Address: "/dev/ttyS1", Baud: 9600, Parity: 'N', StopBits: 1},
			sim.WireTiming{Baud: 9600, BitsPerChar: 10, Turnaround: 5 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseSimFile("sim.yaml", t.TempDir(), []byte(tt.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if o.Port != tt.wantLine.Address || o.Line != tt.wantLine {
				t.Errorf("port %q line %+v; want %+v", o.Port, o.Line, tt.wantLine)
			}
			if o.Wire != tt.wantWire {
				t.Errorf("wire = %+v; want %+v", o.Wire, tt.wantWire)
			}
		})
	}
}

// customModel is a configuration with one custom model, pump-meter.
const customModel = `site: {name: Sim test}
storage: {path: /tmp/unused.db}
buses: [{name: b1, port: /dev/ttyUSB0}]
models:
  - name: pump-meter
    registers:
      - {quantity: import_kwh, address: 0x0000, type: float32}
`

func TestLoadSimFile_Config(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("etc/models.yaml", customModel)
	write("etc/broken.yaml", "site: {name: x}\nbogus: 1\n")
	good := write("etc/sim.yaml", "config: models.yaml\nlisten: tcp::0\nmeters:\n  - {model: pump-meter, address: 1}\n  - {model: kpm33b, address: 2}\n")
	broken := write("sim-broken.yaml", "config: etc/broken.yaml\nlisten: tcp::0\nmeters:\n  - {model: pump-meter, address: 1}\n")
	noModel := write("sim-nomodel.yaml", "listen: tcp::0\nmeters:\n  - {model: pump-meter, address: 1}\n")

	// The config key is read relative to the sim file, not the working directory.
	o, err := LoadSimFile(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.Summary(), "1 pump-meter meter(s) at address 1; 1 kpm33b meter(s) at address 2"; got != want {
		t.Errorf("summary = %q; want %q", got, want)
	}

	custom, err := config.Load(filepath.Join(dir, "etc/models.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSimFile(noModel, custom.Catalogue); err != nil {
		t.Errorf("with -c's models: %v", err)
	}

	tests := []struct {
		name   string
		path   string
		models *meter.Catalogue
		want   []string
	}{
		{"config and -c", good, custom.Catalogue, []string{
			good + ":1: config: -c names a configuration too; give the custom models in one place"}},
		{"broken config", broken, nil, []string{
			filepath.Join(dir, "etc/broken.yaml") + ":2: bogus: unknown key…",
			broken + ":1: config: " + filepath.Join(dir, "etc/broken.yaml") + " does not load (…"}},
		{"custom model without config", noModel, nil, []string{
			noModel + `:3: meters[0].model: unknown model "pump-meter" (models: ` + strings.Join(meter.BuiltinNames(), ", ") + ")"}},
		{"missing file", filepath.Join(dir, "none.yaml"), nil, []string{
			filepath.Join(dir, "none.yaml") + ": cannot read: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSimFile(tt.path, tt.models)
			got := simProblems(t, err)
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					if p, ok := strings.CutSuffix(w, "…"); ok && strings.HasPrefix(g, p) || g == w {
						found = true
					}
				}
				if !found {
					t.Errorf("problems lack %q:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// TestLoadSimFile_Example keeps configs/sim.example.yaml loadable and what
// its comments say it is.
func TestLoadSimFile_Example(t *testing.T) {
	o, err := LoadSimFile("../../configs/sim.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Listen != "tcp:127.0.0.1:1502" || !o.Wire.Enabled() {
		t.Errorf("listen %q wire %+v; want tcp:127.0.0.1:1502 with wire timing", o.Listen, o.Wire)
	}
	models := make(map[string]int)
	faulty, open := 0, 0
	for i, m := range o.Meters {
		if m.Address != i+1 {
			t.Errorf("meter %d at address %d; want %d", i, m.Address, i+1)
		}
		models[m.Model.Name]++
		if len(m.Faults) > 0 {
			faulty++
		}
		if m.RelayOpen {
			open++
		}
		if _, err := m.Build(); err != nil {
			t.Errorf("meter %d: %v", m.Address, err)
		}
	}
	if models["kpm33b"] != 32 || len(o.Meters) != 36 || faulty != 4 || open != 1 {
		t.Errorf("models %v, %d faulty, %d open; want 32 kpm33b of 36, 4 faulty, 1 open", models, faulty, open)
	}
}

func TestSimMeter_Build(t *testing.T) {
	tests := []struct {
		name    string
		m       SimMeter
		wantErr error
	}{
		{"address 0", SimMeter{Model: meter.KPM33B(), Address: 0}, sim.ErrAddress},
		{"address 248", SimMeter{Model: meter.KPM33B(), Address: 248}, sim.ErrAddress},
		{"no model", SimMeter{Address: 1}, sim.ErrModel},
		{"rates over 1", SimMeter{Model: meter.KPM33B(), Address: 1, Faults: map[sim.FaultKind]float64{sim.NoReply: 0.6, sim.Late: 0.6}}, sim.ErrFault},
		{"good", SimMeter{Model: meter.KPM33B(), Address: 1, Faults: map[sim.FaultKind]float64{sim.NoReply: 0.5}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.Build()
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Build() = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSimOptions_Summary(t *testing.T) {
	kpm, pump := meter.KPM33B(), &meter.Model{Name: "pump"}
	tests := []struct {
		meters []SimMeter
		want   string
	}{
		{nil, "no meters"},
		{[]SimMeter{{Model: kpm, Address: 1}, {Model: kpm, Address: 2}}, "2 kpm33b meter(s) at address 1,2"},
		{[]SimMeter{{Model: kpm, Address: 3}, {Model: pump, Address: 9}, {Model: kpm, Address: 1}, {Model: kpm, Address: 2}, {Model: kpm, Address: 7}},
			"4 kpm33b meter(s) at address 1-3,7; 1 pump meter(s) at address 9"},
	}
	for _, tt := range tests {
		if got := (SimOptions{Meters: tt.meters}).Summary(); got != tt.want {
			t.Errorf("Summary() = %q; want %q", got, tt.want)
		}
	}
}

// TestSimulate_PerMeterFaults serves a file's meters over Modbus TCP and
// reads them: the meter whose file says no-reply: 1 never answers, its
// neighbour always does, and the listen form --port takes works too.
func TestSimulate_PerMeterFaults(t *testing.T) {
	o, err := parseSimFile("sim.yaml", t.TempDir(), []byte("listen: tcp://127.0.0.1:0\nmeters:\n"+
		"  - {model: kpm33b, address: 1, load_w: 0, import_wh: 777000}\n"+
		"  - {model: kpm33b, address: 2, faults: {no-reply: 1}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	o.Ready = func(where string) { ready <- where }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Simulate(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Simulate after cancel = %v; want nil", err)
		}
	}()
	var where string
	select {
	case where = <-ready:
	case err := <-done:
		t.Fatalf("Simulate = %v before ready", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready within 5s")
	}
	addr, ok := strings.CutPrefix(where, "tcp://")
	if !ok {
		t.Fatalf("ready at %q; want tcp://…", where)
	}
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	regs, err := tr.Client(1).ReadHoldingRegisters(ctx, 0x0001, 1)
	if err != nil || len(regs) != 2 || regs[1] != 1 {
		t.Errorf("meter 1's address register = % x, %v; want 00 01", regs, err)
	}
	if _, err := tr.Client(2).ReadHoldingRegisters(ctx, 0x0001, 1); !errors.Is(err, modbus.ErrTimeout) {
		t.Errorf("meter 2 with no-reply 1 = %v; want a timeout", err)
	}
}
