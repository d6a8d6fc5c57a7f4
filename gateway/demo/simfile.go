package demo

import (
	"errors"
	"maps"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
	"mallgrid/gateway/yamlcheck"
)

// LoadSimFile reads the sim file at path — one simulated bus: where to
// serve it, optional wire timing, and its meters; configs/sim.example.yaml
// documents every key — decodes it strictly and validates it. A file with
// an mqtt key is Compere MQTT meters, clients of its broker, instead
// (configs/sim-mqtt.example.yaml).
//
// The model names a meter may use are the built-in ones plus the custom
// models of a configuration: models when it is not nil (the -c flag), else
// those of the file the sim file's config key names (relative to the sim
// file's directory). A sim file with a config key given models as well is a
// problem: the models must come from one place.
//
// On any problem, including a file that cannot be read, it returns zero
// SimOptions and a *config.Problems holding every problem found, each
// printing as FILE:LINE: key: problem like `mallgrid config check`; the
// problems of a configuration the config key names come with them. The
// returned options have no Log and no Ready; the caller sets those.
func LoadSimFile(path string, models *meter.Catalogue) (SimOptions, error) {
	data, err := yamlcheck.ReadFile(path)
	if err != nil {
		return SimOptions{}, err
	}
	return parseSimFile(path, filepath.Dir(path), data, models)
}

// simFile is the sim file's schema. A key left out keeps the zero value;
// the report tells it from a zero written out (Report.Given), and the
// defaults are applied in simCheck.options.
type simFile struct {
	Config   string         `yaml:"config"`
	Port     string         `yaml:"port"`
	Baud     int            `yaml:"baud"`
	Parity   string         `yaml:"parity"`
	StopBits int            `yaml:"stop_bits"`
	Listen   string         `yaml:"listen"`
	Wire     simFileWire    `yaml:"wire"`
	MQTT     simFileMQTT    `yaml:"mqtt"`
	Meters   []simFileMeter `yaml:"meters"`
}

type simFileWire struct {
	Baud        int           `yaml:"baud"`
	BitsPerChar int           `yaml:"bits_per_char"`
	Turnaround  time.Duration `yaml:"turnaround"`
}

type simFileMeter struct {
	Model     string   `yaml:"model"`
	Address   int      `yaml:"address"`
	Addresses []int    `yaml:"addresses"`
	ID        string   `yaml:"id"`  // an MQTT meter's
	IDs       []string `yaml:"ids"` // MQTT meters'

	From          int                `yaml:"from"`
	To            int                `yaml:"to"`
	LoadW         float64            `yaml:"load_w"`
	BaseW         float64            `yaml:"base_w"`
	Seed          int64              `yaml:"seed"`
	ImportWh      int64              `yaml:"import_wh"`
	Relay         string             `yaml:"relay"`
	Remote        bool               `yaml:"remote"`
	Faults        map[string]float64 `yaml:"faults"`
	LateDelay     time.Duration      `yaml:"late_delay"`
	ExceptionCode int                `yaml:"exception_code"`
}

// simBauds are the baud rates a sim file accepts: those of real meters, as
// the configuration's buses take them.
func simBauds() []int { return []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200} }

// parseSimFile is LoadSimFile for bytes already read; name is the FILE of
// messages and dir the directory a relative config key is taken from.
func parseSimFile(name, dir string, data []byte, models *meter.Catalogue) (SimOptions, error) {
	r := simCheck{yamlcheck.NewReport(name)}
	var f simFile
	dec := yamlcheck.Decoder{Want: "a mapping with listen or port, and meters"}
	if !dec.Decode(r.Report, data, &f) {
		return SimOptions{}, r.Err()
	}
	o := r.options(&f, dir, models)
	if err := r.Err(); err != nil {
		return SimOptions{}, err
	}
	return o, nil
}

