package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// syncBuffer is a log sink the test reads while the gateway writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reloadMallYAML is a mall on the simulated buses of mall: M-a1 and M-b1
// always, M-a2 and its tenant T-a2 when withA2; extra is appended.
func reloadMallYAML(mall *testMall, withA2 bool, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: {name: Reload Mall}\nstorage: {path: %s}\n", mall.dbPath)
	b.WriteString("http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"  users:\n    - {name: ann, role: operator, password_hash: '$2a$04$j..DbBWyoWONxmsZuPUs6OA8C7xgM1PZphej3RP0m7AYyjEsAaMZ.'}\n")
	b.WriteString("buses:\n")
	for _, bus := range mall.cfg.Buses {
		fmt.Fprintf(&b, "  - {name: %s, port: %s, timeout: 200ms, pause: 1ms, interval: 1s}\n", bus.Name, bus.Port)
	}
	b.WriteString("meters:\n  - {id: M-a1, bus: a, address: 1, model: kpm33b, tenant: T-a1}\n  - {id: M-b1, bus: b, address: 1, model: kpm33b, tenant: T-b1}\n")
	if withA2 {
		b.WriteString("  - {id: M-a2, bus: a, address: 2, model: kpm33b, tenant: T-a2}\n")
	}
	b.WriteString("tenants:\n  - {id: T-a1, name: Shop a1}\n  - {id: T-b1, name: Shop b1}\n")
	if withA2 {
		b.WriteString("  - {id: T-a2, name: Shop a2}\n")
	}
	b.WriteString(extra)
	return b.String()
}

// TestRun_Reload reloads a running gateway through Options.Reload: a file
// with problems changes nothing (the meters and accounts the API shows
// are the same) and every problem is logged with its FILE:LINE; a valid
// one adds a meter and its tenant, which the API then shows read; a
// restart-only key is named and kept. Throughout, a loop of requests sees
// no refused connection and no 5xx, and a login made before the reloads
// still works after them.
func TestRun_Reload(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2) // M-a2 and M-b2 simulated; the files name M-a2 only when reloaded
	var file atomic.Pointer[string]
	load := func() (*config.Config, error) { return config.Parse("reload.yaml", []byte(*file.Load()), nil) }
	src := reloadMallYAML(mall, false, "")
	file.Store(&src)
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkEventTexts(t, mall.dbPath, cfg.Location) }) // after Run has stopped
	var logs syncBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(&logs, checkedLog{t: t, show: zerolog.LevelWriterAdapter{Writer: zerolog.NewTestWriter(t)}}))
	// The loop of requests below counts what it has made. Each reload
	// while it runs loads its file only once the loop has made perReload
	// requests since the reload began, so that every reload has requests
	// made during it however fast or slow the machine.
	const perReload = 7
	var requests, failures atomic.Int64
	loopCtx, stopLoop := context.WithCancel(context.Background())
	defer stopLoop()
	loadDuringRequests := func() (*config.Config, error) {
		from := requests.Load()
		deadline := time.Now().Add(10 * time.Second)
		for requests.Load() < from+perReload && loopCtx.Err() == nil {
			if time.Now().After(deadline) {
				t.Errorf("a reload waited 10 s for %d requests; %d were made", perReload, requests.Load()-from)
				break
			}
			time.Sleep(time.Millisecond)
		}
		return load()
	}
	reload := make(chan struct{}, 1)
	base, _ := runGateway(t, Options{Config: cfg, Log: log, Reload: reload, Load: loadDuringRequests})
	waitFor(t, 10*time.Second, "M-a1 read", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a1", &m) == 200 && m.Online
	})

	// ann logs in before any reload.
	jar, _ := cookiejar.New(nil)
	ann := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := ann.PostForm(base+"/login", url.Values{"username": {"ann"}, "password": {"ann-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s; want 303", resp.Status)
	}
	annGets := func(what string) {
		t.Helper()
		resp, err := ann.Get(base + "/api/v1/accounts")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("ann's GET /api/v1/accounts %s: %s; want 200 on her login", what, resp.Status)
		}
	}
	annGets("before the reloads")

	// The loop of requests, from now until the end.
	var firstFailure atomic.Pointer[string]
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for loopCtx.Err() == nil {
			resp, err := viewerGet(base + "/api/v1/status")
			requests.Add(1)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			if err != nil {
				failures.Add(1)
				msg := err.Error()
				firstFailure.CompareAndSwap(nil, &msg)
			}
		}
	}()

	// What the API shows, to compare around a refused file.
	picture := func() string {
		var meters []web.MeterView
		getJSON(t, base+"/api/v1/meters", &meters)
		var accounts []web.AccountView
		getJSON(t, base+"/api/v1/accounts", &accounts)
		var ids []string
		for _, m := range meters {
			ids = append(ids, "meter "+m.ID)
		}
		for _, a := range accounts {
			ids = append(ids, "account "+a.Tenant)
		}
		slices.Sort(ids)
		return strings.Join(ids, ", ")
	}
	reloadAndWait := func(want string) {
		t.Helper()
		reload <- struct{}{}
		waitFor(t, 15*time.Second, "log line "+want, func() bool { return strings.Contains(logs.String(), want) })
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, want) {
				t.Logf("%s", line) // with the time the reload took
			}
		}
	}

	before := picture()
	bad := reloadMallYAML(mall, true, "protected_hours: {tarif: x}\ntariffs:\n  - {name: t, kind: flat}\n")
	file.Store(&bad)
	reloadAndWait("configuration not reloaded")
	for _, want := range []string{"reload.yaml:20: protected_hours.tarif", "reload.yaml:22: tariffs[0].price"} {
		if !strings.Contains(logs.String(), "configuration reload refused: "+want) {
			t.Errorf("the log has no line refusing %q:\n%s", want, logs.String())
		}
	}
	if after := picture(); after != before {
		t.Errorf("after a refused file the API shows %s; before it %s", after, before)
	}

	good := reloadMallYAML(mall, true, "")
	good = strings.Replace(good, "listen: '127.0.0.1:0'", "listen: '127.0.0.1:1'", 1)
	file.Store(&good)
	reloadAndWait("configuration reloaded: tenants added T-a2; meters added M-a2")
	if !strings.Contains(logs.String(), "http.listen changes only at a restart") {
		t.Errorf("the changed http.listen was not named in the log")
	}
	waitFor(t, 10*time.Second, "M-a2 read after the reload", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a2", &m) == 200 && m.Online
	})
	if got := picture(); !strings.Contains(got, "account T-a2") || !strings.Contains(got, "meter M-a2") {
		t.Errorf("after the reload the API shows %s; want M-a2 and T-a2 in it", got)
	}
	annGets("after the reloads")

	// Back on the first file, M-a2 and T-a2 are taken out again.
	file.Store(&src)
	for range 3 {
		select {
		case reload <- struct{}{}:
		default:
		}
	}
	reloadAndWait("tenants removed T-a2; meters removed M-a2")
	stopLoop()
	<-loopDone
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests during the reloads failed; the first: %s", n, requests.Load(), *firstFailure.Load())
	}
	// Three reloads at least (the refused file, the good one, the first
	// again), each with perReload requests made during it.
	if requests.Load() < 20 {
		t.Errorf("only %d requests ran during the reloads", requests.Load())
	}
	t.Logf("%d requests during the reloads", requests.Load())
	var reloaded int
	for _, line := range strings.Split(logs.String(), "\n") {
		var l struct{ Message string }
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Message, "configuration reloaded") {
			reloaded++
		}
	}
	// The file with problems is no reload; the three requests in a row
	// make one to three (how many a reload under way coalesces is timing).
	if reloaded < 2 || reloaded > 4 {
		t.Errorf("%d reloads logged; want 2 to 4", reloaded)
	}
}

