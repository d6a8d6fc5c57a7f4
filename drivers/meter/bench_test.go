package meter

import "testing"

// BenchmarkDecodeKPM33B is the CPU and allocations of turning one KPM33B
// reply (100 registers) into a Reading.
func BenchmarkDecodeKPM33B(b *testing.B) {
	frame := readGolden(b, "testdata/kpm33b_fc03_0030_100.hex")
	plan := NewPlan(KPM33B())
	data := frame[3:203]
	b.ReportAllocs()
	for b.Loop() {
		var rd Reading
		if err := DecodeBlock(&rd, plan[0], data); err != nil {
			b.Fatal(err)
		}
	}
}
