package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The scale benchmark's mall: one compere-mqtt bus of mqttScaleMeters
// KPM33Bs on the embedded broker, each uploading MQTT_RT_DATA every 30 s
// and MQTT_ENY_NOW every minute, as the meters do once the gateway has set
// their interval — 2,000/30 + 2,000/60 = 100 messages a second.
const (
	mqttScaleMeters = 2000
	mqttScaleRT     = 30 * time.Second
	mqttScaleENY    = time.Minute
	// Every mqttScaleEvery-th meter is watched on the meter stream for
	// the latency: 106 meters, about 5 messages a second. Not every 20th:
	// their uploads would be 600 ms apart (ENY_NOW) — a multiple of the
	// bus's 200 ms gathering and of the streams' 100 ms stagger — so every
	// sample would land at the same moment of both, and the latencies
	// would be one value, not their spread. 19 × 30 ms walks through the
	// gathering's 200 ms in 10 ms steps, 19 × 15 ms in 5 ms steps.
	mqttScaleEvery = 19
	// mqttScaleStreams meter streams opened mqttScaleStreamGap apart: the
	// stream sends once a second, so one alone would place a commit only
	// within a second; ten staggered place it within 100 ms.
	mqttScaleStreams = 10
)

// TestMQTTScale measures the gateway serving 2,000 Compere meters over
// MQTT through its embedded broker: the gateway runs as its own process
// (mallgrid run), so that its CPU time and memory, read from /proc, are
// apart from the 2,000 paho clients of this test that play the meters.
// The meters are tenant meters (each its own tenant, on a flat tariff,
// with ¥10,000 of credit): every MQTT_ENY_NOW is billed and committed, the
// heaviest path a reading takes, and no tenant runs out during the run.
//
// It measures, over a steady window after a warm-up (60 s + 180 s by
// default; MALLGRID_BENCH_MQTT_WINDOW sets the window), the gateway's CPU
// (utime+stime, % of one core), its resident memory (VmRSS before the
// meters connect, once they have, at the end; VmHWM), the messages it
// handled (its meters' message counts on /api/v1/status, which count
// every message a meter sends, command replies too — none come in a
// steady window) and, for every 19th meter, each message's latency from
// its publish to its reading showing on GET /api/v1/meters/stream — which
// shows a counter only after its cycle is committed (pipeline.Cycle
// updates the picture after the transaction), and a real-time value after
// its cycle is handed over (values alone are not stored). Run with
// MALLGRID_BENCH_MQTT=1 (make bench does); it takes about five minutes.
func TestMQTTScale(t *testing.T) {
	if os.Getenv("MALLGRID_BENCH_MQTT") == "" {
		t.Skip("set MALLGRID_BENCH_MQTT=1 to measure (make bench)")
	}
	warm, window := time.Minute, 3*time.Minute
	if s := os.Getenv("MALLGRID_BENCH_MQTT_WINDOW"); s != "" && s != "1" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MALLGRID_BENCH_MQTT_WINDOW=%q: %v", s, err)
		}
		window = d
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mallgrid")
	build := exec.Command("go", "build", "-o", bin, "mallgrid/cmd/mallgrid")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mallgrid: %v\n%s", err, out)
	}
	broker, httpAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(cfgPath, mqttScaleConfig(filepath.Join(dir, "g.db"), broker, httpAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	gw := exec.Command(bin, "run", "-c", cfgPath)
	gw.Stderr = &stderr
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = gw.Process.Kill()
		_ = gw.Wait()
		if s := strings.TrimSpace(stderr.String()); s != "" {
			t.Logf("the gateway said:\n%s", s)
		}
	})
	base := "http://" + httpAddr
	waitFor(t, 30*time.Second, "the gateway's API and broker", func() bool {
		c, err := net.DialTimeout("tcp", broker, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	// Credit first, so that no meter is ever cut off.
	for i := 1; i <= mqttScaleMeters; i++ {
		body := fmt.Sprintf(`{"amount":"10000.00","ref":"P-%04d","channel":"cash"}`, i)
		if code := call(t, "POST", fmt.Sprintf("%s/api/v1/accounts/T-%04d/topups", base, i), "till-secret", body, nil); code != 201 && code != 200 {
			t.Fatalf("top-up of T-%04d = %d", i, code)
		}
	}

	rssIdle, _ := procMem(t, gw.Process.Pid)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lat := newLatencies()
	var watched []string
	for i := 1; i <= mqttScaleMeters; i += mqttScaleEvery {
		watched = append(watched, fmt.Sprintf("M-%04d", i))
	}
	var streams sync.WaitGroup
	for k := range mqttScaleStreams {
		streams.Add(1)
		go func() {
			defer streams.Done()
			watchMeterStream(ctx, t, base, watched, lat)
		}()
		if k < mqttScaleStreams-1 {
			time.Sleep(time.Second / mqttScaleStreams)
		}
	}
	defer streams.Wait()
	defer cancel()

	meters := connectScaleMeters(t, broker)
	rssConnected, _ := procMem(t, gw.Process.Pid)
	t.Logf("%d meters connected", len(meters))

	// The meters publish on their own schedules, spread evenly: meter i's
	// real-time values at i × 15 ms past each 30 s, its counters at
	// i × 30 ms past each minute.
	began := time.Now()
	var sent, failed atomic.Int64
	pubCtx, stopPub := context.WithCancel(ctx)
	var pub sync.WaitGroup
	pub.Add(1)
	go func() {
		defer pub.Done()
		publishSchedule(pubCtx, meters, began, lat, &sent, &failed)
	}()
	defer func() { stopPub(); pub.Wait() }()

	sleepCtx(ctx, warm)
	lat.measure(true)
	cpu0, at0 := procCPU(t, gw.Process.Pid), time.Now()
	msgs0, sent0 := gatewayMessages(t, base), sent.Load()
	sleepCtx(ctx, window)
	cpu1, at1 := procCPU(t, gw.Process.Pid), time.Now()
	msgs1, sent1 := gatewayMessages(t, base), sent.Load()
	lat.measure(false)
	rss, hwm := procMem(t, gw.Process.Pid)
	stopPub()
	pub.Wait()
	time.Sleep(3 * time.Second) // the last messages' arrival on the streams
	cancel()
	streams.Wait()

	elapsed := at1.Sub(at0)
	cpuPct := 100 * float64(cpu1-cpu0) / float64(elapsed)
	handled := float64(msgs1-msgs0) / elapsed.Seconds()
	offered := float64(sent1-sent0) / elapsed.Seconds()
	eny, rt, missed := lat.results()
	t.Logf("2,000 KPM33B over MQTT (embedded broker), RT_DATA every 30 s + ENY_NOW every 60 s, window %s after %s warm-up, %d cores (%s):",
		elapsed.Round(time.Second), warm, runtime.NumCPU(), runtime.GOARCH)
	t.Logf("| gateway CPU (%% of one core) | VmRSS | VmHWM | messages/s sent | messages/s handled | publish failures |")
	t.Logf("| %.1f %% | %.1f MiB | %.1f MiB | %.1f | %.1f | %d |", cpuPct, mib(rss), mib(hwm), offered, handled, failed.Load())
	t.Logf("VmRSS before the meters connected %.1f MiB, once the 2,000 had connected (none publishing yet) %.1f MiB", mib(rssIdle), mib(rssConnected))
	t.Logf("| publish → on the meter stream (≤ 100 ms late) | samples | p50 | p99 | max |")
	for _, r := range []struct {
		what string
		l    []time.Duration
	}{{"MQTT_ENY_NOW → committed", eny}, {"MQTT_RT_DATA → shown", rt}} {
		if len(r.l) == 0 {
			t.Errorf("%s: no latency measured", r.what)
			continue
		}
		t.Logf("| %s | %d | %s | %s | %s |", r.what, len(r.l), pct(r.l, 50), pct(r.l, 99), r.l[len(r.l)-1].Round(time.Millisecond))
	}
	if missed > 0 {
		t.Errorf("%d watched messages of the window never showed on the meter stream", missed)
	}
	if handled < 0.95*offered {
		t.Errorf("the gateway handled %.1f messages/s of %.1f sent", handled, offered)
	}
	if err := gw.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the gateway is gone: %v", err)
	}
}

// mqttScaleConfig is the benchmark's configuration: one compere-mqtt bus
// on the embedded broker at broker (meters' password "secret"), meters
// M-0001… with device ids 33B0000000001…, each the meter of tenant
// T-0001… on a flat tariff; log at warn, as a mall runs it.
func mqttScaleConfig(dbPath, broker, httpAddr string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "site: {name: Scale Mall}\nstorage: {path: %s}\nlog: {level: warn}\n", dbPath)
	fmt.Fprintf(&b, "http:\n  listen: '%s'\n  tokens:\n", httpAddr)
	b.WriteString("    - {name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n")
	fmt.Fprintf(&b, "buses:\n  - {name: mq, type: compere-mqtt, listen: '%s', username: kpm,\n", broker)
	b.WriteString("     password_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b}\nmeters:\n")
	for i := 1; i <= mqttScaleMeters; i++ {
		fmt.Fprintf(&b, "  - {id: M-%04d, bus: mq, address: '%s', model: kpm33b, tenant: T-%04d}\n", i, scaleDevice(i), i)
	}
	b.WriteString("tenants:\n")
	for i := 1; i <= mqttScaleMeters; i++ {
		fmt.Fprintf(&b, "  - {id: T-%04d, name: Shop %d}\n", i, i)
	}
	b.WriteString("tariffs: [{name: standard, kind: flat, price: '1.00'}]\n" +
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n")
	return []byte(b.String())
}

func scaleDevice(i int) string { return fmt.Sprintf("33B%010d", i) }

// scaleMeter is one simulated KPM33B: a paho client that answers the
// gateway's relay, clock and upload-interval commands with code 01.
type scaleMeter struct {
	id, device string
	client     paho.Client
	seq        int64 // MQTT_ENY_NOW sent: its counter follows it
	rtSeq      int64 // MQTT_RT_DATA sent: its power follows it
}

// connectScaleMeters connects the 2,000 meters, 50 at a time.
func connectScaleMeters(t *testing.T, broker string) []*scaleMeter {
	t.Helper()
	meters := make([]*scaleMeter, mqttScaleMeters)
	errs := make(chan error, mqttScaleMeters)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range meters {
		m := &scaleMeter{id: fmt.Sprintf("M-%04d", i+1), device: scaleDevice(i + 1)}
		meters[i] = m
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := m.connect(broker); err != nil {
				errs <- fmt.Errorf("meter %s: %w", m.device, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range meters {
			m.client.Disconnect(0)
		}
	})
	return meters
}

func (m *scaleMeter) connect(broker string) error {
	opts := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(m.device).SetUsername("kpm").SetPassword("secret").
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
	m.client = paho.NewClient(opts)
	if tok := m.client.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	x := m.device[len(m.device)-8:]
	replies := map[string]string{"MQTT_TELECTRL_" + x: "MQTT_TELECTRL_REP", "MQTT_SETTIME_" + x: "MQTT_METER_TIME_REP",
		"MQTT_COMMOD_SET_" + x: "MQTT_COMMOD_SET_REP"}
	filters := map[string]byte{}
	for topic := range replies {
		filters[topic] = 1
	}
	// The handler must not wait for its reply's PUBACK: paho calls it on
	// the goroutine that reads the acknowledgements.
	tok := m.client.SubscribeMultiple(filters, func(_ paho.Client, msg paho.Message) {
		var cmd map[string]string
		if json.Unmarshal(msg.Payload(), &cmd) != nil {
			return
		}
		reply := map[string]string{"id": m.device, "oprid": cmd["oprid"], "code": "01", "msg": ""}
		if v, ok := cmd["do1"]; ok {
			reply["do1"] = v
		}
		raw, _ := json.Marshal(reply)
		m.client.Publish(replies[msg.Topic()], 1, false, raw)
	})
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	return nil
}

// scaleStartWh is every meter's counter at the start; each MQTT_ENY_NOW
// adds 33 Wh (a shop drawing 2 kW for a minute).
const scaleStartWh = 1_000_000

// rt is the meter's MQTT_RT_DATA in the shape of a captured one; its total
// power (zyggl, kW) is 2 kW plus seq W (mod 1,000), so that the value shown
// names the message.
func (m *scaleMeter) rt(seq int64, now time.Time) ([]byte, string) {
	w := 2000 + seq%1000
	kw := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	ph := float64(w) / 3000
	s := fmt.Sprintf(`{"id":"%s","ia":%.3f,"ib":%.3f,"ic":%.3f,"ua":229.097,"ub":231.567,"uc":232.529,"uab":398.949,"ubc":401.920,"uca":399.784,`+
		`"pa":%s,"pb":%s,"pc":%s,"zyggl":%s,"qa":-0.1648,"qb":-0.1649,"qc":-0.1632,"zwggl":-0.4930,"sa":%s,"sb":%s,"sc":%s,"zszgl":%s,`+
		`"pfa":0.996,"pfb":0.996,"pfc":0.996,"zglys":0.996,"f":49.959,"uxja":0.000,"uxjb":239.774,"uxjc":119.874,"ixja":355.691,"ixjb":235.434,"ixjc":115.615,`+
		`"unb":1.485,"inb":0.823,"pdm":%s,"qdm":-0.4971,"sdm":%s,"iadm":9.6838,"ibdm":9.6380,"icdm":9.6717,"time":"%s","isend":"1"}`,
		m.device, ph*1000/229.1, ph*1000/231.6, ph*1000/232.5, kw(ph), kw(ph), kw(ph), kw(float64(w)/1000), kw(ph), kw(ph), kw(ph), kw(float64(w)/1000),
		kw(float64(w)/1000), kw(float64(w)/1000), now.Format("20060102150405"))
	return []byte(s), "R|" + m.id + "|" + strconv.FormatInt(w, 10)
}

// eny is the meter's MQTT_ENY_NOW after its seq-th minute, in the shape of
// a captured one: the import counter and its flat rate rise.
func (m *scaleMeter) eny(seq int64, now time.Time) ([]byte, string) {
	wh := scaleStartWh + 33*seq
	kwh := fmt.Sprintf("%d.%03d", wh/1000, wh%1000)
	s := fmt.Sprintf(`{"id":"%s","zygsz":%s,"fygsz":0.000,"zwgsz":0.000,"fwgsz":11.085,"zszsz":%s,"zyjsz":0.000,"fyjsz":0.000,"zyfsz":%s,`+
		`"fyfsz":0.000,"zypsz":0.000,"fypsz":0.000,"zyvsz":0.000,"fyvsz":0.000,"zydvsz":0.000,"fydvsz":0.000,"time":"%s","isend":"1"}`,
		m.device, kwh, kwh, kwh, now.Format("20060102150405"))
	return []byte(s), "E|" + m.id + "|" + kwh
}

// publishSchedule publishes every meter's messages on its schedule from
// began until ctx ends, stamping each watched message's send time.
func publishSchedule(ctx context.Context, meters []*scaleMeter, began time.Time, lat *latencies, sent, failed *atomic.Int64) {
	type due struct {
		at  time.Time
		m   int
		eny bool
	}
	n := len(meters)
	next := make([]due, 0, 2*n)
	for i := range meters {
		next = append(next, due{began.Add(mqttScaleRT * time.Duration(i) / time.Duration(n)), i, false},
			due{began.Add(mqttScaleENY * time.Duration(i) / time.Duration(n)), i, true})
	}
	sort.Slice(next, func(a, b int) bool { return next[a].at.Before(next[b].at) })
	var acks sync.WaitGroup
	defer acks.Wait()
	for len(next) > 0 {
		d := next[0]
		if wait := time.Until(d.at); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		next = next[1:]
		m := meters[d.m]
		now := time.Now()
		var (
			raw   []byte
			key   string
			topic string
			every time.Duration
		)
		if d.eny {
			m.seq++
			raw, key = m.eny(m.seq, now)
			topic, every = "MQTT_ENY_NOW", mqttScaleENY
		} else {
			m.rtSeq++
			raw, key = m.rt(m.rtSeq, now)
			topic, every = "MQTT_RT_DATA", mqttScaleRT
		}
		if d.m%mqttScaleEvery == 0 {
			lat.sent(key, now)
		}
		tok := m.client.Publish(topic, 1, false, raw)
		sent.Add(1)
		acks.Add(1)
		go func() {
			defer acks.Done()
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				failed.Add(1)
			}
		}()
		// Insert its next upload in order.
		d.at = d.at.Add(every)
		j := sort.Search(len(next), func(k int) bool { return next[k].at.After(d.at) })
		next = append(next, due{})
		copy(next[j+1:], next[j:])
		next[j] = d
	}
}

// latencies matches the watched meters' messages, by the value each
// shows, to their arrival on the meter stream.
type latencies struct {
	mu      sync.Mutex
	window  bool                 // messages sent now are measured
	pending map[string]time.Time // key → sent, for messages of the window
	eny, rt []time.Duration
}

func newLatencies() *latencies {
	return &latencies{pending: map[string]time.Time{}}
}

func (l *latencies) measure(on bool) {
	l.mu.Lock()
	l.window = on
	l.mu.Unlock()
}

func (l *latencies) sent(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.window {
		l.pending[key] = at
	}
}

// shown records key's arrival on a stream; the first stream to show it
// counts.
func (l *latencies) shown(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent, ok := l.pending[key]
	if !ok {
		return
	}
	delete(l.pending, key)
	if strings.HasPrefix(key, "E|") {
		l.eny = append(l.eny, at.Sub(sent))
	} else {
		l.rt = append(l.rt, at.Sub(sent))
	}
}

// results returns the sorted latencies and how many watched messages of
// the window never showed.
func (l *latencies) results() (eny, rt []time.Duration, missed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range [][]time.Duration{l.eny, l.rt} {
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	}
	return l.eny, l.rt, len(l.pending)
}

// watchMeterStream follows GET /api/v1/meters/stream for ids until ctx
// ends, telling lat the counter and power each change shows.
func watchMeterStream(ctx context.Context, t *testing.T, base string, ids []string, lat *latencies) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/meters/stream?ids="+strings.Join(ids, ","), nil)
	if err != nil {
		t.Error(err)
		return
	}
	req.Header.Set("Authorization", "Bearer screen-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /api/v1/meters/stream = %d", resp.StatusCode)
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || event != "meters" {
			continue
		}
		at := time.Now()
		var views []struct {
			ID        string `json:"id"`
			ImportKWh string `json:"import_kwh"`
			Values    map[string]struct {
				Value float64 `json:"value"`
			} `json:"values"`
		}
		if err := json.Unmarshal([]byte(data), &views); err != nil {
			t.Errorf("meter stream: %v", err)
			return
		}
		for _, v := range views {
			if v.ImportKWh != "" {
				lat.shown("E|"+v.ID+"|"+v.ImportKWh, at)
			}
			if p, ok := v.Values["power"]; ok {
				lat.shown("R|"+v.ID+"|"+strconv.FormatInt(int64(math.Round(p.Value)), 10), at)
			}
		}
	}
}

// gatewayMessages is the sum of every meter's messages received, from
// GET /api/v1/status.
func gatewayMessages(t *testing.T, base string) int64 {
	t.Helper()
	var st struct {
		Polling []struct {
			Requests int64 `json:"requests"`
		} `json:"polling"`
	}
	if code := call(t, "GET", base+"/api/v1/status", "screen-secret", "", &st); code != 200 {
		t.Fatalf("GET /api/v1/status = %d", code)
	}
	var n int64
	for _, p := range st.Polling {
		n += p.Requests
	}
	return n
}

// procCPU is the process's CPU time so far, user and system, from
// /proc/<pid>/stat (in clock ticks of 10 ms: USER_HZ is 100 on Linux).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command's name, in parentheses, may hold spaces: count after it.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procMem is the process's resident memory now and at its highest, in
// bytes, from /proc/<pid>/status.
func procMem(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/status: %s", pid, line)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100].Round(time.Millisecond)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
