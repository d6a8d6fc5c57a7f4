package comperesim

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"mallgrid/drivers/compere"
)

// settled waits for the goroutine count to come back to at most n.
func settled(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Run returned; want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runFor runs d until stop is called; stop waits for Run to return.
func runFor(t *testing.T, d *Device) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

// TestRun_EveryGoroutineEnds: connected (a KPM312's four clients, one
// command answered) or still trying a broker that is not there, Run leaves
// no goroutine behind.
func TestRun_EveryGoroutineEnds(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	stop := runFor(t, newDevice(t, b, "kpm312", id312, nil))
	r := &reader{g: g}
	r.until(compere.TopicRTData, "3120208700004", 5*time.Second)
	m, _ := compere.ModelByName("kpm312")
	g.send(m.RelayCommand("3120208700004", 1, false, oprid(9)))
	r.until(compere.TopicTeleCtrlRep, "3120208700004", 5*time.Second)
	stop()
	settled(t, base)

	// A port nobody listens on: the meter keeps trying until cancelled.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	d, err := New(Config{Model: m, ID: id312, Broker: "tcp://" + addr, RealTime: 50 * time.Millisecond, Energy: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop = runFor(t, d)
	time.Sleep(400 * time.Millisecond) // a few publishes and retries
	stop()
	settled(t, base)
}
