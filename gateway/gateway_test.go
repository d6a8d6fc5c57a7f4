package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// testMall is a gateway configuration of two RTU buses with n tenant meters
// each, whose ports are simulated KPM33Bs on pseudo-terminals.
type testMall struct {
	cfg    *config.Config
	meters map[string]*sim.Meter // by meter id
	dbPath string
	// offlineAfter, if set, is the gateway's Options.OfflineAfter.
	offlineAfter time.Duration
}

func newTestMall(t *testing.T, perBus int, extraYAML ...string) *testMall {
	t.Helper()
	return newWiredMall(t, perBus, sim.WireTiming{}, extraYAML...)
}

// newWiredMall is newTestMall with the simulated buses' wire timing.
func newWiredMall(t *testing.T, perBus int, wire sim.WireTiming, extraYAML ...string) *testMall {
	t.Helper()
	return buildMall(t, perBus, wire, nil, extraYAML...)
}

// publicMeter, as a tenant's category in buildMall, makes the tenant's
// meter a public one (role public, no tenant) and leaves the tenant out.
const publicMeter = "(public meter)"

// renamed followed by an id, as a tenant's category in buildMall, gives
// the tenant and its meter that id instead of T-a1's kind (an id with
// spaces, slashes or Chinese, as a mall may name its tenants).
const renamed = "(id) "

// tenantYAML is the id buildMall writes for tenant T-<bus><i>, quoted.
func tenantYAML(categories map[string]string, id string) string {
	if to, ok := strings.CutPrefix(categories[id], renamed); ok {
		return strconv.Quote(to)
	}
	return strconv.Quote(id)
}

// buildMall is newWiredMall with tenants' categories ("T-a1": "restaurant"),
// for the rules of alarms.categories; the others are of the default. A
// category is written into the tenant's line as it is, so it may carry
// more keys ("retail, area_m2: 30"); publicMeter makes a public meter.
func buildMall(t *testing.T, perBus int, wire sim.WireTiming, categories map[string]string, extraYAML ...string) *testMall {
	t.Helper()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "site: {name: Test Mall}\nstorage: {path: %s}\n", filepath.Join(t.TempDir(), "m.db"))
	// Three API tokens: "till-secret" (operator), "screen-secret" (viewer)
	// and "books-secret" (finance); one user.
	yaml.WriteString("http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"    - {name: books, role: finance, sha256: cff4ec1195d68f2279bf0864ed50c21e4dc223bd31fb36d0d4f562c95a37858c}\n" +
		// One login: ann (operator), password "ann-pw", hashed at bcrypt's least cost.
		"  users:\n    - {name: ann, role: operator, password_hash: '$2a$04$j..DbBWyoWONxmsZuPUs6OA8C7xgM1PZphej3RP0m7AYyjEsAaMZ.'}\n")
	yaml.WriteString("buses:\n")
	for _, b := range []string{"a", "b"} {
		// A placeholder port per bus (two buses on one line are refused);
		// each gets its pseudo-terminal below.
		fmt.Fprintf(&yaml, "  - {name: %s, port: /dev/ttyTEST%s, timeout: 200ms, pause: 1ms, interval: 1s}\n", b, b)
	}
	yaml.WriteString("meters:\n")
	for _, b := range []string{"a", "b"} {
		for i := 1; i <= perBus; i++ {
			if categories[fmt.Sprintf("T-%s%d", b, i)] == publicMeter {
				fmt.Fprintf(&yaml, "  - {id: M-%s%d, bus: %s, address: %d, model: kpm33b, role: public}\n", b, i, b, i)
				continue
			}
			fmt.Fprintf(&yaml, "  - {id: M-%s%d, bus: %s, address: %d, model: kpm33b, tenant: %s}\n", b, i, b, i, tenantYAML(categories, fmt.Sprintf("T-%s%d", b, i)))
		}
	}
	yaml.WriteString("tenants:\n")
	for _, b := range []string{"a", "b"} {
		for i := 1; i <= perBus; i++ {
			id, category := fmt.Sprintf("T-%s%d", b, i), ""
			if categories[id] == publicMeter {
				continue
			}
			if c, ok := categories[id]; ok && !strings.HasPrefix(c, renamed) {
				category = ", category: " + c
			}
			fmt.Fprintf(&yaml, "  - {id: %s, name: Shop %s%d%s}\n", tenantYAML(categories, id), b, i, category)
		}
	}
	for _, x := range extraYAML {
		yaml.WriteString(x)
	}
	cfg, err := config.Parse("test.yaml", []byte(yaml.String()), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	mall := &testMall{cfg: cfg, meters: make(map[string]*sim.Meter), dbPath: cfg.Storage.Path}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(cfg.Buses))
	for i, b := range cfg.Buses {
		bus, err := sim.NewBus()
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range cfg.MetersOn(b.Name) {
			sm, err := sim.NewMeter(meter.KPM33B(), uint8(m.Address), sim.WithProfile(sim.Constant(0)), sim.WithImportWh(int64(10_000*(i+1)+j)))
			if err != nil {
				t.Fatal(err)
			}
			if err := bus.Add(sm); err != nil {
				t.Fatal(err)
			}
			mall.meters[m.ID] = sm
		}
		bus.SetWireTiming(wire)
		pty, err := sim.NewPTY()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Buses[i].Port = pty.Path
		go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
		t.Cleanup(func() { pty.Close() })
	}
	t.Cleanup(func() {
		cancel()
		for range cfg.Buses {
			if err := <-done; err != nil {
				t.Errorf("simulated bus: %v", err)
			}
		}
	})
	return mall
}

