package meter

// SDM630 is the Eastron SDM630-Modbus three-phase meter. It has no relay.
// Source: volkszaehler/mbmd meters/rs485/sdm.go (after the Eastron SDM630
// register list), transcribed in shared/meters/OTHERS.md; the per-phase
// power factors (0x001E..0x0022) are from mbmd alone. Every value is an
// input register (FC04), float32 high word first, primary values; power is
// in W.
//
// Reads stop at 50 registers for the reason SDM120 gives, which splits the
// map into two transactions: 0x0000..0x0023 (per-phase voltage, current,
// power and power factor) and 0x0034..0x004B (totals, frequency and the
// counters).
func SDM630() *Model {
	f := func(q Quantity, addr uint16, unit string) Register {
		return Register{Quantity: q, Address: addr, Function: ReadInput, Type: Float32, Unit: unit}
	}
	return &Model{
		Name:    "sdm630",
		Title:   "Eastron SDM630 three-phase",
		Manual:  "Eastron SDM630 Modbus register list, via volkszaehler/mbmd meters/rs485/sdm.go",
		MaxRead: eastronMaxRead,
		Registers: []Register{
			f(VoltageA, 0x0000, "V"), f(VoltageB, 0x0002, "V"), f(VoltageC, 0x0004, "V"), // f32, phase to neutral
			f(CurrentA, 0x0006, "A"), f(CurrentB, 0x0008, "A"), f(CurrentC, 0x000A, "A"), // f32
			f(PowerA, 0x000C, "W"), f(PowerB, 0x000E, "W"), f(PowerC, 0x0010, "W"), // f32, active power
			f(PFA, 0x001E, ""), f(PFB, 0x0020, ""), f(PFC, 0x0022, ""), // f32
			f(Power, 0x0034, "W"),      // f32, total system power
			f(PF, 0x003E, ""),          // f32, total system power factor
			f(Frequency, 0x0046, "Hz"), // f32
			f(Import, 0x0048, "kWh"),   // f32, import active energy: the billing counter
			f(Export, 0x004A, "kWh"),   // f32, export active energy
		},
	}
}
