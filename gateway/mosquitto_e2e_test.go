//go:build e2e

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/verify"
)

// Compere meters through Debian's mosquitto as the mall's broker: the
// gateway is a client of it (a compere-mqtt bus with broker:), and the
// meters' side is mosquitto_pub and mosquitto_sub, so that nothing of
// paho or mochi-mqtt stands on both ends of the wire.

// mosquittoTools are the Debian binaries the test needs (packages
// mosquitto and mosquitto-clients).
var mosquittoTools = []string{"/usr/sbin/mosquitto", "mosquitto_pub", "mosquitto_sub", "mosquitto_passwd"}

// needMosquitto skips the test where the binaries are missing, except in
// CI (CI set, as .ci/run and most CI services do), where a missing package
// is a broken setup that must not pass as a skip.
func needMosquitto(t *testing.T) {
	t.Helper()
	for _, name := range mosquittoTools {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed in CI (apt-get install mosquitto mosquitto-clients): %v", name, err)
			}
			t.Skipf("%s not installed (apt-get install mosquitto mosquitto-clients): %v", name, err)
		}
	}
}

// mosquitto is a broker daemon on 127.0.0.1 with its configuration,
// password file, persistence and log in a temporary directory. Users:
// "mallgrid" (password gw-secret) and "kpm" (the meters, secret).
type mosquitto struct {
	t    *testing.T
	dir  string
	port string
	cmd  *exec.Cmd
	done chan struct{}
}

