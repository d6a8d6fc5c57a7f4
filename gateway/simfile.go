package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
)

// LoadSimFile reads the sim file at path — one simulated bus: where to
// serve it, optional wire timing, and its meters; configs/sim.example.yaml
// documents every key — decodes it strictly and validates it.
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
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() // the path is already the FILE of the message
		}
		return SimOptions{}, &config.Problems{{File: path, Msg: "cannot read: " + msg}}
	}
	return parseSimFile(path, filepath.Dir(path), data, models)
}

// simFile is the sim file's schema. A key left out keeps the zero value;
// simReport.set tells it from a zero written out, and the defaults are
// applied in simReport.options.
type simFile struct {
	Config   string         `yaml:"config"`
	Port     string         `yaml:"port"`
	Baud     int            `yaml:"baud"`
	Parity   string         `yaml:"parity"`
	StopBits int            `yaml:"stop_bits"`
	Listen   string         `yaml:"listen"`
	Wire     simFileWire    `yaml:"wire"`
	Meters   []simFileMeter `yaml:"meters"`
}

type simFileWire struct {
	Baud        int           `yaml:"baud"`
	BitsPerChar int           `yaml:"bits_per_char"`
	Turnaround  time.Duration `yaml:"turnaround"`
}

type simFileMeter struct {
	Model         string             `yaml:"model"`
	Address       int                `yaml:"address"`
	Addresses     []int              `yaml:"addresses"`
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
	r := newSimReport(name)
	root := r.parse(data)
	if root == nil {
		return SimOptions{}, r.result()
	}
	r.lines[""] = root.Line
	var f simFile
	r.decode(root, "", reflect.ValueOf(&f).Elem(), 0)
	o := r.options(&f, dir, models)
	if len(r.probs) > 0 {
		return SimOptions{}, r.result()
	}
	return o, nil
}

// options validates f and turns it into SimOptions, reporting every problem.
func (r *simReport) options(f *simFile, dir string, models *meter.Catalogue) SimOptions {
	var o SimOptions
	cat := r.catalogue(f, dir, models)
	o.Port, o.Line, o.Listen = r.place(f)
	if r.set["wire"] {
		o.Wire = r.wire(f, o.Line)
	}
	if len(f.Meters) == 0 {
		r.add("meters", "at least one meter is required")
	}
	taken := make(map[int]string) // address → key of the meter entry that has it
	for i := range f.Meters {
		o.Meters = append(o.Meters, r.meters(&f.Meters[i], simIndex("meters", i), cat, taken)...)
	}
	return o
}

// catalogue returns the models meters may use, or nil when they are not
// known (a configuration with problems): then no model is called unknown.
func (r *simReport) catalogue(f *simFile, dir string, models *meter.Catalogue) *meter.Catalogue {
	if !r.set["config"] {
		if models != nil {
			return models
		}
		cat, err := meter.NewCatalogue()
		if err != nil {
			r.add("", "built-in models: %v", err)
			return nil
		}
		return cat
	}
	if !r.need("config", f.Config) {
		return nil
	}
	if models != nil {
		r.add("config", "-c names a configuration too; give the custom models in one place")
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
			r.add("config", "%s: %v", path, err)
			return nil
		}
		r.add("config", "%s does not load (%d problem(s))", path, len(ps))
		r.probs = append(r.probs, ps...)
		return nil
	}
	return cfg.Catalogue
}