// A reload asked for while the gateway starts waits until it has started:
// the file is read again only once HTTP serves and the buses poll.
func TestRun_ReloadDuringStartWaits(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	src := reloadMallYAML(mall, false, "")
	cfg, err := config.Parse("reload.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ready, loadedBeforeReady atomic.Bool
	loaded := make(chan struct{}, 1)
	load := func() (*config.Config, error) {
		loadedBeforeReady.Store(!ready.Load())
		loaded <- struct{}{}
		return config.Parse("reload.yaml", []byte(src), nil)
	}
	reload := make(chan struct{}, 1)
	reload <- struct{}{} // before Run begins
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Config: cfg, Log: newCheckedLog(t), Listener: ln, Version: "test", Reload: reload, Load: load,
			Ready: func(net.Addr) { ready.Store(true) }})
	}()
	select {
	case <-loaded:
	case <-time.After(15 * time.Second):
		t.Fatal("the reload asked for at start was never done")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
	if loadedBeforeReady.Load() {
		t.Error("the file was read again before the gateway had started")
	}
}

// A valid file whose generation cannot start (its uplink's CA file gone
// between the check and the start) leaves the gateway on the old
// configuration, never stopped: logged, and the meters read and the API
// answering as before.
func TestRun_ReloadNewGenerationFailsKeepsOld(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	src := reloadMallYAML(mall, false, "")
	withUplink := reloadMallYAML(mall, false, strings.Replace(uplinkYAML("ssl://127.0.0.1:1", ""), "  site_id:", "  ca_file: "+caFile+"\n  site_id:", 1))
	cfg, err := config.Parse("reload.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	load := func() (*config.Config, error) {
		next, err := config.Parse("reload.yaml", []byte(withUplink), nil)
		if err == nil {
			err = os.Remove(caFile) // checked, then gone before the uplink reads it
		}
		return next, err
	}
	var logs syncBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(&logs, checkedLog{t: t, show: zerolog.LevelWriterAdapter{Writer: zerolog.NewTestWriter(t)}}))
	reload := make(chan struct{}, 1)
	base, _ := runGateway(t, Options{Config: cfg, Log: log, Reload: reload, Load: load})
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var health web.HealthView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK
	})
	reload <- struct{}{}
	waitFor(t, 15*time.Second, "the old configuration kept", func() bool {
		return strings.Contains(logs.String(), "the new configuration cannot start; the running configuration is kept")
	})
	if strings.Contains(logs.String(), "starting the old one again") {
		t.Errorf("the old configuration was stopped and started again:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "uplink ca_file") {
		t.Errorf("the log does not say why the new configuration did not start:\n%s", logs.String())
	}
	// Read on by the old generation.
	since := time.Now()
	waitFor(t, 10*time.Second, "M-a1 read after the failed reload", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a1", &m) == 200 && m.Online && m.ReadingTime != nil && m.ReadingTime.After(since)
	})
	var st web.StatusView
	if getJSON(t, base+"/api/v1/status", &st); st.Uplink != nil {
		t.Errorf("the status shows an uplink %+v; the configuration that runs has none", st.Uplink)
	}
}

