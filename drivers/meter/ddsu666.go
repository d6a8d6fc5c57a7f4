package meter

// DDSU666 is the CHINT DDSU666 single-phase meter. It has no relay.
// Sources: Tasmota xnrg_11_ddsu666.ino and OpenEMS MeterChintDdsu666Impl,
// transcribed in shared/meters/OTHERS.md. Values are float32 high word
// first, primary values; power is in kW on this meter (W on most others).
//
// The sources disagree on the function code: Tasmota reads input registers
// (FC04), OpenEMS holding registers (FC03). The catalogue follows Tasmota,
// and AltFunction records FC03 so that meter scan tries both and a meter
// entry can say function: 3 (see Model.WithFunction).
//
// A read plan is two transactions: 0x2000..0x200F (OpenEMS reads
// 0x2000..0x200D and 0x200E..0x2011 in full, so the registers between the
// mapped ones answer) and 0x4000..0x4001. Export (0x400A in Tasmota) is left out: malls do not
// buy power from tenants, and bridging 0x4002..0x4009, which no source
// documents, could make the meter refuse the billing read.
func DDSU666() *Model {
	f := func(q Quantity, addr uint16, unit string) Register {
		return Register{Quantity: q, Address: addr, Function: ReadInput, Type: Float32, Unit: unit}
	}
	return &Model{
		Name:        "ddsu666",
		Title:       "CHINT DDSU666 single-phase",
		Manual:      "CHINT DDSU666 Modbus map, via Tasmota xnrg_11_ddsu666.ino and OpenEMS MeterChintDdsu666Impl",
		AltFunction: ReadHolding,
		Registers: []Register{
			f(VoltageA, 0x2000, "V"),   // f32
			f(CurrentA, 0x2002, "A"),   // f32
			f(Power, 0x2004, "kW"),     // f32, active power in kW
			f(PF, 0x200A, ""),          // f32
			f(Frequency, 0x200E, "Hz"), // f32
			f(Import, 0x4000, "kWh"),   // f32, import active energy: the billing counter
		},
	}
}
