package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/verify"
	"mallgrid/store"
)

// mqttMeter is a Compere meter as the test plays it: a real MQTT client of
// the gateway's embedded broker that publishes what the test tells it and
// answers relay commands as a KPM33B does.
type mqttMeter struct {
	t      *testing.T
	id     string
	client paho.Client
	mu     sync.Mutex
	closed bool     // its relay: power on
	cmds   []string // the relay commands it took, "do1=0" …
}

func connectMeter(t *testing.T, addr, id, password string) *mqttMeter {
	t.Helper()
	m := &mqttMeter{t: t, id: id, closed: true}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetUsername("kpm").SetPassword(password).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	m.client = paho.NewClient(opts)
	if tok := m.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("meter %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { m.client.Disconnect(100) })
	tok := m.client.Subscribe("MQTT_TELECTRL_"+id[len(id)-8:], 1, func(_ paho.Client, msg paho.Message) {
		var cmd map[string]string
		if err := json.Unmarshal(msg.Payload(), &cmd); err != nil {
			t.Errorf("meter %s: command %q: %v", id, msg.Payload(), err)
			return
		}
		m.mu.Lock()
		m.closed = cmd["do1"] == "1"
		m.cmds = append(m.cmds, "do1="+cmd["do1"])
		m.mu.Unlock()
		m.publish("MQTT_TELECTRL_REP", map[string]any{"id": id, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01", "msg": ""})
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("meter %s: subscribe: %v", id, tok.Error())
	}
	return m
}

func (m *mqttMeter) publish(topic string, fields map[string]any) {
	raw, _ := json.Marshal(fields)
	if tok := m.client.Publish(topic, 1, false, raw); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		m.t.Errorf("meter %s: publish %s: %v", m.id, topic, tok.Error())
	}
}

// energy publishes the meter's counter at kwh, now by its own clock.
func (m *mqttMeter) energy(kwh string) {
	m.publish("MQTT_ENY_NOW", map[string]any{"id": m.id, "zygsz": json.Number(kwh), "zyfsz": json.Number(kwh),
		"time": time.Now().Format("20060102150405"), "isend": "1"})
}

func (m *mqttMeter) relay() (closed bool, cmds []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed, append([]string(nil), m.cmds...)
}

// newMQTTMall is a mall whose one bus is the gateway's embedded MQTT
// broker on a free port, with two Compere meters: M-q1 (a KPM33B, tenant
// T-q1 on a flat ¥100/kWh, cut off at once when its credit is gone) and
// M-q2 (a KPM31, a public meter).
func newMQTTMall(t *testing.T) (*testMall, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The meters' password is "secret".
	yaml := fmt.Sprintf("site: {name: Test Mall}\nstorage: {path: %s}\n", filepath.Join(t.TempDir(), "m.db")) +
		"http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"buses:\n  - {name: f3, type: compere-mqtt, listen: '" + addr + "', username: kpm,\n" +
		"     password_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b}\n" +
		"meters:\n" +
		"  - {id: M-q1, bus: f3, address: '33B1225950027', model: kpm33b, tenant: T-q1}\n" +
		"  - {id: M-q2, bus: f3, address: '31B1225950101', model: kpm31, role: public}\n" +
		"  - {id: M-q3, bus: f3, address: '33B1225950099', model: kpm33b, role: public}\n" +
		"tenants: [{id: T-q1, name: Noodle bar}]\n" +
		"tariffs: [{name: standard, kind: flat, price: '100.00'}]\n" +
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n"
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return &testMall{cfg: cfg, dbPath: cfg.Storage.Path}, addr
}

// TestMQTTMeters_BilledCutOffRestored: Compere meters on the embedded
// broker are first-class meters. Their counters are billed to the Wh
// through the same pipeline as a Modbus meter's; a tenant without credit
// is cut off by a relay command the meter confirms with its operation id;
// a top-up restores power the same way; the meters' values show on the
// API; verify passes on the database.
func TestMQTTMeters_BilledCutOffRestored(t *testing.T) {
	t.Parallel()
	mall, addr := newMQTTMall(t)
	base, stop := mall.start(t)
	waitFor(t, 10*time.Second, "the broker", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	q1 := connectMeter(t, addr, "33B1225950027", "secret")
	q2 := connectMeter(t, addr, "31B1225950101", "secret")
	// M-q3 is configured but sends nothing: a client listening on its
	// command topic sees whether the gateway sends it anything.
	q3 := connectMeter(t, addr, "33B1225950099", "secret")

	// T-q1 has no credit: the first ten Wh make it exhausted, and with no
	// grace its meter is cut off.
	q1.energy("100.000")
	q1.energy("100.010")
	q2.energy("7.250")
	q1.publish("MQTT_RT_DATA", map[string]any{"id": q1.id, "ua": 229.1, "ia": 9.7, "zyggl": 6.69, "time": time.Now().Format("20060102150405"), "isend": "1"})
	waitFor(t, 15*time.Second, "M-q1 cut off", func() bool {
		closed, _ := q1.relay()
		return !closed
	})
	waitFor(t, 10*time.Second, "T-q1 cut off in the books", func() bool { return account(t, base, "T-q1").State == "cut_off" })

	// A top-up of ¥100 restores it.
	if code := call(t, "POST", base+"/api/v1/accounts/T-q1/topups", "till-secret", `{"amount":"100.00","ref":"P-MQTT-1","channel":"cash"}`, nil); code != 201 && code != 200 {
		t.Fatalf("top-up = %d", code)
	}
	waitFor(t, 15*time.Second, "M-q1 restored, confirmed to the gateway", func() bool {
		closed, _ := q1.relay()
		var v struct {
			Relay struct {
				Actual string `json:"actual"`
			} `json:"relay"`
		}
		getJSON(t, base+"/api/v1/meters/M-q1", &v)
		return closed && v.Relay.Actual == "closed"
	})
	// 0.315 kWh in all at ¥100: ¥31.50, to the Wh.
	q1.energy("100.315")
	q2.energy("7.250") // its next minute: the state its command confirmed is stored with it
	waitFor(t, 10*time.Second, "the energy shown", func() bool {
		var m struct {
			ImportKWh string `json:"import_kwh"`
		}
		getJSON(t, base+"/api/v1/meters/M-q1", &m)
		return m.ImportKWh == "100.315"
	})
	var q2view struct {
		ImportKWh string `json:"import_kwh"`
		Online    bool   `json:"online"`
	}
	getJSON(t, base+"/api/v1/meters/M-q2", &q2view)
	if q2view.ImportKWh != "7.250" || !q2view.Online {
		t.Errorf("M-q2 = %+v; want 7.250 kWh, online", q2view)
	}
	// Its state unknown at first (a KPM33B never reports it), M-q1 may
	// have been told to close before it ran out: the same state again.
	_, cmds := q1.relay()
	if n := len(cmds); n < 2 || cmds[n-2] != "do1=0" || cmds[n-1] != "do1=1" || slices.Index(cmds, "do1=0") != n-2 {
		t.Errorf("M-q1 took %v; want one cut-off, then one restore", cmds)
	}
	// M-q2's state, unknown, was commanded: closed.
	if closed, cmds := q2.relay(); !closed || fmt.Sprint(cmds) != "[do1=1]" {
		t.Errorf("M-q2 took %v; want told once to stay closed", cmds)
	}
	// ¥100 less 0.315 kWh at ¥100: ¥68.50 left, posted or accrued.
	waitFor(t, 10*time.Second, "the charge", func() bool {
		a := account(t, base, "T-q1")
		bal, err1 := billing.ParseMoney(a.Balance)
		acc, err2 := billing.ParseMoney(a.Accrued)
		return err1 == nil && err2 == nil && bal-acc == 68*billing.Yuan+50*billing.Fen
	})
	stop()
	// M-q3 never spoke: its state unknown, it was sent nothing — a command
	// could only fail and raise relay_fault for a meter not heard.
	if _, cmds := q3.relay(); len(cmds) > 0 {
		t.Errorf("M-q3, never heard, was told %v; want nothing", cmds)
	}
	db, err := store.Open(mall.dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.EventsAfter(0, 10000)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Meter == "M-q3" && strings.HasPrefix(e.Kind, "relay_") {
			t.Errorf("M-q3, never heard: event %s %s", e.Kind, e.Text)
		}
	}
	rep, err := verify.File(mall.dbPath)
	if err != nil || len(rep.Violations) > 0 {
		t.Errorf("verify: %v %v", err, rep.Violations)
	}

	// After a restart the relays' states are known from the last readings
	// stored: no meter is told anything.
	base, _ = mall.start(t)
	waitFor(t, 10*time.Second, "the broker again", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	q1, q2 = connectMeter(t, addr, "33B1225950027", "secret"), connectMeter(t, addr, "31B1225950101", "secret")
	q1.energy("100.316")
	q2.energy("7.251")
	waitFor(t, 10*time.Second, "the new readings", func() bool {
		var m struct {
			ImportKWh string `json:"import_kwh"`
		}
		getJSON(t, base+"/api/v1/meters/M-q2", &m)
		return m.ImportKWh == "7.251"
	})
	time.Sleep(2500 * time.Millisecond) // two reconciliations
	if _, c1 := q1.relay(); len(c1) > 0 {
		t.Errorf("after a restart M-q1 was told %v; want nothing", c1)
	}
	if _, c2 := q2.relay(); len(c2) > 0 {
		t.Errorf("after a restart M-q2 was told %v; want nothing", c2)
	}
}

// A compere-mqtt bus whose port is taken keeps trying, and the daemon still
// stops at once when asked.
func TestMQTTMeters_PortTakenRetriedAndStops(t *testing.T) {
	t.Parallel()
	mall, addr := newMQTTMall(t)
	taken, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the free port was taken meanwhile: %v", err)
	}
	defer taken.Close()
	base, stop := mall.start(t)
	waitFor(t, 10*time.Second, "the bus reported down", func() bool {
		var h struct {
			Problems []string `json:"problems"`
		}
		getJSON(t, base+"/healthz", &h)
		return strings.Contains(fmt.Sprint(h.Problems), "address already in use")
	})
	time.Sleep(1500 * time.Millisecond) // a retry or two
	if took := stop(); took > 5*time.Second {
		t.Errorf("stopping took %s; want at once", took)
	}
}

// mallBroker runs an in-process broker as a mall's own on addr, anyone
// admitted; the returned func stops it.
func mallBroker(t *testing.T, addr string) func() {
	t.Helper()
	_, stop := mallBrokerServer(t, addr)
	return stop
}

// mallBrokerServer is mallBroker that also returns the broker, for a test
// to see its subscriptions.
func mallBrokerServer(t *testing.T, addr string) (*mqtt.Server, func()) {
	t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "mall", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = s.Close() }) }
	t.Cleanup(stop)
	return s, stop
}

// A client bus whose link to the mall's broker is down is reported down
// once it has been so for the offline time — not three upload intervals
// later by its meters' silence — and up again when the link is back.
func TestMQTTMeters_ClientBusDownWithItsBroker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stopBroker := mallBroker(t, addr)
	yaml := fmt.Sprintf("site: {name: Test Mall}\nstorage: {path: %s}\n", filepath.Join(t.TempDir(), "m.db")) +
		"http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"buses:\n  - {name: tw, type: compere-mqtt, broker: 'tcp://" + addr + "'}\n" +
		"meters:\n  - {id: M-t1, bus: tw, address: '33B1225950027', model: kpm33b, role: public}\n"
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	mall := &testMall{cfg: cfg, dbPath: cfg.Storage.Path, offlineAfter: time.Second}
	base, _ := mall.start(t)
	problems := func() string {
		var h struct {
			Problems []string `json:"problems"`
		}
		getJSON(t, base+"/healthz", &h)
		return fmt.Sprint(h.Problems)
	}
	time.Sleep(1500 * time.Millisecond) // connected, and the offline time gone by
	if p := problems(); strings.Contains(p, "not connected") {
		t.Fatalf("problems with the broker up: %s", p)
	}
	stopBroker()
	waitFor(t, 10*time.Second, "the bus reported down", func() bool { return strings.Contains(problems(), "not connected to the broker") })
	mallBroker(t, addr)
	waitFor(t, 20*time.Second, "the bus up again", func() bool { return !strings.Contains(problems(), "not connected to the broker") })
}
