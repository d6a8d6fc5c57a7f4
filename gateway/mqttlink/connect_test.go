package mqttlink

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// lockedLog is a log the test reads while the link writes it.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		all := len(line) > 0
		for _, p := range parts {
			all = all && bytes.Contains(line, []byte(p))
		}
		if all {
			n++
		}
	}
	return n
}

// runLoggedClient runs the link of bus, its log in lg, until the test ends.
func runLoggedClient(t *testing.T, bus config.Bus, lg *lockedLog) Link {
	t.Helper()
	link, err := New(bus, []string{meterA}, zerolog.New(lg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return link
}

func waitLog(t *testing.T, lg *lockedLog, want int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for n := lg.count(parts...); n < want; n = lg.count(parts...) {
		if time.Now().After(deadline) {
			lg.mu.Lock()
			defer lg.mu.Unlock()
			t.Fatalf("%d log lines with %q; want %d. Log:\n%s", n, parts, want, lg.buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A broker that refuses the gateway's credentials is a warning at every
// attempt, with the broker's reason, not silence: the operator would
// otherwise see only meters gone quiet.
func TestClient_RefusedConnectionReported(t *testing.T) {
	s := mqtt.New(&mqtt.Options{Logger: slogger(zerolog.Nop())})
	ledger := &auth.Ledger{Users: auth.Users{"mallgrid": {Username: "mallgrid", Password: "right"}}, ACL: auth.ACLRules{{}}}
	if err := s.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger}); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "mall", Address: "127.0.0.1:0"})
	if err := s.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	var lg lockedLog
	l := runLoggedClient(t, config.Bus{Name: "tw", Type: config.BusCompereMQTT, Broker: "tcp://" + ln.Address(),
		Username: "mallgrid", Password: "wrong", ClientID: "gw-refused"}, &lg)
	// connectRetryWait is 200 ms here: two attempts within the wait.
	waitLog(t, &lg, 2, `"level":"warn"`, `"mqtt connect failed"`, `not Authorized`, `"client_id":"gw-refused"`)
	if l.Connected() {
		t.Error("Connected() = true with the credentials refused")
	}
}

// A broker not there when the gateway starts: each attempt a warning, and
// the link comes up once the broker does.
func TestClient_BrokerLateAtStart(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	var lg lockedLog
	l := runLoggedClient(t, config.Bus{Name: "tw", Type: config.BusCompereMQTT, Broker: "tcp://" + addr, ClientID: "gw-late"}, &lg)
	waitLog(t, &lg, 1, `"level":"warn"`, `"mqtt connect failed"`)
	startMallBroker(t, addr)
	waitConnected(t, l)
	waitLog(t, &lg, 1, `"mqtt link up"`)
}
