package tech

import (
	"context"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// BenchmarkScan_EmptyAddress is what `meter scan` pays per address where
// nothing answers, with its own settings (200 ms timeout, the transport's
// default quiet time): two tries of timeout + quiet since the retry for
// libmodbus-based slaves. Reported as ms/address; docs/BENCHMARKS.md.
//
//	go test -run '^$' -bench ScanEmpty -benchtime 20x ./gateway/tech
func BenchmarkScan_EmptyAddress(b *testing.B) {
	bus, err := sim.NewBus()
	if err != nil {
		b.Fatal(err)
	}
	pty, err := sim.NewPTY()
	if err != nil {
		b.Fatal(err)
	}
	defer pty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
	defer func() { cancel(); <-done }()
	tr, err := modbus.Open(modbus.Config{Kind: modbus.RTU, Address: pty.Path, Timeout: 200 * time.Millisecond, LockDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		a := 1 + i%247
		if res, err := Scan(ctx, tr, a, a, meter.Builtin(), nil); err != nil || len(res.Found) != 0 {
			b.Fatalf("scan of empty address %d: %+v, %v", a, res, err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/address")
}
