package mqttlink

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

func TestMain(m *testing.M) {
	// A reconnection within the tests' waits; the doubling starts at 1 s.
	maxReconnectWait = 2 * time.Second
	// An attempt caught by a broker as it closes gets no CONNACK; the
	// next attempt must come within the tests' waits.
	connectTimeout = 2 * time.Second
	connectRetryWait = 200 * time.Millisecond
	os.Exit(m.Run())
}

// mallBroker is the mall's own broker, in process: anyone may connect.
type mallBroker struct {
	t    *testing.T
	addr string
	s    *mqtt.Server
	once sync.Once
}

func startMallBroker(t *testing.T, addr string) *mallBroker {
	t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slogger(zerolog.Nop())})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "mall", Address: addr})
	var err error
	// The port of a broker just closed may take a moment to be free.
	for range 50 {
		if err = s.AddListener(ln); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &mallBroker{t: t, addr: ln.Address(), s: s}
	t.Cleanup(b.stop)
	return b
}

// stop closes the broker once (mochi's Close panics the second time).
func (b *mallBroker) stop() { b.once.Do(func() { _ = b.s.Close() }) }

// runClient runs the link of a bus of meterA and meterB through broker,
// with session id; stop ends it and checks Run returned.
func runClient(t *testing.T, broker, id string) (l *Client, stop func()) {
	t.Helper()
	bus := config.Bus{Name: "tw", Type: config.BusCompereMQTT, Broker: broker, ClientID: id}
	link, err := New(bus, []string{meterA, meterB}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return link.(*Client), stop
}

func waitConnected(t *testing.T, l Link) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for !l.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("link not connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The subscriptions follow CONNACK; give the SUBACK a moment.
	time.Sleep(100 * time.Millisecond)
}

func TestClient_MessagesAndPublish(t *testing.T) {
	b := startMallBroker(t, "127.0.0.1:0")
	broker := "tcp://" + b.addr
	l, _ := runClient(t, broker, "gw-1")
	waitConnected(t, l)
	m, err := meter(t, broker, "kpm-a", "", "")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, m.Publish("MQTT_RT_DATA", 1, false, rtData(meterX, 1))) // another tenant's meter on the mall's broker
	wait(t, m.Publish("MQTT_ENY_NOW", 1, false, rtData(meterA, 2)))
	if got := next(t, l); got.Topic != "MQTT_ENY_NOW" || string(got.Payload) != string(rtData(meterA, 2)) {
		t.Errorf("got %s %s; want meter A's ENY_NOW", got.Topic, got.Payload)
	}
	if n := l.Dropped(); n != 1 {
		t.Errorf("Dropped() = %d; want 1", n)
	}

	topic := CommandTopic("MQTT_TELECTRL_", meterA)
	cmds := make(chan string, 1)
	wait(t, m.Subscribe(topic, 1, func(_ paho.Client, msg paho.Message) { cmds <- string(msg.Payload()) }))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := l.Publish(ctx, topic, []byte(`{"do1":"1"}`)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case got := <-cmds:
		if got != `{"do1":"1"}` {
			t.Errorf("meter got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the meter got no command")
	}
}

// The broker restarts (losing every session): the link reconnects and
// subscribes again by itself.
func TestClient_ReconnectsAndResubscribes(t *testing.T) {
	b := startMallBroker(t, "127.0.0.1:0")
	broker := "tcp://" + b.addr
	l, _ := runClient(t, broker, "gw-1")
	waitConnected(t, l)
	b.stop()
	deadline := time.Now().Add(5 * time.Second)
	for l.Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Connected() {
		t.Fatal("Connected() still true with the broker stopped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := l.Publish(ctx, "MQTT_TELECTRL_25950027", []byte(`{}`)); err == nil {
		t.Error("Publish with the broker down: nil; want no PUBACK in time")
	}
	startMallBroker(t, b.addr)
	waitConnected(t, l)
	m, err := meter(t, broker, "kpm-a", "", "")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, m.Publish("MQTT_RT_DATA", 1, false, rtData(meterB, 230)))
	for {
		// The command that timed out above may be sent on reconnection;
		// only readings arrive here.
		got := next(t, l)
		if string(got.Payload) == string(rtData(meterB, 230)) {
			break
		}
		t.Errorf("unexpected %s %s", got.Topic, got.Payload)
	}
}

// While the gateway is away, the broker keeps its persistent session's
// QoS 1 messages; the link, back under the same client id, gets them.
func TestClient_PersistentSession(t *testing.T) {
	b := startMallBroker(t, "127.0.0.1:0")
	broker := "tcp://" + b.addr
	l, stop := runClient(t, broker, "gw-persist")
	waitConnected(t, l)
	stop()
	// The link's Run has returned, but the broker may not yet have seen its
	// connection close: a message published meanwhile goes to that
	// connection and is lost with it, not kept in the session.
	deadline := time.Now().Add(5 * time.Second)
	for {
		cl, ok := b.s.Clients.Get("gw-persist")
		if !ok || cl.Closed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broker still has gw-persist connected 5 s after its link stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m, err := meter(t, broker, "kpm-a", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wait(t, m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, float64(220+i))))
	}
	l2, _ := runClient(t, broker, "gw-persist")
	// mochi resends a session's queued messages in no particular order
	// (Mosquitto keeps it): all three, each once.
	want := map[string]bool{}
	for i := range 3 {
		want[string(rtData(meterA, float64(220+i)))] = true
	}
	for range 3 {
		got := string(next(t, l2).Payload)
		if !want[got] {
			t.Errorf("got %s: not one of the three, or twice", got)
		}
		delete(want, got)
	}
}

// Messages the link received but the gateway had not taken when it
// stopped are not acknowledged: the broker sends them again on the next
// connection, and the one taken is not sent again.
func TestClient_MessagesNotTakenComeAgain(t *testing.T) {
	b := startMallBroker(t, "127.0.0.1:0")
	broker := "tcp://" + b.addr
	l, stop := runClient(t, broker, "gw-untaken")
	waitConnected(t, l)
	m, err := meter(t, broker, "kpm-a", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wait(t, m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, float64(220+i))))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(l.Messages()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	taken := string(next(t, l).Payload)
	stop()

	l2, _ := runClient(t, broker, "gw-untaken")
	want := map[string]bool{}
	for i := range 3 {
		if p := string(rtData(meterA, float64(220+i))); p != taken {
			want[p] = true
		}
	}
	for range 2 {
		got := string(next(t, l2).Payload)
		if !want[got] {
			t.Errorf("got %s: the one taken (%s), or twice", got, taken)
		}
		delete(want, got)
	}
	select {
	case got := <-l2.Messages():
		t.Errorf("a third message came again: %s", got.Payload)
	case <-time.After(300 * time.Millisecond):
	}
}
