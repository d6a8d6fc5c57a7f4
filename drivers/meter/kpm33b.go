package meter

// KPM33B is the Compere KPM33B three-phase prepaid meter with a
// load-control relay. Source: KPM33B User Manual V3.4 (2024-07), section 6;
// transcribed in shared/meters/KPM33B.md. All measurements are float32,
// high word first, primary values; power is in W (not kW) on this meter.
//
// A read plan is two transactions, as the manual documents them:
// 0x0030..0x0063 (every instantaneous value) and 0x0082..0x0093 (import,
// export and the four rate counters). The manual lists nothing at
// 0x0064..0x0067, so that span is marked unreadable rather than bridged:
// a meter that refuses it would refuse the whole merged read.
func KPM33B() *Model {
	f := func(q Quantity, addr uint16, unit string) Register {
		return Register{Quantity: q, Address: addr, Function: ReadHolding, Type: Float32, Unit: unit}
	}
	return &Model{
		Name:   "kpm33b",
		Title:  "Compere KPM33B three-phase",
		Manual: "KPM33B User Manual V3.4 (2024-07), section 6",
		Registers: []Register{
			f(VoltageA, 0x0030, "V"), f(VoltageB, 0x0032, "V"), f(VoltageC, 0x0034, "V"),
			f(CurrentA, 0x0036, "A"), f(CurrentB, 0x0038, "A"), f(CurrentC, 0x003A, "A"),
			f(PowerA, 0x0042, "W"), f(PowerB, 0x0044, "W"), f(PowerC, 0x0046, "W"),
			f(Power, 0x0048, "W"),
			f(PFA, 0x005A, ""), f(PFB, 0x005C, ""), f(PFC, 0x005E, ""),
			f(PF, 0x0060, ""),
			f(Frequency, 0x0062, "Hz"),
			f(Import, 0x0082, "kWh"), // forward active energy: the billing counter
			f(Export, 0x0084, "kWh"),
			f(Sharp, 0x008C, "kWh"), f(Peak, 0x008E, "kWh"),
			f(Flat, 0x0090, "kWh"), f(Valley, 0x0092, "kWh"),
		},
		Unreadable: []Span{{From: 0x0064, To: 0x0067}},
		Relay: &Relay{
			Coil: 0x0001,
			// 0x001E control mode: 0xDD22 remote, 0xDD11 local.
			RemoteMode: &RegisterWrite{Address: 0x001E, Values: []uint16{0xDD22}},
		},
	}
}

// KPM33B registers outside the measurement map that tools and the simulator use.
const (
	KPM33BControlMode uint16 = 0x001E // 0xDD11 local, 0xDD22 remote
	KPM33BRemote      uint16 = 0xDD22
	KPM33BLocal       uint16 = 0xDD11
)
