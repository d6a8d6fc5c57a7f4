package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/report"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// fetch GETs url with an optional bearer token and returns the answer
// with its body read.
func fetch(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestStatementsAPI runs a real mall whose ledger began two months ago:
// the gateway issues the statements due as it starts, staff list them and
// fetch them as HTML and PDF, and the tenant's signed link opens that one
// statement without a login, and nothing once altered.
func TestStatementsAPI(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	loc := mall.cfg.Location
	now := time.Now().In(loc)
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	// Two months back, so that one month is due whatever the day (the last
	// month's are not yet in the first hour of this one).
	old := thisMonth.AddDate(0, -2, 3)
	month := old.Format("2006-01")
	db, err := store.Open(mall.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(store.Entry{Time: old, Account: "T-a1", Amount: 250 * billing.Yuan, Channel: "cash", Ref: "C-1",
		Actor: "till", Note: "first top-up, paid in cash"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	base, _ := mall.start(t)
	api := base + "/api/v1/accounts/T-a1/statements"

	var list struct {
		Tenant     string `json:"tenant"`
		Statements []struct {
			Month, Closing, Link, HTML, PDF string
		} `json:"statements"`
	}
	waitFor(t, 10*time.Second, "the statements issued at start", func() bool {
		return call(t, "GET", api, "books-secret", "", &list) == http.StatusOK && len(list.Statements) > 0
	})
	got := list.Statements[len(list.Statements)-1] // the oldest
	if got.Month != month || got.Closing != "250.00" || !strings.HasPrefix(got.Link, "/s/") {
		t.Fatalf("oldest statement %+v; want %s closing 250.00 with a link", got, month)
	}
	if code := call(t, "GET", api, "till-secret", "", nil); code != http.StatusOK {
		t.Errorf("operator lists: %d; want 200", code)
	}
	if code := call(t, "GET", api, "screen-secret", "", nil); code != http.StatusForbidden {
		t.Errorf("viewer lists: %d; want 403", code)
	}
	if code := call(t, "GET", api, "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("nobody lists: %d; want 401", code)
	}

	resp, body := fetch(t, base+got.PDF+"&lang=zh-CN", "books-secret")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(body, []byte("%PDF-")) {
		t.Errorf("PDF: %d %s %.8q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = fetch(t, base+got.HTML+"&lang=en", "books-secret")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != report.StatementCSP ||
		!bytes.Contains(body, []byte("Shop a1")) || !bytes.Contains(body, []byte("first top-up, paid in cash")) {
		t.Errorf("HTML: %d, CSP %q, body has the tenant and the note: %v", resp.StatusCode, resp.Header.Get("Content-Security-Policy"),
			bytes.Contains(body, []byte("Shop a1")))
	}
	for _, c := range []struct {
		path string
		want int
	}{
		{"/api/v1/accounts/T-a1/statements/2026-13", http.StatusBadRequest},
		{"/api/v1/accounts/T-a1/statements/" + month + "?format=docx", http.StatusBadRequest},
		{"/api/v1/accounts/T-a1/statements/" + month + "?lang=fr", http.StatusBadRequest},
		{"/api/v1/accounts/T-zz/statements/" + month, http.StatusNotFound},
		{"/api/v1/accounts/T-zz/statements", http.StatusNotFound},
		{"/api/v1/accounts/T-a1/statements/" + thisMonth.AddDate(0, 2, 0).Format("2006-01"), http.StatusBadRequest},
	} {
		if resp, body := fetch(t, base+c.path, "books-secret"); resp.StatusCode != c.want {
			t.Errorf("%s: %d %s; want %d", c.path, resp.StatusCode, body, c.want)
		}
	}

	// The tenant's link: no token, that tenant's statement only.
	resp, body = fetch(t, base+got.Link, "")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Shop a1")) || bytes.Contains(body, []byte("Shop b1")) {
		t.Errorf("link: %d; want T-a1's statement", resp.StatusCode)
	}
	if resp, body = fetch(t, base+got.Link+"?format=pdf", ""); resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("%PDF-")) {
		t.Errorf("link as PDF: %d", resp.StatusCode)
	}
	tampered := []byte(got.Link)
	tampered[5] ^= 1
	resp, body = fetch(t, base+string(tampered)+"?lang=zh-CN", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "链接无效") {
		t.Errorf("altered link: %d %s; want 404 with the reason in Chinese", resp.StatusCode, body)
	}
}

// A kept bus's last cycle is carried over a reload: one the old
// generation finished after the new one was built, but before it was
// launched, is not the new generation's first cycle. The statements wait
// for that one — it posts the charges the stop held over — so Ready stays
// false until a cycle of the new generation's own has ended.
func TestReload_StatementsWaitForTheNewGenerationsCycle(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	cfg, err := config.Parse("reload.yaml", []byte(reloadMallYAML(mall, false, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The clock moves only when the test moves it: every time stamped
	// after a step and before the next is that step's.
	var clock atomic.Int64
	at := func(step int) time.Time { return time.Date(2026, 3, 1, 8, step, 0, 0, time.UTC) }
	clock.Store(at(0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	// Once holding is set, the buses' cycles wait before their commit
	// until release is closed.
	var holding atomic.Bool
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	hold := func(poll.Cycle) {
		if holding.Load() {
			once.Do(func() { close(held) })
			<-release
		}
	}
	var freeOnce sync.Once
	free := func() { freeOnce.Do(func() { close(release) }) }
	p := &process{log: zerolog.Nop(), clock: now, sessions: web.NewSessions(), front: web.NewFront(nil)}
	p.opts = Options{Config: cfg, Version: "test", Now: now, holdCycle: hold}
	p.setRoute(cfg)
	db, err := store.Open(mall.dbPath, store.Options{Route: p.routeEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p.db = db
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cur, err := p.start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	// The reload's steps, in its order: build, (the old generation cycles
	// on, and stops), launch.
	clock.Store(at(1).UnixNano())
	next, err := p.build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(at(2).UnixNano())
	waitFor(t, 10*time.Second, "a cycle of the old generation after the build", func() bool { return cur.lv.CycledSince(at(2)) })
	cur.stop()
	clock.Store(at(3).UnixNano())
	holding.Store(true) // the new generation's first cycle waits
	if err := p.launch(ctx, next, cur); err != nil {
		t.Fatal(err)
	}
	defer next.stop()
	defer free() // before the stop, which waits for the cycle held
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no cycle of the new generation within 10 s")
	}
	if next.statements.Ready() {
		t.Error("statements ready before the new generation's first cycle; want them to wait for it (the old one's last, carried over, ended before the launch)")
	}
	free()
	waitFor(t, 10*time.Second, "statements ready after the new generation's first cycle", next.statements.Ready)
}
