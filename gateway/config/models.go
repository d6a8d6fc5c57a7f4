package config

import (
	"math"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/yamlcheck"
)

// validateModels checks the custom models key by key, builds
// cfg.Catalogue from the good ones, and returns every model name a meter
// may use: the built-ins and the custom ones (good or not, so that a meter
// of a broken model is not also told its model does not exist).
//
// meter.Model.Validate stays the authority on what makes a model usable;
// the checks here come first only to point at the line of the bad key,
// which Validate's single error cannot do.
func validateModels(cfg *Config, r *yamlcheck.Report) map[string]bool {
	known := make(map[string]bool)
	builtin := make(map[string]bool)
	for _, n := range meter.BuiltinNames() {
		known[n], builtin[n] = true, true
	}
	names := unique(r, "model name")
	var custom []*meter.Model
	for i := range cfg.Models {
		m := &cfg.Models[i]
		p := yamlcheck.Index("models", i)
		if r.Need(p+".name", m.Name) {
			if builtin[m.Name] {
				r.Add(p+".name", "%q is a built-in model; give the custom one another name", m.Name)
			} else {
				names.check(p+".name", m.Name)
			}
			known[m.Name] = true
		}
		// 0 would mean the planner's default, not "never bridge": refuse it
		// rather than let it mean the opposite of what it says.
		r.IntIn(p+".max_gap", m.MaxGap, 1, meter.MaxReadRegisters)
		r.IntIn(p+".max_read", m.MaxRead, 1, meter.MaxReadRegisters)
		checkRegisters(m, p, r)
		checkUnreadable(m, p, r)
		checkRelay(m, p, r)
		if !r.Clean(p) {
			continue
		}
		mm := m.meterModel()
		if err := mm.Validate(); err != nil {
			r.Add(p, "%v", err)
			continue
		}
		custom = append(custom, mm)
	}
	cat, err := meter.NewCatalogue(custom...)
	if err != nil {
		r.Add("models", "%v", err)
		return known
	}
	cfg.Catalogue = cat
	return known
}

func checkRegisters(m *Model, p string, r *yamlcheck.Report) {
	if len(m.Registers) == 0 {
		r.Add(p+".registers", "want at least the %s register (the billing counter)", meter.Import)
		return
	}
	quantities := make([]string, 0, len(meter.Quantities()))
	for _, q := range meter.Quantities() {
		quantities = append(quantities, string(q))
	}
	types := []string{string(meter.Int16), string(meter.Uint16), string(meter.Int32),
		string(meter.Uint32), string(meter.Float32), string(meter.Float64)}
	first := make(map[string]string) // quantity → key of its register
	for j := range m.Registers {
		reg := &m.Registers[j]
		rp := yamlcheck.Index(p+".registers", j)
		q := meter.Quantity(reg.Quantity)
		qOK := r.Need(rp+".quantity", reg.Quantity) && r.OneOf(rp+".quantity", reg.Quantity, quantities...)
		if qOK {
			if k, dup := first[reg.Quantity]; dup {
				r.Add(rp+".quantity", "%s is mapped twice (first at %s)", q, r.Where(k))
			} else {
				first[reg.Quantity] = rp + ".quantity"
			}
		}
		typeOK := r.Need(rp+".type", reg.Type) && r.OneOf(rp+".type", reg.Type, types...)
		if !r.Given(rp + ".address") {
			r.Add(rp+".address", "required, not set")
		} else if r.IntIn(rp+".address", reg.Address, 0, math.MaxUint16) && typeOK {
			if end := reg.Address + int(meter.DataType(reg.Type).Words()) - 1; end > math.MaxUint16 {
				r.Add(rp+".address", "a %s at 0x%04X runs past register 0xFFFF", reg.Type, reg.Address)
			}
		}
		r.IntOneOf(rp+".function", reg.Function, int(meter.ReadHolding), int(meter.ReadInput))
		r.OneOf(rp+".word_order", reg.WordOrder, string(meter.Big), string(meter.Little))
		r.OneOf(rp+".byte_order", reg.ByteOrder, string(meter.Big), string(meter.Little))
		// meter.Register takes a scale of 0 as 1; written out, 0 is a mistake.
		if reg.Scale == 0 || math.IsNaN(reg.Scale) || math.IsInf(reg.Scale, 0) {
			r.Add(rp+".scale", "want a non-zero number, got %v", reg.Scale)
		}
		if !r.Given(rp+".unit") && !r.Bad(rp+".unit") {
			reg.Unit = q.Unit()
		}
		if qOK && !unitSuits(q, reg.Unit) {
			r.Add(rp+".unit", "%q cannot express %s (%s)", reg.Unit, q, unitName(q))
		}
	}
	if _, ok := first[string(meter.Import)]; !ok && r.Clean(p+".registers") {
		r.Add(p+".registers", "no register holds %s (the billing counter)", meter.Import)
	}
}

