package demo

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"mallgrid/drivers/compere"
	comperesim "mallgrid/drivers/sim/compere"
	"mallgrid/gateway/yamlcheck"
)

// SimMQTT is a sim file's broker: its meters are Compere MQTT meters, each
// a client of it (drivers/sim/compere).
type SimMQTT struct {
	Broker, Username, Password string
	Devices                    []comperesim.Config
}

// simFileMQTT is the sim file's mqtt key.
type simFileMQTT struct {
	Broker         string        `yaml:"broker"`
	Username       string        `yaml:"username"`
	Password       string        `yaml:"password"`
	RTInterval     time.Duration `yaml:"rt_interval"`
	EnergyInterval time.Duration `yaml:"energy_interval"`
}

// mqttFaultKinds are the fault names of an MQTT meter in a sim file.
func mqttFaultKinds() []string {
	return []string{"duplicate", "zero-frame", "split", "clock-2005", "relay-fail"}
}

// mqttOptions validates a sim file with an mqtt key: Compere MQTT meters
// served as clients of its broker, no Modbus line.
func (r simCheck) mqttOptions(f *simFile) SimOptions {
	for _, k := range []string{"port", "listen", "baud", "parity", "stop_bits", "wire", "config"} {
		if r.Given(k) {
			r.Add(k, "applies to a Modbus bus only (this file's meters are clients of mqtt.broker)")
		}
	}
	m := SimMQTT{Broker: f.MQTT.Broker, Username: f.MQTT.Username, Password: f.MQTT.Password}
	if r.Need("mqtt.broker", m.Broker) {
		if u, err := url.Parse(m.Broker); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl") || u.Host == "" {
			r.Add("mqtt.broker", "want tcp://HOST:PORT or ssl://HOST:PORT, got %q", m.Broker)
		}
	}
	rt, eny := comperesim.DefaultRealTime, comperesim.DefaultEnergy
	if r.Given("mqtt.rt_interval") && r.DurationIn("mqtt.rt_interval", f.MQTT.RTInterval, 100*time.Millisecond, time.Hour) {
		rt = f.MQTT.RTInterval
	}
	if r.Given("mqtt.energy_interval") && r.DurationIn("mqtt.energy_interval", f.MQTT.EnergyInterval, 100*time.Millisecond, 24*time.Hour) {
		eny = f.MQTT.EnergyInterval
	}
	if len(f.Meters) == 0 {
		r.Add("meters", "at least one meter is required")
	}
	taken := make(map[string]string) // meter id → key of the entry that has it
	for i := range f.Meters {
		p := yamlcheck.Index("meters", i)
		for _, c := range r.mqttMeters(&f.Meters[i], p, taken) {
			c.Broker, c.Username, c.Password, c.RealTime, c.Energy = m.Broker, m.Username, m.Password, rt, eny
			m.Devices = append(m.Devices, c)
		}
	}
	return SimOptions{MQTT: &m}
}