// options validates f and turns it into SimOptions, reporting every problem.
func (r simCheck) options(f *simFile, dir string, models *meter.Catalogue) SimOptions {
	if r.Given("mqtt") {
		return r.mqttOptions(f)
	}
	var o SimOptions
	cat := r.catalogue(f, dir, models)
	o.Port, o.Line, o.Listen = r.place(f)
	if r.Given("wire") {
		o.Wire = r.wire(f, o.Line)
	}
	if len(f.Meters) == 0 {
		r.Add("meters", "at least one meter is required")
	}
	taken := make(map[int]string) // address → key of the meter entry that has it
	for i := range f.Meters {
		o.Meters = append(o.Meters, r.meters(&f.Meters[i], yamlcheck.Index("meters", i), cat, taken)...)
	}
	return o
}

// catalogue returns the models meters may use, or nil when they are not
// known (a configuration with problems): then no model is called unknown.
func (r simCheck) catalogue(f *simFile, dir string, models *meter.Catalogue) *meter.Catalogue {
	if !r.Given("config") {
		if models != nil {
			return models
		}
		cat, err := meter.NewCatalogue()
		if err != nil {
			r.Add("", "built-in models: %v", err)
			return nil
		}
		return cat
	}
	if !r.Need("config", f.Config) {
		return nil
	}
	if models != nil {
		r.Add("config", "-c names a configuration too; give the custom models in one place")
		return nil
	}
	path := f.Config
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	// The environment's overrides are left out: only the models are
	// wanted, and a stray MALLGRID_ variable must not stop the simulator.
	cfg, err := config.Load(path, nil)
	if err != nil {
		var ps config.Problems
		if !errors.As(err, &ps) {
			r.Add("config", "%s: %v", path, err)
			return nil
		}
		r.Add("config", "%s does not load (%d problem(s))", path, len(ps))
		r.Append(ps...)
		return nil
	}
	return cfg.Catalogue
}

// place checks where the bus is served: a serial port with its line
// settings, or a TCP listen address.
func (r simCheck) place(f *simFile) (port string, line modbus.Config, listen string) {
	switch {
	case r.Given("port") && r.Given("listen"):
		r.Add("listen", "give port or listen, not both (port at line %d)", r.Line("port"))
	case !r.Given("port") && !r.Given("listen"):
		r.Add("", "want port (a serial device like /dev/ttyUSB1) or listen (tcp:HOST:PORT or rtu+tcp:HOST:PORT)")
	}
	if r.Given("listen") {
		// A serial setting on a TCP bus would do nothing; saying so beats
		// ignoring it.
		for _, k := range []string{"baud", "parity", "stop_bits"} {
			if r.Given(k) {
				r.Add(k, "applies to a serial port only (this bus listens on TCP)")
			}
		}
		if r.Need("listen", f.Listen) {
			r.listen(f.Listen)
		}
		return "", modbus.Config{}, f.Listen
	}
	line = modbus.Config{Kind: modbus.RTU, Baud: 9600, Parity: 'E', StopBits: 1}
	if r.Given("baud") && r.IntOneOf("baud", f.Baud, simBauds()...) {
		line.Baud = f.Baud
	}
	if r.Given("parity") && r.OneOf("parity", f.Parity, "N", "E", "O") {
		line.Parity = f.Parity[0]
	}
	if r.Given("stop_bits") && r.IntOneOf("stop_bits", f.StopBits, 1, 2) {
		line.StopBits = f.StopBits
	}
	if r.Given("port") && r.Need("port", f.Port) && !strings.HasPrefix(f.Port, "/") {
		hint := ""
		if strings.Contains(f.Port, ":") {
			hint = " (a TCP address goes in listen)"
		}
		r.Add("port", "want a device path like /dev/ttyUSB1, got %q%s", f.Port, hint)
	}
	line.Address = f.Port
	return f.Port, line, ""
}

func (r simCheck) listen(s string) {
	scheme, addr, err := splitListen(s)
	if err != nil {
		r.Add("listen", "want tcp:HOST:PORT or rtu+tcp:HOST:PORT, got %q", s)
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		r.Add("listen", "want %s:HOST:PORT, got %q", scheme, s)
		return
	}
	// Port 0 takes any free port, which the ready line then shows.
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.Add("listen", "want a port number 0..65535, got %q", port)
	}
}

