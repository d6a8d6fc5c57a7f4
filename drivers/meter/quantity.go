package meter

// Quantity names what a register holds. Values of Quantity are the names
// used in YAML custom models, in JSON readings and on the status page.
type Quantity string

// Quantities the gateway understands. Energy quantities are kWh in a model's
// registers and become int64 Wh in a Reading.
const (
	VoltageA  Quantity = "voltage_a"  // V, phase to neutral
	VoltageB  Quantity = "voltage_b"  // V
	VoltageC  Quantity = "voltage_c"  // V
	CurrentA  Quantity = "current_a"  // A
	CurrentB  Quantity = "current_b"  // A
	CurrentC  Quantity = "current_c"  // A
	PowerA    Quantity = "power_a"    // W, active
	PowerB    Quantity = "power_b"    // W
	PowerC    Quantity = "power_c"    // W
	Power     Quantity = "power"      // W, total active
	PFA       Quantity = "pf_a"       // power factor
	PFB       Quantity = "pf_b"       //
	PFC       Quantity = "pf_c"       //
	PF        Quantity = "pf"         // total power factor
	Frequency Quantity = "frequency"  // Hz
	Import    Quantity = "import_kwh" // kWh, forward active energy: the billing counter
	Export    Quantity = "export_kwh" // kWh, reverse active energy
	Sharp     Quantity = "sharp_kwh"  // kWh, meter-side rate 1 (sharp / 尖)
	Peak      Quantity = "peak_kwh"   // kWh, meter-side rate 2 (peak / 峰)
	Flat      Quantity = "flat_kwh"   // kWh, meter-side rate 3 (flat / 平)
	Valley    Quantity = "valley_kwh" // kWh, meter-side rate 4 (valley / 谷)

	// What electrical-fire monitoring meters report (GB 14287): the
	// residual (leakage) current and the terminals' temperatures. The
	// alarm rules residual_current and temperature watch them.
	ResidualCurrent Quantity = "residual_current" // mA
	TempA           Quantity = "temp_a"           // °C, terminal of phase A
	TempB           Quantity = "temp_b"           // °C
	TempC           Quantity = "temp_c"           // °C
	TempN           Quantity = "temp_n"           // °C, neutral terminal
)

// Quantities returns every quantity the gateway understands, in display order.
func Quantities() []Quantity { return append([]Quantity(nil), allQuantities[:]...) }

// Valid reports whether q is a quantity the gateway understands.
func (q Quantity) Valid() bool {
	_, ok := q.info()
	return ok
}

// Unit returns the unit a Reading holds q in ("" for power factor).
func (q Quantity) Unit() string {
	u, _ := q.info()
	return u
}

// IsEnergy reports whether q is a cumulative energy counter.
func (q Quantity) IsEnergy() bool { return q.Unit() == "kWh" }

// info is the unit each quantity is normalised to. A switch rather than a
// map: it runs for every value of every reading.
func (q Quantity) info() (unit string, ok bool) {
	switch q {
	case VoltageA, VoltageB, VoltageC:
		return "V", true
	case CurrentA, CurrentB, CurrentC:
		return "A", true
	case PowerA, PowerB, PowerC, Power:
		return "W", true
	case PFA, PFB, PFC, PF:
		return "", true
	case Frequency:
		return "Hz", true
	case Import, Export, Sharp, Peak, Flat, Valley:
		return "kWh", true
	case ResidualCurrent:
		return "mA", true
	case TempA, TempB, TempC, TempN:
		return "°C", true
	}
	return "", false
}