// place checks where the bus is served: a serial port with its line
// settings, or a TCP listen address.
func (r *simReport) place(f *simFile) (port string, line modbus.Config, listen string) {
	switch {
	case r.set["port"] && r.set["listen"]:
		r.add("listen", "give port or listen, not both (port at line %d)", r.line("port"))
	case !r.set["port"] && !r.set["listen"]:
		r.add("", "want port (a serial device like /dev/ttyUSB1) or listen (tcp:HOST:PORT or rtu+tcp:HOST:PORT)")
	}
	if r.set["listen"] {
		// A serial setting on a TCP bus would do nothing; saying so beats
		// ignoring it.
		for _, k := range []string{"baud", "parity", "stop_bits"} {
			if r.set[k] {
				r.add(k, "applies to a serial port only (this bus listens on TCP)")
			}
		}
		if r.need("listen", f.Listen) {
			r.listen(f.Listen)
		}
		return "", modbus.Config{}, f.Listen
	}
	line = modbus.Config{Kind: modbus.RTU, Baud: 9600, Parity: 'E', StopBits: 1}
	if r.set["baud"] && r.intOneOf("baud", f.Baud, simBauds()...) {
		line.Baud = f.Baud
	}
	if r.set["parity"] && r.oneOf("parity", f.Parity, "N", "E", "O") {
		line.Parity = f.Parity[0]
	}
	if r.set["stop_bits"] && r.intOneOf("stop_bits", f.StopBits, 1, 2) {
		line.StopBits = f.StopBits
	}
	if r.set["port"] && r.need("port", f.Port) && !strings.HasPrefix(f.Port, "/") {
		hint := ""
		if strings.Contains(f.Port, ":") {
			hint = " (a TCP address goes in listen)"
		}
		r.add("port", "want a device path like /dev/ttyUSB1, got %q%s", f.Port, hint)
	}
	line.Address = f.Port
	return f.Port, line, ""
}

func (r *simReport) listen(s string) {
	scheme, addr, err := splitListen(s)
	if err != nil {
		r.add("listen", "want tcp:HOST:PORT or rtu+tcp:HOST:PORT, got %q", s)
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		r.add("listen", "want %s:HOST:PORT, got %q", scheme, s)
		return
	}
	// Port 0 takes any free port, which the ready line then shows.
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.add("listen", "want a port number 0..65535, got %q", port)
	}
}

// wire returns the wire timing the file asks for. Left out, the baud rate
// and character length are those of the port (9600 8E1 when listening) and
// the turnaround that of a real meter.
func (r *simReport) wire(f *simFile, line modbus.Config) sim.WireTiming {
	w := sim.WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: simTurnaround}
	if line.Baud != 0 {
		w.Baud, w.BitsPerChar = line.Baud, bitsPerChar(line)
	}
	if r.set["wire.baud"] && r.intOneOf("wire.baud", f.Wire.Baud, simBauds()...) {
		w.Baud = f.Wire.Baud
	}
	if r.set["wire.bits_per_char"] && r.intIn("wire.bits_per_char", f.Wire.BitsPerChar, 10, 12) {
		w.BitsPerChar = f.Wire.BitsPerChar
	}
	if r.set["wire.turnaround"] && r.durationIn("wire.turnaround", f.Wire.Turnaround, 0, 10*time.Second) {
		w.Turnaround = f.Wire.Turnaround
	}
	return w
}

// meters checks one entry of meters and returns a SimMeter per address it
// gives. taken records every address given so far.
func (r *simReport) meters(m *simFileMeter, p string, cat *meter.Catalogue, taken map[int]string) []SimMeter {
	var model *meter.Model
	if r.need(p+".model", m.Model) && cat != nil {
		if mm, err := cat.Lookup(m.Model); err == nil {
			model = mm
		} else {
			r.add(p+".model", "unknown model %q (models: %s)", m.Model, strings.Join(cat.Names(), ", "))
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
			r.add(addrKey, "address %s given more than once", addressList(dups[owner]))
			continue
		}
		r.add(addrKey, "address %s already used by %s (line %d)", addressList(dups[owner]), owner, r.line(owner))
	}

	var opts []sim.Option
	switch {
	case r.set[p+".load_w"] && r.set[p+".base_w"]:
		r.add(p+".base_w", "give load_w (a constant load) or base_w (the mall profile), not both")
	case r.set[p+".load_w"]:
		if r.finite(p+".load_w", m.LoadW) {
			opts = append(opts, sim.WithProfile(sim.Constant(m.LoadW)))
		}
	case r.set[p+".base_w"]:
		if r.finite(p+".base_w", m.BaseW) && m.BaseW < 0 {
			r.add(p+".base_w", "want a number >= 0, got %v", m.BaseW)
		}
		opts = append(opts, sim.WithBasePower(m.BaseW))
	}
	if r.set[p+".import_wh"] {
		if m.ImportWh < 0 {
			r.add(p+".import_wh", "want an integer >= 0, got %d", m.ImportWh)
		}
		opts = append(opts, sim.WithImportWh(m.ImportWh))
	}
	if r.set[p+".relay"] {
		r.oneOf(p+".relay", m.Relay, "closed", "open")
	}
	faults := r.faults(m.Faults, p+".faults")
	if r.set[p+".late_delay"] {
		r.durationIn(p+".late_delay", m.LateDelay, time.Millisecond, time.Minute)
	}
	if r.set[p+".exception_code"] {
		r.intIn(p+".exception_code", m.ExceptionCode, 1, 255)
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
		if r.set[p+".seed"] {
			sm.Options = append(sm.Options, sim.WithSeed(m.Seed+int64(i)))
		}
		out = append(out, sm)
	}
	return out
}