// start runs the gateway and returns its base URL and a stop function that
// cancels it and returns how long shutdown took.
func (m *testMall) start(t *testing.T) (string, func() time.Duration) {
	t.Helper()
	// Cleanups run last first: the events are read once the gateway stopped.
	t.Cleanup(func() { checkEventTexts(t, m.dbPath, m.cfg.Location) })
	return runGateway(t, Options{Config: m.cfg, Log: newCheckedLog(t), SwitchGap: 500 * time.Millisecond, OfflineAfter: m.offlineAfter})
}

// runGateway runs Run with opts on a loopback listener of its own (Version
// "test") and returns its base URL and a stop that cancels Run, waits for
// it to return nil and says how long that took; the test's end stops it too.
func runGateway(t *testing.T, opts Options) (string, func() time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener, opts.Version = ln, "test"
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	stopped := false
	stop := func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		start := time.Now()
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

// viewerGet is GET url with the viewer's token ("screen-secret"): every
// read but /healthz needs a login or a token.
func viewerGet(url string) (*http.Response, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer screen-secret")
	return http.DefaultClient.Do(req)
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := viewerGet(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRun_EndToEnd runs the gateway on simulated meters over real
// pseudo-terminals and checks the API against what the meters hold, then
// that shutdown is prompt and the database holds the cycles.
func TestRun_EndToEnd(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 5)
	base, stop := mall.start(t)

	var meters []web.MeterView
	waitFor(t, 10*time.Second, "every meter online with a reading", func() bool {
		getJSON(t, base+"/api/v1/meters", &meters)
		for _, m := range meters {
			if !m.Online || m.ReadingTime == nil {
				return false
			}
		}
		return len(meters) == 10
	})
	// Every counter now has its baseline: the energy from here on must
	// reach the interval table to the Wh.
	for id, sm := range mall.meters {
		sm.SetLoad(float64(10_000 * (1 + int(id[3]-'0'))))
	}
	for _, m := range meters {
		sm := mall.meters[m.ID]
		snap := sm.Snapshot()
		var got int64
		fmt.Sscanf(strings.Replace(m.ImportKWh, ".", "", 1), "%d", &got)
		// The meter has moved on since the read; never backwards, and not
		// by more than a second of its load.
		if got > snap.ImportWh || snap.ImportWh-got > 50 {
			t.Errorf("%s: API import %s kWh; simulated meter now holds %d Wh", m.ID, m.ImportKWh, snap.ImportWh)
		}
		if m.Relay.Actual != "closed" {
			t.Errorf("%s: relay %q; want closed", m.ID, m.Relay.Actual)
		}
		if v := m.Values["voltage_a"].Value; v < 220 || v > 240 {
			t.Errorf("%s: voltage_a = %v", m.ID, v)
		}
	}

	var one web.MeterView
	if code := getJSON(t, base+"/api/v1/meters/M-a3", &one); code != 200 || one.ID != "M-a3" || one.Bus != "a" || one.Address != 3 {
		t.Errorf("GET /api/v1/meters/M-a3 = %d %+v", code, one)
	}
	var apiErr map[string]string
	if code := getJSON(t, base+"/api/v1/meters/nope", &apiErr); code != 404 || apiErr["error"] == "" {
		t.Errorf("GET unknown meter = %d %v; want 404 with a reason", code, apiErr)
	}
	var st web.StatusView
	getJSON(t, base+"/api/v1/status", &st)
	if st.Counts.Meters != 10 || len(st.Buses) != 2 || st.Site != "Test Mall" || len(st.Polling) != 10 {
		t.Errorf("status = %+v", st)
	}
	for _, p := range st.Polling {
		if p.Requests == 0 || p.LastSeen == nil || p.P99MS < p.P50MS || p.P50MS <= 0 {
			t.Errorf("polling stats of %s = %+v; want requests, last seen and p50 <= p99", p.Meter, p)
		}
	}
	var health map[string]string
	if code := getJSON(t, base+"/healthz", &health); code != 200 || health["status"] != "ok" {
		t.Errorf("healthz = %d %v", code, health)
	}
	resp, err := viewerGet(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("status page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Let energy accumulate over a few cycles before stopping.
	time.Sleep(2500 * time.Millisecond)
	if took := stop(); took > 2*time.Second {
		t.Errorf("shutdown took %v; want under 2s", took)
	}

	db, err := store.Open(mall.dbPath, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("reopen database after shutdown: %v", err)
	}
	defer db.Close()
	latest, err := db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 10 {
		t.Fatalf("database holds %d latest readings; want 10", len(latest))
	}
	for id, r := range latest {
		slots, err := db.Intervals(id, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, s := range slots {
			sum += s.Wh
		}
		// Interval energy is exactly the counter's rise since the first
		// reading, which the simulator started at a known value.
		first := int64(0)
		fmt.Sscanf(id[3:], "%d", &first)
		busIdx := int64(1)
		if id[2] == 'b' {
			busIdx = 2
		}
		start := 10_000*busIdx + first - 1
		if sum == 0 {
			t.Errorf("%s: no interval energy recorded under load", id)
		}
		if sum != r.ImportWh-start {
			t.Errorf("%s: interval energy %d Wh; want counter rise %d - %d = %d", id, sum, r.ImportWh, start, r.ImportWh-start)
		}
	}
}

// account is GET /api/v1/accounts/{tenant} as the viewer reads it.
func account(t *testing.T, base, tenant string) web.AccountView {
	t.Helper()
	var a web.AccountView
	if code := getJSON(t, base+"/api/v1/accounts/"+tenant, &a); code != http.StatusOK {
		t.Fatalf("GET account %s = %d", tenant, code)
	}
	return a
}
