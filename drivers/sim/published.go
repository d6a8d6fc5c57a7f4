package sim

import (
	"encoding/binary"
	"math"

	"mallgrid/drivers/meter"
)

// A real meter answers every register of its published map, not only the
// ones the gateway reads: third-party masters (mbpoll, SCADA packages, a
// vendor's configuration tool) read the whole map in chunks, and a
// simulator that refuses them cannot stand in for the meter. published
// lists, per built-in model, how far its manual's map reaches on each read
// function code, and the registers outside the gateway's map whose value
// follows from the meter's state (line voltages, apparent power, totals);
// every other register inside the map reads 0.0, which is what a meter
// shows for a quantity with nothing behind it (harmonics of a clean
// supply, a demand not yet computed). Reads past the map get exception 02.
//
// A model not listed here (a custom YAML model) publishes its own
// registers only.
type publishedMap struct {
	top    [5]int // per read function code: one past the last register of the map
	extras []extra
}

// extra is a float32 register outside the model's own map, high word first.
type extra struct {
	function uint8
	address  uint16
	value    func(s Snapshot) float64
}

// publishedMaps is keyed by meter.Model.Name.
var publishedMaps = map[string]publishedMap{
	// Eastron SDM630 Modbus protocol: input registers 0x0000..0x017F
	// (0x017C, L3 total kvarh, is the last).
	"sdm630": {top: tops(meter.ReadInput, 0x0180), extras: eastron3Phase},
	// Eastron SDM120 Modbus protocol: input registers 0x0000..0x0159
	// (0x0158, total kvarh, is the last).
	"sdm120": {top: tops(meter.ReadInput, 0x015A), extras: []extra{
		{meter.ReadInput, 0x0012, func(s Snapshot) float64 { return s.Voltage[0] * s.Current[0] }}, // VA
		{meter.ReadInput, 0x0156, totalKWh},
	}},
	// KPM33B User Manual V3.4 section 6: holding registers up to the
	// apparent demand of phase C at 0x0204.
	"kpm33b": {top: tops(meter.ReadHolding, 0x0206), extras: []extra{
		{meter.ReadHolding, 0x003C, lineVoltage(0, 1)},
		{meter.ReadHolding, 0x003E, lineVoltage(1, 2)},
		{meter.ReadHolding, 0x0040, lineVoltage(2, 0)},
		{meter.ReadHolding, 0x0052, apparent(0)},
		{meter.ReadHolding, 0x0054, apparent(1)},
		{meter.ReadHolding, 0x0056, apparent(2)},
		{meter.ReadHolding, 0x0058, totalApparent},
		{meter.ReadHolding, 0x0080, totalKWh},
	}},
}

// eastron3Phase are the SDM630's derived registers.
var eastron3Phase = []extra{
	{meter.ReadInput, 0x0012, apparent(0)},
	{meter.ReadInput, 0x0014, apparent(1)},
	{meter.ReadInput, 0x0016, apparent(2)},
	{meter.ReadInput, 0x002A, func(s Snapshot) float64 { return (s.Voltage[0] + s.Voltage[1] + s.Voltage[2]) / 3 }},
	{meter.ReadInput, 0x0030, func(s Snapshot) float64 { return s.Current[0] + s.Current[1] + s.Current[2] }},
	{meter.ReadInput, 0x0038, totalApparent},
	{meter.ReadInput, 0x00C8, lineVoltage(0, 1)},
	{meter.ReadInput, 0x00CA, lineVoltage(1, 2)},
	{meter.ReadInput, 0x00CC, lineVoltage(2, 0)},
	{meter.ReadInput, 0x0156, totalKWh},
}

func tops(fc uint8, top int) [5]int {
	var t [5]int
	t[fc] = top
	return t
}

func totalKWh(s Snapshot) float64 { return float64(s.ImportWh+s.ExportWh) / 1000 }

func apparent(phase int) func(Snapshot) float64 {
	return func(s Snapshot) float64 { return s.Voltage[phase] * s.Current[phase] }
}

func totalApparent(s Snapshot) float64 {
	return apparent(0)(s) + apparent(1)(s) + apparent(2)(s)
}

// lineVoltage is the voltage between two phases 120° apart: √3 × the mean
// of the two phase voltages, 0 where a phase is missing.
func lineVoltage(a, b int) func(Snapshot) float64 {
	return func(s Snapshot) float64 {
		if s.Voltage[a] == 0 || s.Voltage[b] == 0 {
			return 0
		}
		return math.Sqrt(3) * (s.Voltage[a] + s.Voltage[b]) / 2
	}
}

// publishedOf returns the published map of model, the zero map when the
// simulator knows none for it.
func publishedOf(model *meter.Model) publishedMap { return publishedMaps[model.Name] }

// fillExtras writes the derived registers of function fc that fall inside
// the window [start, end) into buf, except where the model maps a register
// itself.
func (m *Meter) fillExtras(buf []byte, fc uint8, start, end int, snap Snapshot) {
	for _, x := range m.published.extras {
		a := int(x.address)
		if x.function != fc || a+2 <= start || a >= end || m.mapped(fc, a) || m.mapped(fc, a+1) {
			continue
		}
		var enc [4]byte
		binary.BigEndian.PutUint32(enc[:], math.Float32bits(float32(x.value(snap))))
		for w := max(a, start); w < min(a+2, end); w++ {
			copy(buf[2*(w-start):2*(w-start)+2], enc[2*(w-a):2*(w-a)+2])
		}
	}
}