// addresses returns the addresses a meters entry gives — address,
// addresses, or from and to — and the key to blame for them.
func (r *simReport) addresses(m *simFileMeter, p string) ([]int, string) {
	// forms holds, per way of giving addresses, a key of it in the file.
	var forms []string
	for _, keys := range [][]string{{"address"}, {"addresses"}, {"from", "to"}} {
		for _, k := range keys {
			if r.set[p+"."+k] {
				forms = append(forms, k)
				break
			}
		}
	}
	switch len(forms) {
	case 0:
		r.add(p+".address", "required, not set (or addresses: [1, 2], or from: 1 and to: 32)")
		return nil, p
	case 1:
	default:
		// Blame the key written last: the one added to a finished entry.
		last := forms[0]
		for _, k := range forms[1:] {
			if r.line(p+"."+k) > r.line(p+"."+last) {
				last = k
			}
		}
		r.add(p+"."+last, "give one of address, addresses, or from and to")
		return nil, p
	}
	switch forms[0] {
	case "address":
		if r.intIn(p+".address", m.Address, 1, 247) {
			return []int{m.Address}, p + ".address"
		}
	case "addresses":
		if len(m.Addresses) == 0 {
			r.add(p+".addresses", "want at least one address")
			return nil, p
		}
		var addrs []int
		for j, a := range m.Addresses {
			if r.intIn(simIndex(p+".addresses", j), a, 1, 247) {
				addrs = append(addrs, a)
			}
		}
		return addrs, p + ".addresses"
	case "from", "to":
		okFrom := r.set[p+".from"] && r.intIn(p+".from", m.From, 1, 247)
		okTo := r.set[p+".to"] && r.intIn(p+".to", m.To, 1, 247)
		for _, k := range []string{"from", "to"} {
			if !r.set[p+"."+k] {
				r.add(p+"."+k, "required with %s", map[string]string{"from": "to", "to": "from"}[k])
			}
		}
		if !okFrom || !okTo {
			return nil, p
		}
		if m.To < m.From {
			r.add(p+".to", "want an address >= from (%d), got %d", m.From, m.To)
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
func (r *simReport) faults(rates map[string]float64, p string) map[sim.FaultKind]float64 {
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
			r.add(key, "unknown fault kind (kinds: %s)", strings.Join(names, ", "))
			ok = false
		case !(rate >= 0 && rate <= 1):
			r.add(key, "want a rate 0..1, got %v", rate)
			ok = false
		default:
			out[kind] = rate
			sum += rate
		}
	}
	// A little slack for rates like 0.1 + 0.2 that add up to a hair over
	// what they say, as sim.Meter.SetFaultRates allows.
	if ok && sum > 1+1e-9 {
		r.add(p, "rates add up to %g; want at most 1", sum)
	}
	return out
}

// simReport collects a sim file's problems and knows, for every key path,
// its line. It mirrors gateway/config's report, whose helpers are not
// exported; the messages are the same so that both files read alike.
type simReport struct {
	file      string
	lines     map[string]int  // key path → line of the key ("" → the document)
	set       map[string]bool // key present in the file with a non-null value
	bad       map[string]bool // key whose value could not be decoded
	probs     config.Problems
	reported  map[*yaml.Node]bool // nodes with a problem already: merged ones are met again
	budget    int                 // nodes left to visit
	exhausted bool                // the budget ran out; reported once
}

// Limits against files that alias themselves, as in gateway/config.
const (
	simMaxDepth = 32
	simMaxNodes = 1 << 20
)

func newSimReport(file string) *simReport {
	return &simReport{
		file:     file,
		lines:    make(map[string]int),
		set:      make(map[string]bool),
		bad:      make(map[string]bool),
		reported: make(map[*yaml.Node]bool),
		budget:   simMaxNodes,
	}
}

// result returns the problems sorted by line.
func (r *simReport) result() error {
	ps := slices.Clone(r.probs)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return &ps
}

// add records a problem with key at its line, unless the key's value (or
// an enclosing one) already failed to decode: one message per mistake.
func (r *simReport) add(key, format string, args ...any) {
	for k := key; ; k = simParent(k) {
		if r.bad[k] {
			return
		}
		if k == "" {
			break
		}
	}
	r.at(r.line(key), key, format, args...)
}

// atNode records a problem with node n, once however often n is merged in.
func (r *simReport) atNode(n *yaml.Node, key, format string, args ...any) {
	if r.reported[n] {
		return
	}
	r.reported[n] = true
	r.at(n.Line, key, format, args...)
}

// at records a problem at an explicit line.
func (r *simReport) at(line int, key, format string, args ...any) {
	r.probs = append(r.probs, config.Problem{File: r.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of key, or of the nearest enclosing key present in
// the file: a missing key is reported where it should have been.
func (r *simReport) line(key string) int {
	for k := key; ; k = simParent(k) {
		if l, ok := r.lines[k]; ok {
			return l
		}
		if k == "" {
			return 0
		}
	}
}

func (r *simReport) need(key, val string) bool {
	if val != "" {
		return true
	}
	if r.set[key] {
		r.add(key, "must not be empty")
	} else {
		r.add(key, "required, not set")
	}
	return false
}

func (r *simReport) oneOf(key, val string, allowed ...string) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	r.add(key, "want one of %s, got %q", strings.Join(allowed, ", "), val)
	return false
}

func (r *simReport) intOneOf(key string, val int, allowed ...int) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = strconv.Itoa(a)
	}
	r.add(key, "want one of %s, got %d", strings.Join(s, ", "), val)
	return false
}

func (r *simReport) intIn(key string, val, lo, hi int) bool {
	if lo <= val && val <= hi {
		return true
	}
	r.add(key, "want %d..%d, got %d", lo, hi, val)
	return false
}

func (r *simReport) durationIn(key string, val, lo, hi time.Duration) bool {
	if lo <= val && val <= hi {
		return true
	}
	r.add(key, "want %s..%s, got %s", simShortDuration(lo), simShortDuration(hi), simShortDuration(val))
	return false
}

// simShortDuration prints 1m rather than 1m0s, as gateway/config does.
func simShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func (r *simReport) finite(key string, val float64) bool {
	if math.IsNaN(val) || math.IsInf(val, 0) {
		r.add(key, "want a number, got %v", val)
		return false
	}
	return true
}

// simParent returns the enclosing key path: meters[3].faults.late →
// meters[3].faults → meters[3] → meters → "". A fault kind's name holds a
// dash but no dot, so the last dot or bracket is the boundary.
func simParent(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func simJoin(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func simIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parse returns the root node of the file's one document, or nil after
// reporting why there is none.
func (r *simReport) parse(data []byte) *yaml.Node {
	const empty = "file is empty; want a mapping with listen or port, and meters"
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.at(1, "", empty)
		} else {
			line, msg := simYAMLError(err)
			r.at(line, "", "not YAML: %s", msg)
		}
		return nil
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			r.at(1, "", empty)
			return nil
		}
		root = doc.Content[0]
	}
	if simIsNull(root) {
		r.at(root.Line, "", empty)
		return nil
	}
	// A second document would be ignored: the technician would edit a part
	// of the file that changes nothing.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		line, msg := simYAMLError(err)
		r.at(line, "", "not YAML: %s", msg)
	case len(next.Content) > 0 && !simIsNull(next.Content[0]):
		r.at(next.Line, "", "a second YAML document; the file must hold one")
	}
	return root
}

var simYAMLLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// simYAMLError splits a yaml.v3 parser error into its line and message.
func simYAMLError(err error) (line int, msg string) {
	m := simYAMLLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, err.Error()
	}
	line, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return 0, err.Error()
	}
	return line, m[2]
}

// The decoder fills the schema from yaml.v3's node tree, strictly and
// without stopping at the first problem: every unknown key, duplicate key
// and value of the wrong type becomes a problem with its line and key path,
// which yaml.v3's own KnownFields decoding cannot give (it stops at the
// first unknown key and names no path).

var simDurationType = reflect.TypeFor[time.Duration]()

// decode fills v from n, whose key path is path.
func (r *simReport) decode(n *yaml.Node, path string, v reflect.Value, depth int) {
	if !r.enter(n, path, depth) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	// An explicit key overrides a merged one, null included: null means
	// "left out", whatever a merged mapping said.
	delete(r.bad, path)
	if simIsNull(n) {
		delete(r.set, path)
		v.Set(reflect.Zero(v.Type()))
		return
	}
	r.set[path] = true
	switch {
	case v.Type() == simDurationType:
		r.scalar(n, path, v)
	case v.Kind() == reflect.Struct:
		r.mapping(n, path, v, depth)
	case v.Kind() == reflect.Slice:
		r.sequence(n, path, v, depth)
	case v.Kind() == reflect.Map:
		r.dict(n, path, v, depth)
	default:
		r.scalar(n, path, v)
	}
}

