package comperesim

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"mallgrid/drivers/compere"
)

func TestMain(m *testing.M) {
	// A reconnection within the tests' waits.
	connectRetryWait = 100 * time.Millisecond
	maxReconnectWait = 300 * time.Millisecond
	connectTimeout = 2 * time.Second
	os.Exit(m.Run())
}

const (
	meterUser, meterPass = "meter", "m3ter-secret"
	gwUser, gwPass       = "gateway", "gw-secret"
)

// broker is the mall's broker, in process: only the two users may connect.
type broker struct {
	addr string
	s    *mqtt.Server
	once sync.Once
}

func startBroker(t *testing.T, addr string) *broker {
	t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ledger := &auth.Ledger{
		Users: auth.Users{
			meterUser: {Username: meterUser, Password: meterPass},
			gwUser:    {Username: gwUser, Password: gwPass},
		},
		ACL: auth.ACLRules{{}}, // every user may publish and subscribe to anything
	}
	if err := s.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger}); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "mall", Address: addr})
	var err error
	for range 50 { // the port of a broker just closed may take a moment to be free
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
	b := &broker{addr: ln.Address(), s: s}
	t.Cleanup(b.stop)
	return b
}

// stop closes the broker once (mochi's Close panics the second time).
func (b *broker) stop() { b.once.Do(func() { _ = b.s.Close() }) }

func (b *broker) url() string { return "tcp://" + b.addr }

// msg is one message the gateway received.
type msg struct {
	topic   string
	payload []byte
}

// gateway is the gateway's side: a paho client subscribed to every topic
// the meters publish.
type gateway struct {
	t    *testing.T
	pc   paho.Client
	msgs chan msg
}

func newGateway(t *testing.T, b *broker) *gateway {
	t.Helper()
	g := &gateway{t: t, msgs: make(chan msg, 4096)}
	o := paho.NewClientOptions().AddBroker(b.url()).SetClientID("gw-test").
		SetUsername(gwUser).SetPassword(gwPass).SetConnectTimeout(2 * time.Second)
	g.pc = paho.NewClient(o)
	wait(t, g.pc.Connect())
	filters := map[string]byte{}
	for _, topic := range compere.Subscriptions() {
		filters[string(topic)] = 1
	}
	wait(t, g.pc.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		select {
		case g.msgs <- msg{m.Topic(), append([]byte(nil), m.Payload()...)}:
		default:
			t.Error("gateway queue full")
		}
	}))
	t.Cleanup(func() { g.pc.Disconnect(100) })
	return g
}

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("mqtt: no answer in time")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message, or fails the test after d.
func (g *gateway) next(d time.Duration) msg {
	g.t.Helper()
	select {
	case m := <-g.msgs:
		return m
	case <-time.After(d):
		g.t.Fatalf("no message within %s", d)
		return msg{}
	}
}

// send publishes a command the way the gateway does.
func (g *gateway) send(c compere.Command, err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
	wait(g.t, g.pc.Publish(c.Topic, 1, false, c.Payload))
}

// decoded is a message joined and decoded, as the gateway reads it.
type decoded struct {
	raw msg
	pkt compere.Packet
	m   compere.Message
}

// reader joins and decodes the gateway's messages.
type reader struct {
	g *gateway
	j compere.Joiner
}

// next returns the next complete, decoded message within d.
func (r *reader) next(d time.Duration) decoded {
	r.g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := r.g.next(time.Until(deadline))
		p, err := compere.Parse(m.topic, m.payload)
		if err != nil {
			r.g.t.Fatalf("Parse %s %s: %v", m.topic, m.payload, err)
		}
		full, ok, lost := r.j.Add(p)
		if lost != nil {
			r.g.t.Errorf("lost a split set: %v", lost)
		}
		if !ok {
			continue
		}
		dm, err := compere.Decode(full, time.UTC)
		if err != nil {
			r.g.t.Fatalf("Decode %s %s: %v", m.topic, m.payload, err)
		}
		return decoded{m, full, dm}
	}
}

// until returns the next decoded message of topic from id ("" any).
func (r *reader) until(topic compere.Topic, id string, d time.Duration) decoded {
	r.g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := r.next(time.Until(deadline))
		if m.pkt.Topic == topic && (id == "" || m.pkt.ID == id) {
			return m
		}
	}
}

// fastClock runs an hour for every real second from 10:00 UTC, so a
// test sees whole Wh in moments.
func fastClock() func() time.Time {
	start := time.Now()
	base := time.Date(2026, 1, 12, 10, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Since(start) * 3600) }
}

// run starts d and stops it at the test's end, checking Run returns.
func run(t *testing.T, d *Device) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once atomic.Bool
	t.Cleanup(func() {
		if !once.CompareAndSwap(false, true) {
			return
		}
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
}

func model(t *testing.T, name string) compere.Model {
	t.Helper()
	m, ok := compere.ModelByName(name)
	if !ok {
		t.Fatalf("no model %s", name)
	}
	return m
}

// newDevice builds a device on b with fast uploads.
func newDevice(t *testing.T, b *broker, modelName, id string, edit func(*Config)) *Device {
	t.Helper()
	cfg := Config{
		Model: model(t, modelName), ID: id, Broker: b.url(), Username: meterUser, Password: meterPass,
		RealTime: 100 * time.Millisecond, Energy: 150 * time.Millisecond, Location: time.UTC, Seed: 7,
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func oprid(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, compere.OprIDLen)
	for i := range b {
		b[i] = hex[(n+i)%16]
	}
	return string(b)
}
