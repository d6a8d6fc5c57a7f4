package meter

import "testing"

// BenchmarkDecodeKPM33B is the CPU and allocations of turning the two
// replies of a KPM33B read plan into a Reading.
func BenchmarkDecodeKPM33B(b *testing.B) {
	plan := NewPlan(KPM33B())
	var data [2][]byte
	for i, file := range []string{"testdata/kpm33b_fc03_0030_52.hex", "testdata/kpm33b_fc03_0082_18.hex"} {
		frame := readGolden(b, file)
		data[i] = frame[3 : len(frame)-2]
	}
	b.ReportAllocs()
	for b.Loop() {
		var rd Reading
		for i := range plan {
			if err := DecodeBlock(&rd, plan[i], data[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
