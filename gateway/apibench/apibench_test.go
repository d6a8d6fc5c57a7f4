package apibench

import (
	"context"
	"testing"
)

func startRig(b *testing.B) *Rig {
	b.Helper()
	rg, err := Start(2000)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rg.Close() })
	return rg
}

// BenchmarkMeters_Full is GET /api/v1/meters of 2,000 meters over a real
// TCP socket, gzipped as a browser asks for it.
func BenchmarkMeters_Full(b *testing.B) {
	rg := startRig(b)
	var wire int
	for b.Loop() {
		w, _, err := rg.Get("/api/v1/meters")
		if err != nil {
			b.Fatal(err)
		}
		wire = w
	}
	b.ReportMetric(float64(wire), "gzip-bytes")
}

// BenchmarkMeters_Page100 is a page of 100 of them, sorted by power.
func BenchmarkMeters_Page100(b *testing.B) {
	rg := startRig(b)
	var wire int
	for b.Loop() {
		w, _, err := rg.Get("/api/v1/meters?sort=-power&limit=100")
		if err != nil {
			b.Fatal(err)
		}
		wire = w
	}
	b.ReportMetric(float64(wire), "gzip-bytes")
}

// The table's rows come out with figures (a short run).
func TestRun(t *testing.T) {
	rows, err := Run(context.Background(), Options{Meters: 300, Requests: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows; want 5", len(rows))
	}
	for _, r := range rows {
		t.Logf("%s\t%s\t%s\t%v", r.Name, r.Measured, r.Target, r.OK)
	}
}