func (r *simReport) enter(n *yaml.Node, path string, depth int) bool {
	r.budget--
	if depth <= simMaxDepth && r.budget >= 0 {
		return true
	}
	if !r.exhausted {
		r.exhausted = true
		r.at(n.Line, path, "too deeply nested or too many aliases")
	}
	return false
}

// fail records that the value at path could not be decoded.
func (r *simReport) fail(n *yaml.Node, path, format string, args ...any) {
	r.bad[path] = true
	r.atNode(n, path, format, args...)
}

// simEntry is one key and its value in a mapping.
type simEntry struct{ key, val *yaml.Node }

// entries returns the pairs of mapping n, those merged in by "<<" first so
// that the mapping's own keys override them, as YAML's merge key says. It
// reports keys that are not plain names and keys given twice.
func (r *simReport) entries(n *yaml.Node, path string, depth int) []simEntry {
	var out []simEntry
	for i := 0; i+1 < len(n.Content); i += 2 {
		if simIsMerge(n.Content[i]) {
			out = append(out, r.merged(n.Content[i+1], path, depth+1)...)
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if simIsMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			r.atNode(k, path, "want a plain key name, got %s", simGot(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.atNode(k, simJoin(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, simEntry{k, n.Content[i+1]})
	}
	return out
}

// merged returns the pairs of the mapping(s) a "<<" key names.
func (r *simReport) merged(n *yaml.Node, path string, depth int) []simEntry {
	if !r.enter(n, path, depth) {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return r.entries(n, path, depth)
	case yaml.SequenceNode:
		// Earlier mappings in the list win, so their pairs come last.
		var out []simEntry
		for i := len(n.Content) - 1; i >= 0; i-- {
			m := n.Content[i]
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				r.atNode(m, path, "<< merges mappings, got %s", simGot(m))
				continue
			}
			out = append(out, r.merged(m, path, depth+1)...)
		}
		return out
	}
	r.atNode(n, path, "<< merges mappings, got %s", simGot(n))
	return nil
}

func (r *simReport) mapping(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		r.fail(n, path, "want a mapping of keys, got %s", simGot(n))
		return
	}
	fields := make(map[string]int)
	for i := range v.NumField() {
		fields[v.Type().Field(i).Tag.Get("yaml")] = i
	}
	for _, e := range r.entries(n, path, depth) {
		p := simJoin(path, e.key.Value)
		f, ok := fields[e.key.Value]
		if !ok {
			r.atNode(e.key, p, "unknown key%s", simSuggest(e.key.Value, fields))
			continue
		}
		r.lines[p] = e.key.Line
		r.decode(e.val, p, v.Field(f), depth+1)
	}
}

// dict decodes a mapping of names chosen by the file (fault kinds) into a
// map; the names are checked by validation, which knows them.
func (r *simReport) dict(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		r.fail(n, path, "want a mapping, got %s", simGot(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, e := range r.entries(n, path, depth) {
		p := simJoin(path, e.key.Value)
		r.lines[p] = e.key.Line
		ev := reflect.New(v.Type().Elem()).Elem()
		r.decode(e.val, p, ev, depth+1)
		if r.set[p] && !r.bad[p] {
			m.SetMapIndex(reflect.ValueOf(e.key.Value), ev)
		} else {
			m.SetMapIndex(reflect.ValueOf(e.key.Value), reflect.Value{}) // a merged value overridden by null
		}
	}
	v.Set(m)
}

func (r *simReport) sequence(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		r.fail(n, path, "want a list, got %s", simGot(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := simIndex(path, i)
		r.lines[p] = item.Line
		r.decode(item, p, s.Index(i), depth+1)
	}
	v.Set(s)
}

// scalar sets v from the scalar n, strictly: 1.5 is not an integer, and a
// duration needs its unit.
func (r *simReport) scalar(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		r.fail(n, path, "want %s, got %s", simWant(v.Type()), simGot(n))
		return
	}
	tag := n.ShortTag()
	ok := false
	switch {
	case v.Type() == simDurationType:
		// A bare 0 is fine; any other number needs a unit, since 500 could
		// be milliseconds or seconds.
		if d, err := time.ParseDuration(n.Value); err == nil && (tag == "!!str" || tag == "!!int") {
			v.SetInt(int64(d))
			ok = true
		}
	case v.Kind() == reflect.String:
		v.SetString(n.Value) // any scalar is text
		ok = true
	case v.Kind() == reflect.Int, v.Kind() == reflect.Int64:
		var i int64
		if tag == "!!int" && n.Decode(&i) == nil && !v.OverflowInt(i) &&
			(v.Kind() == reflect.Int64 || (i >= math.MinInt32 && i <= math.MaxInt32)) {
			v.SetInt(i)
			ok = true
		}
	case v.Kind() == reflect.Float64:
		var f float64
		if (tag == "!!int" || tag == "!!float") && n.Decode(&f) == nil {
			v.SetFloat(f)
			ok = true
		}
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Decode(&b) == nil {
			v.SetBool(b)
			ok = true
		}
	}
	if !ok {
		r.fail(n, path, "want %s, got %s", simWant(v.Type()), simGot(n))
	}
}

// simWant describes what a value of type t looks like in YAML.
func simWant(t reflect.Type) string {
	if t == simDurationType {
		return "a duration like 500ms, 5s or 1m"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	}
	return "a mapping of keys"
}

// simGot describes what a node holds.
func simGot(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

func simIsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func simIsMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// simSuggest names the key the technician probably meant, or lists the
// keys allowed here when none is close.
func simSuggest(name string, fields map[string]int) string {
	keys := slices.Sorted(maps.Keys(fields))
	best, bestDist := "", len(name)/3+2
	for _, k := range keys { // sorted: ties go to the same name every run
		if d := simDistance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (allowed: " + strings.Join(keys, ", ") + ")"
}

// simDistance is the Levenshtein distance between a and b.
func simDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