// A new configuration that fails after the old one has stopped (the
// database refuses the write of a removed meter's charge: its file was
// deleted under the gateway) starts the old one again, and the log says
// the configuration was not reloaded — the line a technician waits for
// with grep 'configuration \(not \)\?reloaded' after systemctl reload.
func TestReload_FallbackLogsNotReloaded(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	up := "tariffs:\n  - {name: standard, kind: flat, price: '1.00'}\n"
	cfg, err := config.Parse("reload.yaml", []byte(reloadMallYAML(mall, true, up)), nil)
	if err != nil {
		t.Fatal(err)
	}
	load := func() (*config.Config, error) {
		return config.Parse("reload.yaml", []byte(reloadMallYAML(mall, false, up)), nil)
	}
	var logs syncBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(&logs, checkedLog{t: t, show: zerolog.LevelWriterAdapter{Writer: zerolog.NewTestWriter(t)}}))
	reload := make(chan struct{}, 1)
	base, _ := runGateway(t, Options{Config: cfg, Log: log, Reload: reload, Load: load})
	waitFor(t, 15*time.Second, "M-a2 read", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a2", &m) == http.StatusOK && m.Online
	})
	mall.meters["M-a2"].SetImportWh(10_301) // a charge accrued, for the removal to post
	waitFor(t, 10*time.Second, "M-a2 read at 10.301 kWh", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a2", &m) == http.StatusOK && m.ImportKWh == "10.301"
	})
	if err := os.Remove(mall.dbPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the database noticed lost", func() bool {
		return strings.Contains(logs.String(), "database file lost")
	})
	reload <- struct{}{}
	waitFor(t, 20*time.Second, "the old configuration started again", func() bool {
		return strings.Contains(logs.String(), "starting the old one again")
	})
	const said = "configuration not reloaded: the new configuration did not start; the running configuration was started again"
	waitFor(t, 10*time.Second, "the reload's outcome logged", func() bool {
		return strings.Contains(logs.String(), "configuration not reloaded") || strings.Contains(logs.String(), "configuration reloaded")
	})
	if text := logs.String(); !strings.Contains(text, said) || strings.Contains(text, "configuration reloaded") {
		t.Errorf("the log does not say the configuration was not reloaded (want %q):\n%s", said, text)
	}
	// The old configuration runs again: M-a2, which the new one removes,
	// is still a meter of the gateway's (the database refuses its cycles'
	// writes, so its reading time stands still).
	var m web.MeterView
	if code := getJSON(t, base+"/api/v1/meters/M-a2", &m); code != http.StatusOK {
		t.Errorf("GET M-a2 after the fallback: %d; want 200 (the running configuration has it)", code)
	}
}