// wire returns the wire timing the file asks for. Left out, the baud rate
// and character length are those of the port (9600 8E1 when listening) and
// the turnaround that of a real meter.
func (r simCheck) wire(f *simFile, line modbus.Config) sim.WireTiming {
	w := sim.WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: simTurnaround}
	if line.Baud != 0 {
		w.Baud, w.BitsPerChar = line.Baud, bitsPerChar(line)
	}
	if r.Given("wire.baud") && r.IntOneOf("wire.baud", f.Wire.Baud, simBauds()...) {
		w.Baud = f.Wire.Baud
	}
	if r.Given("wire.bits_per_char") && r.IntIn("wire.bits_per_char", f.Wire.BitsPerChar, 10, 12) {
		w.BitsPerChar = f.Wire.BitsPerChar
	}
	if r.Given("wire.turnaround") && r.DurationIn("wire.turnaround", f.Wire.Turnaround, 0, 10*time.Second) {
		w.Turnaround = f.Wire.Turnaround
	}
	return w
}

// meters checks one entry of meters and returns a SimMeter per address it
// gives. taken records every address given so far.
func (r simCheck) meters(m *simFileMeter, p string, cat *meter.Catalogue, taken map[int]string) []SimMeter {
	for _, k := range []string{"id", "ids"} {
		if r.Given(p + "." + k) {
			r.Add(p+"."+k, "applies to an MQTT meter only (a file with mqtt.broker); a Modbus meter has an address")
		}
	}
	var model *meter.Model
	if r.Need(p+".model", m.Model) && cat != nil {
		if mm, err := cat.Lookup(m.Model); err == nil {
			model = mm
		} else {
			r.Add(p+".model", "unknown model %q (models: %s)", m.Model, strings.Join(cat.Names(), ", "))
		}
	}
	addrs, addrKey := r.addresses(m, p)
	// One problem per earlier entry clashed with, not one per address: a
	// range given twice is one mistake.
	var owners []string
	dups := make(map[string][]int)
	for _, a := range addrs {
		first, dup := taken[a]
		if !dup {
			taken[a] = p
			continue
		}
		if _, seen := dups[first]; !seen {
			owners = append(owners, first)
		}
		dups[first] = append(dups[first], a)
	}
	for _, owner := range owners {
		if owner == p {
			r.Add(addrKey, "address %s given more than once", addressList(dups[owner]))
			continue
		}
		r.Add(addrKey, "address %s already used by %s (line %d)", addressList(dups[owner]), owner, r.Line(owner))
	}

	var opts []sim.Option
	switch {
	case r.Given(p+".load_w") && r.Given(p+".base_w"):
		r.Add(p+".base_w", "give load_w (a constant load) or base_w (the mall profile), not both")
	case r.Given(p + ".load_w"):
		if r.finite(p+".load_w", m.LoadW) {
			opts = append(opts, sim.WithProfile(sim.Constant(m.LoadW)))
		}
	case r.Given(p + ".base_w"):
		if r.finite(p+".base_w", m.BaseW) && m.BaseW < 0 {
			r.Add(p+".base_w", "want a number >= 0, got %v", m.BaseW)
		}
		opts = append(opts, sim.WithBasePower(m.BaseW))
	}
	if r.Given(p + ".import_wh") {
		if m.ImportWh < 0 {
			r.Add(p+".import_wh", "want an integer >= 0, got %d", m.ImportWh)
		}
		opts = append(opts, sim.WithImportWh(m.ImportWh))
	}
	if r.Given(p + ".relay") {
		r.OneOf(p+".relay", m.Relay, "closed", "open")
	}
	faults := r.faults(m.Faults, p+".faults")
	if r.Given(p + ".late_delay") {
		r.DurationIn(p+".late_delay", m.LateDelay, time.Millisecond, time.Minute)
	}
	if r.Given(p + ".exception_code") {
		r.IntIn(p+".exception_code", m.ExceptionCode, 1, 255)
	}

	out := make([]SimMeter, 0, len(addrs))
	for i, a := range addrs {
		sm := SimMeter{
			Model:         model,
			Address:       a,
			Options:       slices.Clip(opts),
			RelayOpen:     m.Relay == "open",
			Remote:        m.Remote,
			Faults:        maps.Clone(faults), // each meter its own: a caller may change one
			LateDelay:     m.LateDelay,
			ExceptionCode: byte(m.ExceptionCode),
		}
		// Meters of one entry differ in noise, serial number and faults,
		// as they would if each had its address as its seed (the default).
		if r.Given(p + ".seed") {
			sm.Options = append(sm.Options, sim.WithSeed(m.Seed+int64(i)))
		}
		out = append(out, sm)
	}
	return out
}

