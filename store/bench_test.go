package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCommitCycle commits bus cycles of 32 meters (readings and
// interval energy) to a real bbolt file, one durable transaction each.
func BenchmarkCommitCycle(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	cycle := Cycle{}
	for i := 0; i < 32; i++ {
		id := fmt.Sprintf("M-%03d", i)
		cycle.Readings = append(cycle.Readings, Reading{Meter: id, Time: t0, ImportWh: int64(i) * 1000,
			Values: []Value{{"voltage_a", 230.1}, {"current_a", 10.2}, {"power", 6900}, {"pf", 0.98}}, Relay: "closed"})
		cycle.Energy = append(cycle.Energy, IntervalEnergy{Meter: id, Time: t0, Wh: 3})
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range cycle.Readings {
			cycle.Readings[i].Time = t0.Add(time.Duration(n) * 10 * time.Second)
			cycle.Energy[i].Time = cycle.Readings[i].Time
		}
		if _, err := db.CommitCycle(cycle); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/32, "ns/reading")
}
