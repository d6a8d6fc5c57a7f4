package mqttlink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
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

// run starts l and returns a stop that cancels it and waits for Run.
func run(t *testing.T, l Link) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// Every goroutine a link starts ends with Run: the broker's with the
// connection of the meter still connected to it, the client's with its
// connection to the broker.
func TestRun_GoroutinesEndWithContext(t *testing.T) {
	base := runtime.NumGoroutine()
	sum := sha256.Sum256([]byte("secret"))
	l, err := New(config.Bus{Name: "f3", Type: config.BusCompereMQTT, Listen: "127.0.0.1:0", Username: "kpm",
		PasswordSHA256: hex.EncodeToString(sum[:])}, []string{meterA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e := l.(*Embedded)
	stop := run(t, e)
	for e.Addr() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	m, err := meter(t, "tcp://"+e.Addr().String(), "kpm-a", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	tok := m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, 1))
	next(t, e)
	wait(t, tok)
	stop()
	m.Disconnect(0) // the meter's own goroutines are paho's, not the link's
	settled(t, base)

	b := startMallBroker(t, "127.0.0.1:0")
	base = runtime.NumGoroutine()
	l, err = New(config.Bus{Name: "tw", Type: config.BusCompereMQTT, Broker: "tcp://" + b.addr, ClientID: "gw-leak"}, []string{meterA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, l)
	waitConnected(t, l)
	stop()
	settled(t, base)
}
