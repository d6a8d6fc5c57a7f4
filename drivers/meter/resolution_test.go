package meter

import "testing"

func TestModel_ResolutionWh(t *testing.T) {
	float := func(unit string) *Model {
		return &Model{Name: "f", Registers: []Register{{Quantity: Import, Function: ReadInput, Type: Float32, Unit: unit}}}
	}
	integer := func(scale float64, unit string) *Model {
		return &Model{Name: "i", Registers: []Register{{Quantity: Import, Function: ReadHolding, Type: Uint32, Scale: scale, Unit: unit}}}
	}
	cases := []struct {
		name  string
		m     *Model
		atWh  int64
		ratio int64
		want  int64
	}{
		{"integer 0.01 kWh", integer(0.01, "kWh"), 123_456_780, 1, 10},
		{"integer 1 Wh", integer(1, "Wh"), 5_000, 1, 1},
		{"integer 0.01 kWh behind CT 40", integer(0.01, "kWh"), 1_000, 40, 400},
		// float32 near 1,000 kWh: 2^9 ≤ v < 2^10, spacing 2^(10-24) kWh = 0.061 Wh → 1 Wh.
		{"float32 1,000 kWh", float("kWh"), 1_000_000, 1, 1},
		// float32 near 100,000 kWh: 2^16 ≤ v < 2^17, spacing 2^-7 kWh = 7.8 Wh → 8 Wh.
		{"float32 100,000 kWh", float("kWh"), 100_000_000, 1, 8},
		// float32 near 1,000,000 kWh: spacing 2^-4 kWh = 62.5 Wh → 63 Wh.
		{"float32 1 GWh", float("kWh"), 1_000_000_000, 1, 63},
		// Behind CT 400 × PT 100 a float32 register reads 1,000 kWh at
		// 40 GWh primary: its spacing, 2^-14 kWh = 0.061 Wh, is 2,441.4 Wh
		// primary.
		{"float32 behind CT 400 × PT 100", float("kWh"), 40_000_000_000, 40_000, 2_442},
		{"no counter", &Model{Name: "n"}, 1, 1, 1},
	}
	for _, c := range cases {
		if got := c.m.ResolutionWh(c.atWh, c.ratio); got != c.want {
			t.Errorf("%s: ResolutionWh(%d, %d) = %d; want %d", c.name, c.atWh, c.ratio, got, c.want)
		}
	}
}