// unitSuits reports whether a register in unit can hold q. It asks
// meter.Model.Validate so that the meter package's unit table stays the
// only one.
func unitSuits(q meter.Quantity, unit string) bool {
	reg := func(q meter.Quantity, addr uint16, unit string) meter.Register {
		return meter.Register{Quantity: q, Address: addr, Function: meter.ReadHolding, Type: meter.Uint16, Unit: unit}
	}
	probe := &meter.Model{Name: "probe", Registers: []meter.Register{reg(q, 0, unit)}}
	if q != meter.Import {
		probe.Registers = append(probe.Registers, reg(meter.Import, 1, meter.Import.Unit()))
	}
	return probe.Validate() == nil
}

func unitName(q meter.Quantity) string {
	if q.Unit() == "" {
		return "a plain ratio, unit left out"
	}
	return "in " + q.Unit() + " or a multiple"
}

func checkUnreadable(m *Model, p string, r *yamlcheck.Report) {
	for k, s := range m.Unreadable {
		sp := yamlcheck.Index(p+".unreadable", k)
		fromOK := requiredIntIn(r, sp+".from", s.From, 0, math.MaxUint16)
		toOK := requiredIntIn(r, sp+".to", s.To, 0, math.MaxUint16)
		if fromOK && toOK && s.From > s.To {
			r.Add(sp+".to", "want to >= from (0x%04X), got 0x%04X", s.From, s.To)
			continue
		}
		for j, reg := range m.Registers {
			words := int(meter.DataType(reg.Type).Words())
			if words == 0 {
				continue // the bad type is reported already
			}
			if end := reg.Address + words - 1; reg.Address <= s.To && s.From <= end {
				r.Add(yamlcheck.Index(p+".registers", j)+".address", "0x%04X lies in unreadable range 0x%04X..0x%04X (%s)",
					reg.Address, s.From, s.To, r.Where(sp))
			}
		}
	}
}

func checkRelay(m *Model, p string, r *yamlcheck.Report) {
	if m.Relay == nil {
		return
	}
	rp := p + ".relay"
	requiredIntIn(r, rp+".coil", m.Relay.Coil, 0, math.MaxUint16)
	if w := m.Relay.RemoteMode; w != nil {
		wp := rp + ".remote_mode"
		requiredIntIn(r, wp+".address", w.Address, 0, math.MaxUint16)
		if len(w.Values) == 0 {
			r.Add(wp+".values", "want at least one register value to write")
		}
		for k, v := range w.Values {
			r.IntIn(yamlcheck.Index(wp+".values", k), v, 0, math.MaxUint16)
		}
	}
}

// requiredIntIn reports a missing key, or a value outside lo..hi.
func requiredIntIn(r *yamlcheck.Report, key string, val, lo, hi int) bool {
	if !r.Given(key) {
		r.Add(key, "required, not set")
		return false
	}
	return r.IntIn(key, val, lo, hi)
}

// meterModel converts a model that passed the checks above; every number
// has been range-checked, so the conversions cannot truncate.
func (m *Model) meterModel() *meter.Model {
	mm := &meter.Model{
		Name:      m.Name,
		Title:     m.Title,
		Manual:    m.Manual,
		MaxGap:    uint16(m.MaxGap),
		MaxRead:   uint16(m.MaxRead),
		Secondary: m.Secondary,
	}
	for _, reg := range m.Registers {
		mm.Registers = append(mm.Registers, meter.Register{
			Quantity:  meter.Quantity(reg.Quantity),
			Address:   uint16(reg.Address),
			Function:  uint8(reg.Function),
			Type:      meter.DataType(reg.Type),
			WordOrder: meter.Order(reg.WordOrder),
			ByteOrder: meter.Order(reg.ByteOrder),
			Scale:     reg.Scale,
			Unit:      reg.Unit,
		})
	}
	for _, s := range m.Unreadable {
		mm.Unreadable = append(mm.Unreadable, meter.Span{From: uint16(s.From), To: uint16(s.To)})
	}
	if m.Relay != nil {
		mm.Relay = &meter.Relay{Coil: uint16(m.Relay.Coil)}
		if w := m.Relay.RemoteMode; w != nil {
			rw := &meter.RegisterWrite{Address: uint16(w.Address)}
			for _, v := range w.Values {
				rw.Values = append(rw.Values, uint16(v))
			}
			mm.Relay.RemoteMode = rw
		}
	}
	return mm
}