// addresses returns the addresses a meters entry gives — address,
// addresses, or from and to — and the key to blame for them.
func (r simCheck) addresses(m *simFileMeter, p string) ([]int, string) {
	// forms holds, per way of giving addresses, a key of it in the file.
	var forms []string
	for _, keys := range [][]string{{"address"}, {"addresses"}, {"from", "to"}} {
		for _, k := range keys {
			if r.Given(p + "." + k) {
				forms = append(forms, k)
				break
			}
		}
	}
	switch len(forms) {
	case 0:
		r.Add(p+".address", "required, not set (or addresses: [1, 2], or from: 1 and to: 32)")
		return nil, p
	case 1:
	default:
		// Blame the key written last: the one added to a finished entry.
		last := forms[0]
		for _, k := range forms[1:] {
			if r.Line(p+"."+k) > r.Line(p+"."+last) {
				last = k
			}
		}
		r.Add(p+"."+last, "give one of address, addresses, or from and to")
		return nil, p
	}
	switch forms[0] {
	case "address":
		if r.IntIn(p+".address", m.Address, 1, 247) {
			return []int{m.Address}, p + ".address"
		}
	case "addresses":
		if len(m.Addresses) == 0 {
			r.Add(p+".addresses", "want at least one address")
			return nil, p
		}
		var addrs []int
		for j, a := range m.Addresses {
			if r.IntIn(yamlcheck.Index(p+".addresses", j), a, 1, 247) {
				addrs = append(addrs, a)
			}
		}
		return addrs, p + ".addresses"
	case "from", "to":
		okFrom := r.Given(p+".from") && r.IntIn(p+".from", m.From, 1, 247)
		okTo := r.Given(p+".to") && r.IntIn(p+".to", m.To, 1, 247)
		for _, k := range []string{"from", "to"} {
			if !r.Given(p + "." + k) {
				r.Add(p+"."+k, "required with %s", map[string]string{"from": "to", "to": "from"}[k])
			}
		}
		if !okFrom || !okTo {
			return nil, p
		}
		if m.To < m.From {
			r.Add(p+".to", "want an address >= from (%d), got %d", m.From, m.To)
			return nil, p
		}
		var addrs []int
		for a := m.From; a <= m.To; a++ {
			addrs = append(addrs, a)
		}
		return addrs, p + ".from"
	}
	return nil, p
}

// faults checks a meter's fault rates and returns them by kind.
func (r simCheck) faults(rates map[string]float64, p string) map[sim.FaultKind]float64 {
	if len(rates) == 0 {
		return nil
	}
	kinds := make(map[string]sim.FaultKind)
	var names []string
	for _, k := range sim.FaultKinds() {
		kinds[k.String()] = k
		names = append(names, k.String())
	}
	out := make(map[sim.FaultKind]float64)
	sum, ok := 0.0, true
	for _, name := range slices.Sorted(maps.Keys(rates)) {
		rate, key := rates[name], p+"."+name
		kind, known := kinds[name]
		switch {
		case !known:
			r.Add(key, "unknown fault kind (kinds: %s)", strings.Join(names, ", "))
			ok = false
		case !(rate >= 0 && rate <= 1):
			r.Add(key, "want a rate 0..1, got %v", rate)
			ok = false
		default:
			out[kind] = rate
			sum += rate
		}
	}
	// A little slack for rates like 0.1 + 0.2 that add up to a hair over
	// what they say, as sim.Meter.SetFaultRates allows.
	if ok && sum > 1+1e-9 {
		r.Add(p, "rates add up to %g; want at most 1", sum)
	}
	return out
}

// simCheck validates a decoded sim file, recording its problems in the
// report it extends.
type simCheck struct{ *yamlcheck.Report }

func (r simCheck) finite(key string, val float64) bool {
	if math.IsNaN(val) || math.IsInf(val, 0) {
		r.Add(key, "want a number, got %v", val)
		return false
	}
	return true
}