func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	b := &mosquitto{t: t, dir: t.TempDir(), port: port}
	pw := filepath.Join(b.dir, "passwd")
	for i, u := range [][2]string{{"mallgrid", "gw-secret"}, {"kpm", "secret"}} {
		args := []string{"-b", pw, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v %s", u[0], err, out)
		}
	}
	// user root: run as root (CI), mosquitto would otherwise drop to the
	// mosquitto user, which cannot write into this test's directory.
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\n"+
		"persistence true\npersistence_location %s/\nlog_dest file %s\nlog_type all\nuser root\n",
		port, pw, b.dir, filepath.Join(b.dir, "mosquitto.log"))
	if err := os.WriteFile(filepath.Join(b.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(func() {
		b.stop(syscall.SIGTERM)
		if t.Failed() {
			raw, _ := os.ReadFile(filepath.Join(b.dir, "mosquitto.log"))
			t.Logf("mosquitto.log:\n%s", raw)
		}
	})
	return b
}

// start runs the daemon and waits until it takes connections.
func (b *mosquitto) start() {
	b.t.Helper()
	b.cmd = exec.Command("/usr/sbin/mosquitto", "-c", filepath.Join(b.dir, "mosquitto.conf"))
	var stderr bytes.Buffer
	b.cmd.Stderr = &stderr
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("mosquitto: %v", err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait() // its exit is the one the test caused, or seen below
		close(done)
	}(b.cmd, b.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("mosquitto exited at start: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto not listening on %s: %v", b.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the daemon with sig and waits for it. SIGTERM lets it save
// its persistence file; SIGKILL loses what it holds since the last save.
func (b *mosquitto) stop(sig syscall.Signal) {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// logSize is the length of mosquitto's log so far, a mark for logCount.
func (b *mosquitto) logSize() int {
	raw, _ := os.ReadFile(filepath.Join(b.dir, "mosquitto.log"))
	return len(raw)
}

// logCount is how many lines of mosquitto's log after mark hold every
// one of parts.
func (b *mosquitto) logCount(mark int, parts ...string) int {
	b.t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.dir, "mosquitto.log"))
	if err != nil || len(raw) < mark {
		b.t.Fatalf("mosquitto.log: %v (%d bytes, mark %d)", err, len(raw), mark)
	}
	n := 0
	for _, line := range strings.Split(string(raw[mark:]), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (b *mosquitto) addr() string { return net.JoinHostPort("127.0.0.1", b.port) }

// pub publishes one message at QoS 1 as a meter, as mosquitto_pub does:
// it returns once the broker acknowledged it.
func (b *mosquitto) pub(topic string, fields map[string]any) {
	b.t.Helper()
	raw, err := json.Marshal(fields)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mosquitto_pub", "-h", "127.0.0.1", "-p", b.port, "-u", "kpm", "-P", "secret",
		"-q", "1", "-t", topic, "-m", string(raw)).CombinedOutput()
	if err != nil {
		b.t.Fatalf("mosquitto_pub %s %s: %v %s", topic, raw, err, out)
	}
}

// energy publishes a meter's counter at kwh, at its own clock's now.
func (b *mosquitto) energy(id, kwh string) {
	b.t.Helper()
	b.pub("MQTT_ENY_NOW", map[string]any{"id": id, "zygsz": json.Number(kwh), "zyfsz": json.Number(kwh),
		"time": time.Now().Format("20060102150405"), "isend": "1"})
}

// relayMeter is a meter's relay as mosquitto_sub and mosquitto_pub play
// it: a persistent session (client id "relay-<id>", clean session off)
// subscribed at QoS 1 to its MQTT_TELECTRL topic, so that a command sent
// between two runs of mosquitto_sub -C 1 waits in the broker; each command
// is answered by MQTT_TELECTRL_REP with its operation id and code.
type relayMeter struct {
	b    *mosquitto
	id   string
	code string // the answer's code: "01" done

	mu     sync.Mutex
	closed bool     // power on
	cmds   []string // "do1=0" …, in order
	errs   []string // what went wrong in the helper
	done   chan struct{}
}

func (b *mosquitto) relayMeter(ctx context.Context, id, code string) *relayMeter {
	b.t.Helper()
	m := &relayMeter{b: b, id: id, code: code, closed: true}
	// The session exists before the gateway sends anything: one
	// subscription that times out at once makes it.
	if _, err := m.sub(ctx, 1); err != nil && !errors.Is(err, errNoCommand) {
		b.t.Fatalf("meter %s: first subscription: %v", id, err)
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			m.answerOne(ctx)
		}
	}()
	return m
}

var errNoCommand = errors.New("no command")

// sub waits up to wait seconds for one relay command and returns its
// payload; errNoCommand if none came.
func (m *relayMeter) sub(ctx context.Context, wait int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(wait+5)*time.Second)
	defer cancel()
	topic := "MQTT_TELECTRL_" + m.id[len(m.id)-8:]
	cmd := exec.CommandContext(ctx, "mosquitto_sub", "-h", "127.0.0.1", "-p", m.b.port, "-u", "kpm", "-P", "secret",
		"-i", "relay-"+m.id, "-c", "-q", "1", "-t", topic, "-C", "1", "-W", fmt.Sprint(wait), "-v")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	line := strings.TrimSpace(string(out))
	if line == "" {
		var exit *exec.ExitError
		if errors.As(err, &exit) && strings.Contains(stderr.String(), "Timed out") {
			return nil, errNoCommand
		}
		return nil, fmt.Errorf("mosquitto_sub: %v %s", err, stderr.String())
	}
	// -v prints "topic payload".
	got, payload, ok := strings.Cut(line, " ")
	if !ok || got != topic {
		return nil, fmt.Errorf("mosquitto_sub printed %q; want %s and a payload", line, topic)
	}
	return []byte(payload), nil
}

// answerOne takes one command, if one comes, and answers it.
func (m *relayMeter) answerOne(ctx context.Context) {
	payload, err := m.sub(ctx, 2)
	if errors.Is(err, errNoCommand) || ctx.Err() != nil {
		return
	}
	if err != nil {
		// The broker may be down (the test restarts it): try again.
		m.note(err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		return
	}
	var cmd map[string]string
	if err := json.Unmarshal(payload, &cmd); err != nil || len(cmd["oprid"]) != 32 || (cmd["do1"] != "0" && cmd["do1"] != "1") {
		m.note(fmt.Sprintf("command %s: want do1 0|1 and a 32-character oprid (%v)", payload, err))
		return
	}
	m.mu.Lock()
	if m.code == "01" {
		m.closed = cmd["do1"] == "1"
	}
	m.cmds = append(m.cmds, "do1="+cmd["do1"])
	m.mu.Unlock()
	raw, _ := json.Marshal(map[string]string{"id": m.id, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": m.code, "msg": ""})
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(pctx, "mosquitto_pub", "-h", "127.0.0.1", "-p", m.b.port, "-u", "kpm", "-P", "secret",
		"-q", "1", "-t", "MQTT_TELECTRL_REP", "-m", string(raw)).CombinedOutput()
	if err != nil && ctx.Err() == nil {
		m.note(fmt.Sprintf("mosquitto_pub reply: %v %s", err, out))
	}
}

func (m *relayMeter) note(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, s)
}

func (m *relayMeter) relay() (closed bool, cmds []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed, append([]string(nil), m.cmds...)
}

// logBuffer keeps the gateway's log lines for the test to look for.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count is how many log lines hold s.
func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.buf.Bytes(), []byte(s))
}

// startLogged is testMall.start with the gateway's log also kept in lb.
func startLogged(t *testing.T, m *testMall, lb *logBuffer) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.MultiLevelWriter(checkedLog{t: t, show: zerolog.LevelWriterAdapter{Writer: zerolog.NewTestWriter(t)}}, lb)).
		Level(zerolog.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Config: m.cfg, Log: log, Listener: ln, Version: "test", SwitchGap: 500 * time.Millisecond})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() { checkEventTexts(t, m.dbPath, m.cfg.Location) })
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// mosquittoMall is newMQTTMall's mall with its bus a client of the broker
// at addr, under the persistent session "mallgrid-e2e".
func mosquittoMall(t *testing.T, addr string) *testMall {
	t.Helper()
	yaml := fmt.Sprintf("site: {name: Test Mall}\nstorage: {path: %s}\n", filepath.Join(t.TempDir(), "m.db")) +
		"http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"buses:\n  - {name: f3, type: compere-mqtt, broker: 'tcp://" + addr + "', username: mallgrid, password: gw-secret,\n" +
		"     client_id: mallgrid-e2e}\n" +
		"meters:\n" +
		"  - {id: M-q1, bus: f3, address: '33B1225950027', model: kpm33b, tenant: T-q1}\n" +
		"  - {id: M-q2, bus: f3, address: '31B1225950101', model: kpm31, role: public}\n" +
		"tenants: [{id: T-q1, name: Noodle bar}]\n" +
		"tariffs: [{name: standard, kind: flat, price: '100.00'}]\n" +
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n"
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return &testMall{cfg: cfg, dbPath: cfg.Storage.Path}
}

// TestE2E_MosquittoMeters: with the mall's broker a real mosquitto and
// the meters mosquitto_pub and mosquitto_sub, Compere meters are billed to
// the Wh, cut off and restored by confirmed commands; readings published
// while the gateway is down wait in its persistent session and are billed
// when it is back; a broker killed and restarted is reconnected to.
func TestE2E_MosquittoMeters(t *testing.T) {
	needMosquitto(t)
	began := time.Now()
	broker := startMosquitto(t)
	ctx, cancel := context.WithCancel(context.Background())
	const q1, q2 = "33B1225950027", "31B1225950101"
	r1, r2 := broker.relayMeter(ctx, q1, "01"), broker.relayMeter(ctx, q2, "01")
	t.Cleanup(func() {
		cancel()
		for _, r := range []*relayMeter{r1, r2} {
			<-r.done
			if len(r.errs) > 0 {
				t.Logf("meter %s helper: %q", r.id, r.errs)
			}
		}
	})

	mall := mosquittoMall(t, broker.addr())
	lb := &logBuffer{}
	base, stop := startLogged(t, mall, lb)
	waitFor(t, 15*time.Second, "the gateway's link up", func() bool { return lb.count(`"mqtt link up"`) == 1 })

	balance := func() (billing.Money, bool) {
		a := account(t, base, "T-q1")
		bal, err1 := billing.ParseMoney(a.Balance)
		acc, err2 := billing.ParseMoney(a.Accrued)
		return bal - acc, err1 == nil && err2 == nil
	}
	meterView := func(id string) (kwh, relay string) {
		var m struct {
			ImportKWh string `json:"import_kwh"`
			Relay     struct {
				Actual string `json:"actual"`
			} `json:"relay"`
		}
		getJSON(t, base+"/api/v1/meters/"+id, &m)
		return m.ImportKWh, m.Relay.Actual
	}

	// T-q1 has no credit: its first ten Wh exhaust it and, with no
	// grace, M-q1 is cut off by a command the meter confirms.
	broker.energy(q1, "100.000")
	broker.energy(q1, "100.010")
	broker.energy(q2, "7.250")
	broker.pub("MQTT_RT_DATA", map[string]any{"id": q1, "ua": 229.1, "ia": 9.7, "zyggl": 6.69,
		"time": time.Now().Format("20060102150405"), "isend": "1"})
	waitFor(t, 20*time.Second, "M-q1 cut off", func() bool {
		closed, _ := r1.relay()
		return !closed
	})
	waitFor(t, 10*time.Second, "T-q1 cut off in the books and M-q1 open on the API", func() bool {
		_, relay := meterView("M-q1")
		return account(t, base, "T-q1").State == "cut_off" && relay == "open"
	})

	// A top-up of ¥100 restores it, confirmed the same way.
	if code := call(t, "POST", base+"/api/v1/accounts/T-q1/topups", "till-secret", `{"amount":"100.00","ref":"P-MOSQ-1","channel":"cash"}`, nil); code != 201 && code != 200 {
		t.Fatalf("top-up = %d", code)
	}
	waitFor(t, 20*time.Second, "M-q1 restored", func() bool {
		closed, _ := r1.relay()
		return closed
	})
	waitFor(t, 10*time.Second, "M-q1 closed on the API", func() bool {
		_, relay := meterView("M-q1")
		return account(t, base, "T-q1").State != "cut_off" && relay == "closed"
	})
	// 0.315 kWh at ¥100: ¥31.50, to the Wh.
	broker.energy(q1, "100.315")
	waitFor(t, 10*time.Second, "100.315 kWh billed", func() bool {
		kwh, _ := meterView("M-q1")
		left, ok := balance()
		return kwh == "100.315" && ok && left == 68*billing.Yuan+50*billing.Fen
	})
	if kwh, _ := meterView("M-q2"); kwh != "7.250" {
		t.Errorf("M-q2 shows %s kWh; want 7.250", kwh)
	}
	_, cmds := r1.relay()
	if n := len(cmds); n < 2 || cmds[n-2] != "do1=0" || cmds[n-1] != "do1=1" || strings.Count(fmt.Sprint(cmds), "do1=0") != 1 {
		t.Errorf("M-q1 took %v; want one cut-off, then one restore", cmds)
	}

	// The gateway away, and mosquitto restarted meanwhile: two readings,
	// one from before the restart (kept in mosquitto's persistence file),
	// wait in the gateway's session and are billed when it is back under
	// the same client id, each delivered once.
	stop()
	broker.energy(q1, "100.320")
	broker.stop(syscall.SIGTERM)
	broker.start()
	broker.energy(q1, "100.330")
	mark := broker.logSize()
	lb = &logBuffer{}
	base, stop = startLogged(t, mall, lb)
	waitFor(t, 15*time.Second, "the readings of the gateway's absence billed", func() bool {
		kwh, _ := meterView("M-q1")
		left, ok := balance()
		return kwh == "100.330" && ok && left == 67*billing.Yuan
	})
	if n := broker.logCount(mark, "Sending PUBLISH to mallgrid-e2e", "'MQTT_ENY_NOW'"); n != 2 {
		t.Errorf("mosquitto sent the gateway %d MQTT_ENY_NOW on its return; want the 2 kept for it", n)
	}
	waitFor(t, 10*time.Second, "the gateway's link up again", func() bool { return lb.count(`"mqtt link up"`) == 1 })

	// mosquitto killed, its persistence file lost with the sessions in it,
	// and started again: the gateway reconnects, subscribes again, and
	// bills what comes after.
	broker.stop(syscall.SIGKILL)
	if err := os.Remove(filepath.Join(broker.dir, "mosquitto.db")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the gateway to see the link lost", func() bool { return lb.count(`"mqtt link lost; reconnecting"`) == 1 })
	broker.start()
	waitFor(t, 30*time.Second, "the gateway reconnected", func() bool { return lb.count(`"mqtt link up"`) == 2 })
	broker.energy(q1, "100.340")
	waitFor(t, 10*time.Second, "the reading after the broker's restart billed", func() bool {
		kwh, _ := meterView("M-q1")
		left, ok := balance()
		return kwh == "100.340" && ok && left == 66*billing.Yuan
	})
	if _, c := r1.relay(); len(c) != len(cmds) {
		t.Errorf("M-q1 took %v since the restore; want nothing", c[len(cmds):])
	}

	stop()
	rep, err := verify.File(mall.dbPath)
	if err != nil || len(rep.Violations) > 0 {
		t.Errorf("verify: %v %v", err, rep.Violations)
	}
	t.Logf("story told in %v", time.Since(began).Round(100*time.Millisecond))
}

// TestE2E_MosquittoRefusesGateway: a gateway whose password mosquitto
// refuses says so in its log at every attempt, with the broker's reason,
// rather than only leaving its meters silent.
func TestE2E_MosquittoRefusesGateway(t *testing.T) {
	needMosquitto(t)
	broker := startMosquitto(t)
	mall := mosquittoMall(t, broker.addr())
	mall.cfg.Buses[0].Password = "not-the-password"
	lb := &logBuffer{}
	_, stop := startLogged(t, mall, lb)
	waitFor(t, 15*time.Second, "two refusals in the log", func() bool {
		return lb.count(`"mqtt connect failed"`) >= 2 && lb.count(`not Authorized`) >= 2
	})
	stop()
	if n := lb.count(`"mqtt link up"`); n != 0 {
		t.Errorf("%d link up with the password refused; want none", n)
	}
}
