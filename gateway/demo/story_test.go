package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/configs"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// syncBuffer is the banner's writer, read by the test while Run writes.
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

// compressedDemo writes configs/demo.yaml with the story's 30 s grace cut to
// 2 s and the 5 s poll interval to 1 s (the least a bus takes): the same
// mall and script, played in seconds.
func compressedDemo(t *testing.T) string {
	t.Helper()
	s := string(configs.Demo)
	for _, r := range []struct {
		old, new string
		n        int
	}{
		{"grace: 30s", "grace: 2s", 1},
		{"interval: 5s", "interval: 1s", 2},
	} {
		if got := strings.Count(s, r.old); got != r.n {
			t.Fatalf("configs/demo.yaml has %q %d times; the test expects %d", r.old, got, r.n)
		}
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	path := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// running is a demo started by startDemo.
type running struct {
	url, token string
	banner     *syncBuffer
	meters     map[string]*sim.Meter
	stop       func() // cancels and requires a clean return
}

func startDemo(t *testing.T, o Options) *running {
	t.Helper()
	r := &running{banner: &syncBuffer{}, meters: make(map[string]*sim.Meter)}
	var mu sync.Mutex
	o.simulated = func(id string, m *sim.Meter) {
		mu.Lock()
		defer mu.Unlock()
		r.meters[id] = m
	}
	o.Listen, o.Fast, o.Out = "127.0.0.1:0", true, r.banner
	o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	type ready struct{ url, token string }
	readyc := make(chan ready, 1)
	o.Ready = func(url, token string) { readyc <- ready{url, token} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v; want nil after cancel", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run still running 15s after cancel")
		}
	}
	t.Cleanup(r.stop)
	select {
	case rd := <-readyc:
		r.url, r.token = rd.url, rd.token
	case err := <-done:
		stopped = true
		t.Fatalf("Run = %v before serving", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the demo did not serve within 20s")
	}
	mu.Lock()
	defer mu.Unlock()
	return r
}

// TestRun_StoryWarnsCutsOffTopsUpAndRestores plays the built-in mall's
// story, compressed, and follows it on the event stream as the page does:
// a warning, the cut-off with the simulated meter's relay open, the demo's
// own top-up, and the restore with the relay closed, in that order. The
// banner's URL and token are then used as a person would.
func TestRun_StoryWarnsCutsOffTopsUpAndRestores(t *testing.T) {
	r := startDemo(t, Options{Config: compressedDemo(t), Pace: Pace{Warn: 2 * time.Second, RunOut: 3 * time.Second, Show: time.Second}})
	started := time.Now()
	// The third floor's Compere meters report over MQTT to the gateway's
	// own broker: values and counters, each of every model.
	mqttDeadline := time.Now().Add(20 * time.Second)
	for _, id := range []string{"M-301", "M-302", "M-303"} {
		for {
			var m web.MeterView
			req, _ := http.NewRequest(http.MethodGet, r.url+"api/v1/meters/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+r.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if err == nil && m.Online && m.ImportKWh != "" && m.ImportKWh != "0.000" && m.Values["power"].Value > 0 {
				break
			}
			if time.Now().After(mqttDeadline) {
				t.Fatalf("MQTT meter %s = %+v; want online with its counter and power", id, m)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	var (
		kinds        []string // the story's events, in stream order
		nearWarned   bool
		relayWasOpen bool
		restored     bool
	)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e web.EventView
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		switch {
		case e.Tenant == "T-101" && e.Kind == "warning_1":
			nearWarned = true // its own part: before or after the low tenant's
		case e.Tenant == "T-107" && (e.Kind == "warning_1" || e.Kind == "warning_2"):
			kinds = append(kinds, "warning")
		case e.Tenant == "T-107" && (e.Kind == "cut_off" || e.Kind == "restored"):
			kinds = append(kinds, e.Kind)
		case e.Meter == "M-107" && e.Kind == "relay_opened":
			// Read back by the gateway; the simulated meter must agree.
			relayWasOpen = !r.meters["M-107"].Snapshot().RelayClosed
			kinds = append(kinds, e.Kind)
		case e.Tenant == "T-107" && e.Kind == "topup_receipt" && strings.Contains(e.Text, "ref DEMO-TOPUP-T-107-"):
			kinds = append(kinds, "topup")
		case e.Meter == "M-107" && e.Kind == "relay_closed":
			kinds = append(kinds, e.Kind)
		}
		if e.Kind == "relay_closed" && e.Meter == "M-107" {
			restored = true
		}
		// The near tenant's warning may come after the restore: its
		// balance is rounded up to the fen, which at a small load is
		// seconds of use, and a loaded machine polls late.
		if restored && nearWarned {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("story not over after 60s (near tenant warned: %v); its events so far: %v", nearWarned, kinds)
	}
	t.Logf("story over %v after the start: %v", time.Since(started).Round(time.Millisecond), kinds)

	// The low tenant's warnings come first (at the start); then the
	// script, once each.
	var story []string
	for i, k := range kinds {
		if k != "warning" || i == 0 || kinds[i-1] != "warning" {
			story = append(story, k)
		}
	}
	want := []string{"warning", "cut_off", "relay_opened", "topup", "restored", "relay_closed"}
	if fmt.Sprint(story) != fmt.Sprint(want) {
		t.Errorf("story's events %v; want %v", kinds, want)
	}
	if !nearWarned {
		t.Error("T-101, opened just above its warning level, was not warned")
	}
	if !relayWasOpen {
		t.Error("the simulated meter M-107's relay was not open when the cut-off was reported")
	}
	if !r.meters["M-107"].Snapshot().RelayClosed {
		t.Error("the simulated meter M-107's relay is open after the restore")
	}

	// The status page, loaded now, tells the same story.
	page, err := r.get(r.url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(page.Body)
	page.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"credit running low (warning 1)", "Sichuan Hot Pot: power cut off", "ref DEMO-TOPUP-T-107-", "Sichuan Hot Pot: power restored"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("status page lacks %q", want)
		}
	}

	checkBanner(t, r, "T-102")
}

// get is GET url with the demo's token: every read but /healthz needs a
// login or a token.
func (r *running) get(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	return http.DefaultClient.Do(req)
}

// checkBanner finds the URL, the login and the token in the banner and
// uses them: the login opens the page, a top-up with the token is
// accepted, one with another token is not.
func checkBanner(t *testing.T, r *running, tenant string) {
	t.Helper()
	banner := r.banner.String()
	var user, password string
	if _, login, ok := strings.Cut(banner, "log in as "); !ok {
		t.Errorf("banner says not how to log in:\n%s", banner)
	} else if _, err := fmt.Sscanf(login, "%s password %s", &user, &password); err != nil {
		t.Errorf("banner's login %q: %v", login, err)
	}
	user = strings.TrimSuffix(user, ",")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		password string
		want     int
	}{{password, http.StatusSeeOther}, {password + "x", http.StatusUnauthorized}} {
		resp, err := noRedirect.PostForm(r.url+"login", url.Values{"username": {user}, "password": {c.password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("log in as %s with %q: %s; want %d", user, c.password, resp.Status, c.want)
		}
	}
	if !strings.Contains(banner, "status page on "+r.url) {
		t.Errorf("banner lacks the URL %s:\n%s", r.url, banner)
	}
	_, rest, ok := strings.Cut(banner, "API token ")
	if !ok {
		t.Fatalf("banner names no API token:\n%s", banner)
	}
	token := strings.Fields(rest)[0]
	for _, c := range []struct {
		token string
		want  int
	}{{token, http.StatusCreated}, {token + "x", http.StatusUnauthorized}} {
		body := strings.NewReader(`{"amount":"50.00","ref":"TEST-BANNER","channel":"cash"}`)
		req, err := http.NewRequest(http.MethodPost, r.url+"api/v1/accounts/"+tenant+"/topups", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("top-up with token %q: %s; want %d", c.token, resp.Status, c.want)
		}
	}
}

// TestRun_RestartOnItsDatabaseCreditsOpeningsOnce starts the demo twice on
// one database: every tenant's opening top-up is in its ledger once.
func TestRun_RestartOnItsDatabaseCreditsOpeningsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	var balances map[string]billing.Money
	for run := 1; run <= 2; run++ {
		r := startDemo(t, Options{DB: path})
		r.stop()
		// The second run's banner does not announce a story its kept
		// balances would not play.
		if kept := strings.Contains(r.banner.String(), "opened by an earlier run"); kept != (run == 2) {
			t.Errorf("run %d: banner says the database was kept: %v; want %v:\n%s", run, kept, run == 2, r.banner.String())
		}
		db, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		accts, err := db.Accounts()
		if err != nil {
			t.Fatal(err)
		}
		got := make(map[string]billing.Money)
		for _, a := range accts {
			entries, err := db.Entries(a.ID, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			openings := 0
			for _, e := range entries {
				if e.Ref == openingRef(a.ID) {
					openings++
					got[a.ID] = e.Amount
				}
			}
			if openings != 1 {
				t.Errorf("run %d: %s has %d opening top-ups; want 1", run, a.ID, openings)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 27 {
			t.Errorf("run %d: %d tenants opened; want the demo's 27", run, len(got))
		}
		if run == 2 && fmt.Sprint(got) != fmt.Sprint(balances) {
			t.Errorf("openings changed on restart: %v, then %v", balances, got)
		}
		balances = got
	}
}

// TestCastStory_BuiltInMall checks the parts and balances of the built-in
// mall on a summer weekday at noon (the sharp rate, 1.45 per kWh).
func TestCastStory_BuiltInMall(t *testing.T) {
	cfg, err := Options{}.load()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 15, 12, 0, 0, 0, cfg.Location) // a Wednesday
	s, err := castStory(cfg, DefaultPace(), now)
	if err != nil {
		t.Fatal(err)
	}
	if s.low == nil || s.low.tenant.ID != "T-107" || s.near == nil || s.near.tenant.ID != "T-101" {
		t.Fatalf("parts: low %v, near %v; want T-107 and T-101", s.low, s.near)
	}
	for _, c := range []struct {
		id, want string
		why      string
	}{
		// 45 kW for 45 s = 562 Wh at 1.45 = 0.8149 → 0.82.
		{"T-107", "0.82", "runs out at 45 s"},
		// warning_1 200.00 + 9 kW for 30 s = 75 Wh at 1.45 = 0.10875 → 0.11.
		{"T-101", "200.11", "reaches 200.00 at 30 s"},
	} {
		if got := s.openings[c.id].String(); got != c.want {
			t.Errorf("%s opens at %s; want %s (%s)", c.id, got, c.want, c.why)
		}
	}
	for id, m := range s.openings {
		if id != "T-107" && id != "T-101" && m < 800*billing.Yuan {
			t.Errorf("%s opens at %s; want a comfortable 800.00 or more", id, m)
		}
	}
	if got := s.topUp.String(); got != "200.00" {
		t.Errorf("the demo tops T-107 up with %s; want 200.00 (rating C's warning 100.00 + 100, rounded)", got)
	}
	if !strings.HasPrefix(s.ref, "DEMO-TOPUP-T-107-") {
		t.Errorf("top-up ref %q; want DEMO-TOPUP-T-107-…", s.ref)
	}
	// No protected hours may hold the cut-off, whenever the demo runs.
	for h := range 24 * 7 {
		if at := now.Add(time.Duration(h) * time.Hour); cfg.Protected().Contains(at) {
			t.Fatalf("configs/demo.yaml protects %v: the story's cut-off would be held", at)
		}
	}
}

// TestRun_ConfigFileCastsItsOwnStory runs the demo on a technician's file:
// a Modbus TCP bus (served on a terminal all the same), no token the demo
// knows (it adds one of its own and prints it), and tenants whose parts
// are picked by their ratings: the one without credit runs out.
func TestRun_ConfigFileCastsItsOwnStory(t *testing.T) {
	const file = `site: {name: Small Arcade}
storage: {path: /var/lib/mallgrid/arcade.db}
http:
  tokens:
    - {name: ops, role: operator, sha256: 0000000000000000000000000000000000000000000000000000000000000000}
buses:
  - {name: lan, type: tcp, port: "10.0.0.5:502", interval: 1s}
meters:
  - {id: A-1, bus: lan, address: 1, model: kpm33b, tenant: S-1}
  - {id: A-2, bus: lan, address: 2, model: kpm33b, tenant: S-2}
  - {id: A-3, bus: lan, address: 3, model: kpm33b, tenant: S-3}
tariffs:
  - {name: standard, kind: flat, price: "1.00"}
ratings:
  - {name: A, warning_1: "100.00", warning_2: "20.00", overdraft: "50.00", grace: 1h, restore: "10.00"}
  - {name: B, warning_1: "50.00", warning_2: "10.00", overdraft: "0.00", grace: 1s, restore: "5.00"}
tenants:
  - {id: S-1, name: Tea Shop}
  - {id: S-2, name: Noodle Bar, category: restaurant, credit_rating: B}
  - {id: S-3, name: Phone Case Kiosk}
`
	path := filepath.Join(t.TempDir(), "arcade.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startDemo(t, Options{Config: path, Pace: Pace{Warn: 2 * time.Second, RunOut: 2 * time.Second, Show: 500 * time.Millisecond}})
	if r.token == demoToken || len(r.token) != 32 {
		t.Errorf("token %q; want a random one: the file accepts no \"demo\"", r.token)
	}
	for _, want := range []string{"Noodle Bar (S-2) opens at", "Tea Shop (S-1) opens at 100.", "ref DEMO-TOPUP-S-2-"} {
		if !strings.Contains(r.banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, r.banner.String())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	waitFor := func(what string, ok func() bool) {
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("S-2 not %s within 30s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The script leaves the cut-off on show for 500 ms: polled every 100 ms.
	waitFor("cut off", func() bool { return r.accountState(t, "S-2") == "cut_off" && !r.meters["A-2"].Snapshot().RelayClosed })
	waitFor("topped up and restored", func() bool { return r.restored(t, "S-2") })
	if !r.meters["A-2"].Snapshot().RelayClosed {
		t.Error("A-2's relay is open after the restore")
	}
	checkBanner(t, r, "S-1")
}

// restored reports whether tenant's ledger holds the demo's top-up, its
// account is back to normal and A-2's relay is closed.
func (r *running) restored(t *testing.T, tenant string) bool {
	t.Helper()
	resp, err := r.get(r.url + "api/v1/accounts/" + tenant + "/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []web.EntryView
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatal(err)
	}
	topped := false
	for _, e := range entries {
		topped = topped || strings.HasPrefix(e.Ref, "DEMO-TOPUP-"+tenant+"-") && e.Channel == "wechat"
	}
	return topped && r.meters["A-2"].Snapshot().RelayClosed && r.accountState(t, tenant) == "normal"
}

func (r *running) accountState(t *testing.T, tenant string) string {
	t.Helper()
	resp, err := r.get(r.url + "api/v1/accounts/" + tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a web.AccountView
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a.State
}
