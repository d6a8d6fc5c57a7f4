package meter

// SDM120 is the Eastron SDM120-Modbus single-phase meter. It has no relay.
// Source: volkszaehler/mbmd meters/rs485/sdm120.go (after the Eastron
// SDM120 Modbus manual), transcribed in shared/meters/OTHERS.md. Every value
// is an input register (FC04), float32 high word first, primary values;
// power is in W.
//
// Eastron documents reads of up to 80 registers, but openWB met SDM units
// that refuse more than 50 (openWB/core#2890), so MaxRead is 50: a plan of
// two transactions, 0x0000..0x001F (voltage to power factor) and
// 0x0046..0x004B (frequency and the counters). The meter's total kWh
// (0x0156) is import plus export and has no quantity of its own here.
func SDM120() *Model {
	f := func(q Quantity, addr uint16, unit string) Register {
		return Register{Quantity: q, Address: addr, Function: ReadInput, Type: Float32, Unit: unit}
	}
	return &Model{
		Name:    "sdm120",
		Title:   "Eastron SDM120 single-phase",
		Manual:  "Eastron SDM120 Modbus protocol, via volkszaehler/mbmd meters/rs485/sdm120.go",
		MaxRead: eastronMaxRead,
		Registers: []Register{
			f(VoltageA, 0x0000, "V"),   // f32, line to neutral
			f(CurrentA, 0x0006, "A"),   // f32
			f(Power, 0x000C, "W"),      // f32, active power
			f(PF, 0x001E, ""),          // f32
			f(Frequency, 0x0046, "Hz"), // f32
			f(Import, 0x0048, "kWh"),   // f32, import active energy: the billing counter
			f(Export, 0x004A, "kWh"),   // f32, export active energy
		},
	}
}

// eastronMaxRead is the longest read every Eastron SDM is known to answer
// (openWB/core#2890: some refuse 51 registers and more).
const eastronMaxRead = 50
