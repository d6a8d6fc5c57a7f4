package meter

// DTSU666 is the CHINT DTSU666 three-phase meter. It has no relay.
// Sources: volkszaehler/mbmd meters/rs485/dtsu666.go and OpenEMS
// MeterChintDtsu666Impl (two versions), transcribed in shared/meters/OTHERS.md;
// the DTSU666 manual's table as gerontec/dtsu666 and the Solax-manual
// emulator michielfromNL/DTSU666 reproduce it. Values are float32 high word
// first holding *scaled raw* numbers: V ×0.1, A ×0.001, W ×0.1, power
// factor ×0.001, Hz ×0.01; energy is plain kWh.
//
// Import energy: the sources disagree. 0x101E is what mbmd, the newer
// OpenEMS driver and the Solax-manual emulator map, and what Deye inverters
// ask a DTSU666 for (a Tasmota driver that stands in for the meter answers
// their FC03 read of 0x101E, 12 registers, import to export); the
// gerontec transcription of the manual says 0x401E, and a Home Assistant
// integration (chint_pm) found 0x401E invalid on its unit; the older OpenEMS
// driver reads 0x4000. The catalogue takes 0x101E, with export at 0x1028.
//
// Function code: mbmd, the Home Assistant integration and Deye read holding
// registers (FC03), OpenEMS input registers (FC04); FC03 is the default and
// AltFunction records FC04 (see DDSU666).
//
// The manual lists nothing at 0x2022..0x2029 and 0x2032..0x2043, and the
// integrations that follow it (OpenEMS, chint_pm) read around those ranges,
// so they are marked unreadable as on the KPM33B: a read plan is four
// transactions, 0x101E..0x1029, 0x2006..0x2019, 0x202A..0x2031 and
// 0x2044..0x2045. (One OpenEMS fork reads 0x2000..0x2045 whole; a custom
// model without the spans would save two transactions on units that allow it.)
func DTSU666() *Model {
	f := func(q Quantity, addr uint16, scale float64, unit string) Register {
		return Register{Quantity: q, Address: addr, Function: ReadHolding, Type: Float32, Scale: scale, Unit: unit}
	}
	return &Model{
		Name:        "dtsu666",
		Title:       "CHINT DTSU666 three-phase",
		Manual:      "CHINT DTSU666 Modbus map, via volkszaehler/mbmd meters/rs485/dtsu666.go and OpenEMS MeterChintDtsu666Impl",
		AltFunction: ReadInput,
		Registers: []Register{
			// f32 kWh: ImpEp, the billing counter, and ExpEp.
			f(Import, 0x101E, 1, "kWh"), f(Export, 0x1028, 1, "kWh"),
			// f32 ×0.1 V, phase to neutral.
			f(VoltageA, 0x2006, 0.1, "V"), f(VoltageB, 0x2008, 0.1, "V"), f(VoltageC, 0x200A, 0.1, "V"),
			// f32 ×0.001 A.
			f(CurrentA, 0x200C, 0.001, "A"), f(CurrentB, 0x200E, 0.001, "A"), f(CurrentC, 0x2010, 0.001, "A"),
			// f32 ×0.1 W: total, then per phase (mbmd, OpenEMS).
			f(Power, 0x2012, 0.1, "W"), f(PowerA, 0x2014, 0.1, "W"), f(PowerB, 0x2016, 0.1, "W"), f(PowerC, 0x2018, 0.1, "W"),
			// f32 ×0.001: total, then per phase (mbmd).
			f(PF, 0x202A, 0.001, ""), f(PFA, 0x202C, 0.001, ""), f(PFB, 0x202E, 0.001, ""), f(PFC, 0x2030, 0.001, ""),
			// f32 ×0.01 Hz.
			f(Frequency, 0x2044, 0.01, "Hz"),
		},
		Unreadable: []Span{{From: 0x2022, To: 0x2029}, {From: 0x2032, To: 0x2043}},
	}
}