// mqttMeters checks one meters entry of an MQTT sim file: a device per id.
func (r simCheck) mqttMeters(m *simFileMeter, p string, taken map[string]string) []comperesim.Config {
	for _, k := range []string{"address", "addresses", "from", "to", "relay", "remote", "late_delay", "exception_code"} {
		if r.Given(p + "." + k) {
			r.Add(p+"."+k, "applies to a Modbus meter only (an MQTT meter has an id)")
		}
	}
	var model compere.Model
	if r.Need(p+".model", m.Model) {
		var ok bool
		if model, ok = compere.ModelByName(m.Model); !ok {
			r.Add(p+".model", "unknown model %q (MQTT models: %s)", m.Model, strings.Join(compere.ModelNames(), ", "))
		}
	}
	var ids []string
	key := p + ".id"
	switch {
	case r.Given(p+".id") && r.Given(p+".ids"):
		r.Add(p+".ids", "give id or ids, not both")
	case r.Given(p + ".id"):
		ids = []string{m.ID}
	case r.Given(p + ".ids"):
		ids, key = m.IDs, p+".ids"
		if len(ids) == 0 {
			r.Add(key, "want at least one meter id")
		}
	default:
		r.Add(p+".id", "required, not set (the 13-character meter id, or ids: [A, B])")
	}
	var base comperesim.Config
	base.Model = model
	switch {
	case r.Given(p+".load_w") && r.Given(p+".base_w"):
		r.Add(p+".base_w", "give load_w (a constant load) or base_w (the mall profile), not both")
	case r.Given(p + ".load_w"):
		if r.finite(p+".load_w", m.LoadW) {
			w := m.LoadW
			base.LoadW = &w
		}
	case r.Given(p + ".base_w"):
		if r.finite(p+".base_w", m.BaseW) && m.BaseW <= 0 {
			r.Add(p+".base_w", "want a number > 0, got %v", m.BaseW)
		}
		base.BaseW = m.BaseW
	}
	if r.Given(p+".import_wh") && m.ImportWh < 0 {
		r.Add(p+".import_wh", "want an integer >= 0, got %d", m.ImportWh)
	}
	base.ImportWh = m.ImportWh
	base.Faults = r.mqttFaults(m.Faults, p+".faults")
	var out []comperesim.Config
	for i, id := range ids {
		k := key
		if key == p+".ids" {
			k = yamlcheck.Index(key, i)
		}
		c := base
		c.ID, c.Seed = id, cmp.Or(m.Seed, 1)+int64(i)
		circuits := []string{id}
		if model.Name != "" {
			var err error
			if circuits, err = model.CircuitIDs(id); err != nil {
				r.Add(k, "%v", err)
				continue
			}
		}
		clash := false
		for _, cid := range circuits {
			if owner, dup := taken[cid]; dup {
				r.Add(k, "meter id %s already used by %s (line %d)", cid, owner, r.Line(owner))
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		for _, cid := range circuits {
			taken[cid] = k
		}
		out = append(out, c)
	}
	return out
}

// mqttFaults checks an MQTT meter's fault rates: each 0..1, independent.
func (r simCheck) mqttFaults(rates map[string]float64, p string) comperesim.Faults {
	var f comperesim.Faults
	dst := map[string]*float64{"duplicate": &f.Duplicate, "zero-frame": &f.ZeroFrame, "split": &f.Split, "clock-2005": &f.Clock2005, "relay-fail": &f.RelayFail}
	for _, name := range slices.Sorted(maps.Keys(rates)) {
		rate, key := rates[name], p+"."+name
		switch d, ok := dst[name]; {
		case !ok:
			r.Add(key, "unknown fault kind for an MQTT meter (kinds: %s)", strings.Join(mqttFaultKinds(), ", "))
		case !(rate >= 0 && rate <= 1):
			r.Add(key, "want a rate 0..1, got %v", rate)
		default:
			*d = rate
		}
	}
	return f
}

// simulateMQTT runs the MQTT meters until ctx ends.
func simulateMQTT(ctx context.Context, o SimOptions) error {
	var devices []*comperesim.Device
	for _, c := range o.MQTT.Devices {
		c.Log = o.Log
		d, err := comperesim.New(c)
		if err != nil {
			return fmt.Errorf("sim: meter %s: %w", c.ID, err)
		}
		devices = append(devices, d)
	}
	o.ready(o.MQTT.Broker)
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.Run(ctx) // nil once ctx ends
		}()
	}
	wg.Wait()
	return nil
}

// mqttSummary is Summary for MQTT meters: "4 kpm312 meter(s) 3120208700001-4".
func (m *SimMQTT) summary() string {
	var (
		models []string
		ids    = make(map[string][]string)
		n      = make(map[string]int)
	)
	for _, c := range m.Devices {
		if _, ok := ids[c.Model.Name]; !ok {
			models = append(models, c.Model.Name)
		}
		ids[c.Model.Name] = append(ids[c.Model.Name], c.ID)
		n[c.Model.Name] += max(c.Model.Circuits, 1)
	}
	if len(models) == 0 {
		return "no meters"
	}
	parts := make([]string, len(models))
	for i, name := range models {
		parts[i] = fmt.Sprintf("%d %s meter(s) %s", n[name], name, strings.Join(ids[name], ","))
	}
	return strings.Join(parts, "; ")
}
