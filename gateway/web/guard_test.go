package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"mallgrid/store"
)

// changes counts what reached the fakes behind the API: a refused request
// must leave it at zero.
type changes struct {
	mu sync.Mutex
	n  int
}

func (c *changes) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *changes) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// fakeLedger answers every account call with tenant T-101 and counts changes.
type fakeLedger struct{ c *changes }

func (l fakeLedger) Accounts() ([]AccountView, error) {
	return []AccountView{{Tenant: "T-101", Balance: "10.00", Accrued: "0.00", State: "normal"}}, nil
}
func (l fakeLedger) Account(tenant string) (AccountView, error) {
	if tenant != "T-101" {
		return AccountView{}, ErrNotFound
	}
	return AccountView{Tenant: tenant, Balance: "10.00", Accrued: "0.00", State: "normal"}, nil
}

// Entries has one top-up, entry 1, whose receipt the pages show.
func (l fakeLedger) Entries(_ string, before uint64, _ int) ([]EntryView, error) {
	if before != 0 && before <= 1 {
		return nil, nil
	}
	return []EntryView{{ID: 1, Time: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Kind: "topup", Amount: "100.00", Balance: "110.00",
		Ref: "PAY-1", Channel: "cash", Actor: "user:operator", Receipt: "R00000001"}}, nil
}
func (l fakeLedger) TopUp(_ context.Context, _ string, req TopUpRequest, actor string) (EntryView, bool, error) {
	l.c.add()
	return EntryView{ID: 1, Kind: "topup", Amount: req.Amount, Balance: "110.00", Actor: actor}, false, nil
}
func (l fakeLedger) Protect(_ context.Context, tenant string, _ ProtectRequest, _ string) (AccountView, error) {
	l.c.add()
	return AccountView{Tenant: tenant}, nil
}
func (l fakeLedger) Reverse(_ context.Context, _ string, req ReversalRequest, actor string) (EntryView, bool, error) {
	l.c.add()
	return EntryView{ID: 2, Kind: "reversal", Amount: "-100.00", Balance: "10.00", Reverses: req.Entry, Actor: actor, Note: req.Reason}, false, nil
}
func (l fakeLedger) Adjust(_ context.Context, _ string, req AdjustmentRequest, actor string) (EntryView, bool, error) {
	l.c.add()
	return EntryView{ID: 2, Kind: "adjustment", Amount: req.Amount, Balance: "15.00", Actor: actor, Note: req.Reason}, false, nil
}

type fakeOperator struct{ c *changes }

func (o fakeOperator) Release(_ context.Context, id string, _ ReleaseRequest, _ string) (OperatorResult, error) {
	o.c.add()
	return OperatorResult{Meter: id, Verdict: "released", BilledKWh: "1.000"}, nil
}
func (o fakeOperator) Exchange(_ context.Context, id string, _ ExchangeRequest, _ string) (OperatorResult, error) {
	o.c.add()
	return OperatorResult{Meter: id, Verdict: "exchanged", BilledKWh: "0.000"}, nil
}

type fakeRelayer struct{ c *changes }

func (f fakeRelayer) SetRelay(context.Context, string, RelayRequest, string) (RelayView, error) {
	f.c.add()
	return RelayView{Desired: "open", Actual: "closed"}, nil
}

// Override: a public meter (P-…) has no relay the gateway drives.
func (f fakeRelayer) Override(id string) (OverrideView, bool) {
	if strings.HasPrefix(id, "P-") {
		return OverrideView{}, false
	}
	return OverrideView{Desired: "closed", Why: "automatic: the account may draw power", WhyCode: "may_draw"}, true
}

// fakeAlarms has one active alarm and counts acknowledgements.
type fakeAlarms struct{ c *changes }

func (f fakeAlarms) List(string, int) ([]AlarmView, error) {
	return []AlarmView{{ID: 1, Kind: "meter_offline", Severity: "warning", State: AlarmActive, Meter: "M-101"}}, nil
}
func (f fakeAlarms) Ack(_ context.Context, id uint64, note, actor string) (AlarmView, error) {
	f.c.add()
	return AlarmView{ID: id, Kind: "meter_offline", State: AlarmAcknowledged, AckedBy: actor, Note: note}, nil
}

// fakeNotifications has one dead letter to a tenant, whose error quotes
// its addresses, and delivered ones without end, numbered down from
// 1,000; it counts resends.
type fakeNotifications struct{ c *changes }

func (f fakeNotifications) List(state string, before uint64, limit int) ([]NotificationView, error) {
	if state == NotificationDelivered {
		if before == 0 {
			before = 1001
		}
		var out []NotificationView
		for seq := before - 1; seq > 0 && len(out) < limit; seq-- {
			out = append(out, NotificationView{ID: fmt.Sprintf("%d-0-hook-hook-staff", seq), Seq: seq, Kind: "overload", State: NotificationDelivered,
				Channel: "hook", To: "staff", Recipient: "staff"})
		}
		return out, nil
	}
	return []NotificationView{{ID: "7-0-sms-t0", Seq: 7, Kind: "warning_1", State: NotificationDead, Channel: "sms", To: "tenant", Tenant: "T-101",
		Recipient: "Li Wei", Phone: "+86 138 0000 0101", Email: "liwei@noodle.example", Attempts: 8,
		LastError: "busy: +86 138 0000 0101 and liwei@noodle.example refused"}}, nil
}
func (f fakeNotifications) Resend(_ context.Context, id, _ string) (NotificationView, error) {
	f.c.add()
	return NotificationView{ID: id, State: NotificationPending}, nil
}

// fakeEvents has no events; a subscription ends at once, so a stream
// request returns.
type fakeEvents struct{}

func (fakeEvents) Subscribe() (<-chan EventView, func()) {
	ch := make(chan EventView)
	close(ch)
	return ch, func() {}
}
func (fakeEvents) After(uint64, int) ([]EventView, error) { return nil, nil }
func (fakeEvents) Last(int) ([]EventView, error)          { return nil, nil }

// emptyHistory has no samples; emptyAuditLog no records.
type emptyHistory struct{}

func (emptyHistory) MeterHistory(string, time.Time, time.Time, Step) (HistoryView, error) {
	return HistoryView{}, nil
}
func (emptyHistory) Usage(string, time.Time, time.Time) (UsageView, error) { return UsageView{}, nil }

// emptyReports answers the report endpoints with nothing in them.
type emptyReports struct{}

func (emptyReports) Finance(context.Context, string, string) ([]byte, error) {
	return []byte("Summary\r\n"), nil
}
func (emptyReports) EnergyBalance(context.Context, time.Time, time.Time) (BalanceView, error) {
	return BalanceView{}, nil
}

type emptyAuditLog struct{}

func (emptyAuditLog) Records(AuditQuery) ([]AuditEntry, error) { return nil, nil }

// fakeAudit keeps the audit records; fakeRecorder the stored events.
type fakeAudit struct {
	mu   sync.Mutex
	recs []AuditRecord
}

func (a *fakeAudit) Record(r AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}
func (a *fakeAudit) all() []AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuditRecord(nil), a.recs...)
}

type fakeRecorder struct {
	mu  sync.Mutex
	evs []store.Event
}

func (f *fakeRecorder) PostEvents(evs ...store.Event) ([]store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, evs...)
	return evs, nil
}

// clock is a fake time the tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testUsers are one user per role, named after it, with the password
// ROLE-pw (bcrypt at its least cost: the tests log in often).
func testUsers(t *testing.T) []User {
	t.Helper()
	var us []User
	for _, role := range []string{RoleViewer, RoleOperator, RoleFinance, RoleAdmin} {
		h, err := bcrypt.GenerateFromPassword([]byte(role+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, User{Name: role, Role: role, PasswordHash: string(h)})
	}
	return us
}

// rig is a Server with every part, fakes behind it, on a real listener.
type rig struct {
	s      *Server
	url    string
	c      *changes
	audit  *fakeAudit
	events *fakeRecorder
	clock  *clock
	logged *strings.Builder
}

func newRig(t *testing.T, mod ...func(*Options)) *rig {
	t.Helper()
	c := &changes{}
	rg := &rig{c: c, audit: &fakeAudit{}, events: &fakeRecorder{}, clock: &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
		logged: &strings.Builder{}}
	var mu sync.Mutex
	o := Options{Ledger: fakeLedger{c}, Operator: fakeOperator{c}, Relayer: fakeRelayer{c}, Events: fakeEvents{},
		History: emptyHistory{}, Reports: emptyReports{}, AuditLog: emptyAuditLog{}, Alarms: fakeAlarms{c}, Notifications: fakeNotifications{c}, Paycodes: fakePaycodes{},
		Tokens: testTokens(), Users: testUsers(t), Listen: "127.0.0.1:0", Now: rg.clock.now, LoginDelay: time.Millisecond,
		Auditor: rg.audit, Recorder: rg.events,
		Log: zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return rg.logged.Write(p)
		})))}
	for _, m := range mod {
		m(&o)
	}
	s, err := New(newFake(), o)
	if err != nil {
		t.Fatal(err)
	}
	rg.s = s
	srv := httptest.NewUnstartedServer(s)
	srv.Start()
	t.Cleanup(srv.Close)
	rg.url = srv.URL
	return rg
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// client returns an HTTP client that keeps cookies and does not follow
// redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login logs c in as user with password and returns the session's CSRF
// token.
func (rg *rig) login(t *testing.T, c *http.Client, user, password string) string {
	t.Helper()
	resp, err := c.PostForm(rg.url+"/login", url.Values{"username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s = %d; want 303", user, resp.StatusCode)
	}
	var v SessionView
	if code := rg.do(t, c, "GET", "/api/v1/session", "", nil, &v); code != 200 || v.CSRF == "" || v.Actor != "user:"+user {
		t.Fatalf("GET /api/v1/session = %d %+v; want 200 with user:%s and a CSRF token", code, v, user)
	}
	return v.CSRF
}

// do sends a request with headers and decodes a JSON reply into v.
func (rg *rig) do(t *testing.T, c *http.Client, method, path, body string, hdr map[string]string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, rg.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// goodBody is a request body each endpoint accepts.
var goodBody = map[string]string{
	"POST /api/v1/accounts/{tenant}/topups":      `{"amount":"100.00","ref":"PAY-1","channel":"cash"}`,
	"POST /api/v1/accounts/{tenant}/protection":  `{"protected":true,"reason":"clinic"}`,
	"POST /api/v1/accounts/{tenant}/reversals":   `{"entry":1,"reason":"cheque bounced","ref":"REV-1"}`,
	"POST /api/v1/accounts/{tenant}/adjustments": `{"amount":"5.00","reason":"goodwill","ref":"ADJ-1"}`,
	"POST /api/v1/meters/{id}/relay":             `{"state":"off","reason":"works"}`,
	"POST /api/v1/meters/{id}/release":           `{"reason":"new oven"}`,
	"POST /api/v1/meters/{id}/exchange":          `{"old_final_kwh":"1.000","new_start_kwh":"0.000","reason":"broken"}`,
	"POST /api/v1/alarms/{id}/ack":               `{"note":"breaker reset"}`,
	"POST /api/v1/notifications/{id}/resend":     `{}`,
	"POST /lang":                                 "lang=zh-CN&next=/",
}

// whoMay is the roles issue 11 gives each endpoint, written apart from
// accessRules so that a rule changed by mistake fails the test.
var whoMay = map[string]string{
	"POST /logout":                               "viewer operator finance admin",
	"GET /{$}":                                   "viewer operator finance admin",
	"POST /lang":                                 "viewer operator finance admin",
	"GET /meters":                                "viewer operator finance admin",
	"GET /meters/{id}":                           "viewer operator finance admin",
	"GET /events":                                "viewer operator finance admin",
	"GET /alarms":                                "viewer operator finance admin",
	"GET /notifications":                         "viewer operator finance admin",
	"GET /tenants":                               "viewer operator finance admin",
	"GET /tenants/{tenant}":                      "viewer operator finance admin",
	"GET /tenants/{tenant}/receipts/{entry}":     "viewer operator finance admin",
	"GET /audit":                                 "admin",
	"GET /finance":                               "finance admin",
	"GET /api/v1/session":                        "viewer operator finance admin",
	"GET /api/v1/status":                         "viewer operator finance admin",
	"GET /api/v1/meters":                         "viewer operator finance admin",
	"GET /api/v1/meters/{id}":                    "viewer operator finance admin",
	"GET /api/v1/meters/stream":                  "viewer operator finance admin",
	"GET /api/v1/meters/{id}/history":            "viewer operator finance admin",
	"GET /api/v1/events":                         "viewer operator finance admin",
	"GET /api/v1/accounts":                       "viewer operator finance admin",
	"GET /api/v1/accounts/{tenant}":              "viewer operator finance admin",
	"GET /api/v1/accounts/{tenant}/ledger":       "viewer operator finance admin",
	"GET /api/v1/accounts/{tenant}/usage":        "viewer operator finance admin",
	"POST /api/v1/accounts/{tenant}/topups":      "operator finance admin",
	"POST /api/v1/accounts/{tenant}/protection":  "operator admin",
	"POST /api/v1/accounts/{tenant}/reversals":   "finance admin",
	"POST /api/v1/accounts/{tenant}/adjustments": "finance admin",
	"POST /api/v1/meters/{id}/relay":             "operator admin",
	"POST /api/v1/meters/{id}/release":           "operator admin",
	"POST /api/v1/meters/{id}/exchange":          "operator admin",
	"GET /api/v1/alarms":                         "viewer operator finance admin",
	"POST /api/v1/alarms/{id}/ack":               "operator admin",
	"GET /api/v1/notifications":                  "viewer operator finance admin",
	"POST /api/v1/notifications/{id}/resend":     "operator admin",
	"GET /api/v1/audit":                          "admin",
	"GET /api/v1/reports/finance":                "finance admin",
	"GET /api/v1/reports/balance":                "finance admin",
	"GET /paycodes":                              "admin",
	"GET /api/v1/paycodes/sheet":                 "admin",
	"GET /api/v1/accounts/{tenant}/paycode.png":  "admin",
	"GET /api/v1/accounts/{tenant}/paycode.svg":  "admin",
}

// TestAccess_EveryRoleEveryEndpoint walks the routes the server actually
// registered: an endpoint without a rule, or a rule the guard does not
// keep, fails here. Each role calls each endpoint with its token and with
// a logged-in session; what the rule allows answers 2xx (303 for logout),
// the rest 403 and changes nothing.
func TestAccess_EveryRoleEveryEndpoint(t *testing.T) {
	rg := newRig(t)
	if len(rg.s.routes) < 18 {
		t.Fatalf("%d routes registered; want every endpoint (fakes behind all of them)", len(rg.s.routes))
	}
	path := strings.NewReplacer("{id}", "M-101", "{tenant}", "T-101", "{entry}", "1", "{$}", "")
	// The query each endpoint needs to answer 2xx.
	query := map[string]string{
		"GET /api/v1/meters/{id}/history":     "?from=2026-11-30T00:00:00%2B08:00&to=2026-11-30T01:00:00%2B08:00&step=1m",
		"GET /api/v1/accounts/{tenant}/usage": "?from=2026-11-01T00:00:00%2B08:00&to=2026-11-30T00:00:00%2B08:00&step=day",
		"GET /api/v1/reports/finance":         "?month=2026-11&format=csv",
		"GET /api/v1/reports/balance":         "?from=2026-11-01T00:00:00%2B08:00&to=2026-11-30T00:00:00%2B08:00",
	}
	for _, pattern := range rg.s.routes {
		rl, ok := rg.s.rules[pattern]
		if !ok {
			t.Errorf("%s: no access rule", pattern)
			continue
		}
		if rl.public {
			continue // TestAccess_Public
		}
		who, ok := whoMay[pattern]
		if !ok {
			t.Errorf("%s: not in whoMay; say which roles issue 11 gives it", pattern)
			continue
		}
		if got := strings.Join(rl.roles, " "); got != who {
			t.Errorf("%s: accessRules allows %q; want %q", pattern, got, who)
		}
		method, p, _ := strings.Cut(pattern, " ")
		p = path.Replace(strings.Replace(p, "/alarms/{id}", "/alarms/1", 1)) + query[pattern]
		for _, role := range []string{RoleViewer, RoleOperator, RoleFinance, RoleAdmin} {
			for _, by := range []string{"token", "session"} {
				c := client(t)
				hdr := map[string]string{"Content-Type": "application/json"}
				if pattern == "POST /lang" {
					hdr["Content-Type"] = "application/x-www-form-urlencoded"
				}
				if by == "token" {
					hdr["Authorization"] = "Bearer " + role + "-secret"
				} else {
					hdr["X-CSRF-Token"] = rg.login(t, c, role, role+"-pw")
				}
				before := rg.c.get()
				code := rg.do(t, c, method, p, goodBody[pattern], hdr, nil)
				changed := rg.c.get() != before
				switch {
				case pattern == "POST /logout", pattern == "POST /lang" && strings.Contains(" "+who+" ", " "+role+" "):
					if code != http.StatusSeeOther {
						t.Errorf("%s as %s by %s = %d; want 303", pattern, role, by, code)
					}
				case strings.Contains(" "+who+" ", " "+role+" "):
					if code/100 != 2 {
						t.Errorf("%s as %s by %s = %d; want 2xx", pattern, role, by, code)
					}
					if !safeMethod(method) && !changed {
						t.Errorf("%s as %s by %s: nothing reached the gateway", pattern, role, by)
					}
				default:
					if code != http.StatusForbidden || changed {
						t.Errorf("%s as %s by %s = %d, changed %v; want 403 and nothing changed", pattern, role, by, code, changed)
					}
				}
			}
		}
	}
}

// TestAccess_Public: the login page, /healthz and the static files need
// nobody; everything else is refused to nobody: a page redirects to the
// login with the path it wanted, the API answers 401 with a reason.
func TestAccess_Public(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	for _, p := range []string{"/login", "/healthz", "/static/style.css", "/static/app.js"} {
		if code := rg.do(t, c, "GET", p, "", nil, nil); code != 200 && !(p == "/healthz" && code == 503) {
			t.Errorf("GET %s without login = %d; want it served", p, code)
		}
	}
	req, _ := http.NewRequest("GET", rg.url+"/?tab=meters", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2F%3Ftab%3Dmeters" {
		t.Errorf("GET / without login = %d to %q; want 303 to /login?next=%%2F%%3Ftab%%3Dmeters", resp.StatusCode, loc)
	}
	for _, tc := range []struct{ method, path, hdr string }{
		{"GET", "/api/v1/meters", ""},
		{"GET", "/api/v1/accounts/T-101/ledger", ""},
		{"GET", "/api/v1/events", ""},
		{"POST", "/api/v1/accounts/T-101/topups", ""},
		{"GET", "/api/v1/meters", "Bearer wrong"},
	} {
		var e map[string]string
		hdr := map[string]string{}
		if tc.hdr != "" {
			hdr["Authorization"] = tc.hdr
		}
		if code := rg.do(t, c, tc.method, tc.path, goodBody["POST /api/v1/accounts/{tenant}/topups"], hdr, &e); code != 401 || e["error"] == "" {
			t.Errorf("%s %s (%q) = %d %v; want 401 with a reason", tc.method, tc.path, tc.hdr, code, e)
		}
	}
	if rg.c.get() != 0 {
		t.Errorf("%d changes reached the gateway without a login; want 0", rg.c.get())
	}
}

// An endpoint registered without a rule makes New fail, and is refused
// to everyone if it is served anyway.
func TestAccess_EndpointWithoutRule(t *testing.T) {
	rg := newRig(t)
	rg.s.handle("GET /api/v1/secret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, "secret") }))
	if err := rg.s.checkRules(); err == nil || !strings.Contains(err.Error(), "GET /api/v1/secret") {
		t.Errorf("checkRules = %v; want an error naming the endpoint", err)
	}
	if code := rg.do(t, client(t), "GET", "/api/v1/secret", "", map[string]string{"Authorization": "Bearer admin-secret"}, nil); code != 403 {
		t.Errorf("GET an endpoint without a rule as admin = %d; want 403", code)
	}
}

// TestTopUp_OperatorCashOnly: an operator records cash; any other channel
// needs finance or admin, refused where the body is read.
func TestTopUp_OperatorCashOnly(t *testing.T) {
	rg := newRig(t)
	for _, tc := range []struct {
		role, channel string
		code          int
	}{
		{RoleOperator, "cash", 201}, {RoleOperator, "wechat", 403}, {RoleOperator, "bank", 403},
		{RoleFinance, "wechat", 201}, {RoleFinance, "cash", 201}, {RoleAdmin, "alipay", 201}, {RoleViewer, "cash", 403},
	} {
		before := rg.c.get()
		var e map[string]any
		code := rg.do(t, client(t), "POST", "/api/v1/accounts/T-101/topups", `{"amount":"5.00","ref":"P","channel":"`+tc.channel+`"}`,
			map[string]string{"Authorization": "Bearer " + tc.role + "-secret"}, &e)
		changed := rg.c.get() != before
		if code != tc.code || changed != (tc.code == 201) {
			t.Errorf("%s top-up by %s = %d (changed %v) %v; want %d", tc.role, tc.channel, code, changed, e, tc.code)
		}
		if code == 403 && e["error"] == nil {
			t.Errorf("%s top-up by %s: 403 without a reason", tc.role, tc.channel)
		}
	}
}

// TestCSRF: a change by a logged-in page needs the session's token, in
// the header or a form field; a machine's bearer token needs none.
func TestCSRF(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	csrf := rg.login(t, c, RoleAdmin, "admin-pw")
	other := rg.login(t, client(t), RoleOperator, "operator-pw")
	body := goodBody["POST /api/v1/meters/{id}/relay"]
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"no token", nil, 403},
		{"wrong token", map[string]string{"X-CSRF-Token": "x" + csrf}, 403},
		{"another session's token", map[string]string{"X-CSRF-Token": other}, 403},
		{"the session's token", map[string]string{"X-CSRF-Token": csrf}, 200},
	} {
		before := rg.c.get()
		code := rg.do(t, c, "POST", "/api/v1/meters/M-101/relay", body, tc.hdr, nil)
		if changed := rg.c.get() != before; code != tc.code || changed != (tc.code == 200) {
			t.Errorf("%s: %d (changed %v); want %d", tc.name, code, changed, tc.code)
		}
	}
	// Logout from the page's form: the token as the csrf field.
	for _, tc := range []struct {
		field string
		code  int
	}{{"nope", 403}, {csrf, 303}} {
		resp, err := c.PostForm(rg.url+"/logout", url.Values{"csrf": {tc.field}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("logout with csrf %q = %d; want %d", tc.field, resp.StatusCode, tc.code)
		}
	}
	if code := rg.do(t, c, "GET", "/api/v1/meters", "", nil, nil); code != 401 {
		t.Errorf("after logout: GET /api/v1/meters = %d; want 401", code)
	}
	if code := rg.do(t, client(t), "POST", "/api/v1/meters/M-101/relay", body, map[string]string{"Authorization": "Bearer operator-secret"}, nil); code != 200 {
		t.Errorf("a token's change without a CSRF token = %d; want 200", code)
	}
}

// TestHeaders: every answer carries the security headers, the refusals and
// the static files too.
func TestHeaders(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
			"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "same-origin",
		"X-Frame-Options":        "DENY",
	}
	for _, tc := range []struct{ method, path, host, auth string }{
		{"GET", "/", "", "Bearer viewer-secret"},
		{"GET", "/", "", ""},
		{"GET", "/login", "", ""},
		{"GET", "/static/app.js", "", ""},
		{"GET", "/nothing", "", ""},
		{"GET", "/api/v1/meters", "", ""},
		{"GET", "/api/v1/meters", "evil.example", "Bearer viewer-secret"},
		{"POST", "/api/v1/meters/M-101/relay", "", "Bearer viewer-secret"},
	} {
		req, _ := http.NewRequest(tc.method, rg.url+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s (%d): %s = %q; want %q", tc.method, tc.path, resp.StatusCode, k, got, v)
			}
		}
	}
}

// TestHost: a request must name this gateway: its listen host, localhost
// or a loopback address with the port it is served on, or a name of
// http.hosts. Anything else is refused (DNS rebinding) and changes nothing.
func TestHost(t *testing.T) {
	for _, tc := range []struct {
		listen string
		hosts  []string
		host   string // "PORT" is replaced by the port served on
		ok     bool
	}{
		{"127.0.0.1:0", nil, "127.0.0.1:PORT", true},
		{"127.0.0.1:0", nil, "localhost:PORT", true},
		{"127.0.0.1:0", nil, "LOCALHOST.:PORT", true},
		{"127.0.0.1:0", nil, "[::1]:PORT", true},
		{"127.0.0.1:0", nil, "localhost:1", false},
		{"127.0.0.1:0", nil, "evil.example:PORT", false},
		{"127.0.0.1:0", nil, "10.0.0.5:PORT", false},
		{"127.0.0.1:0", nil, "localhost.evil.example:PORT", false},
		{"192.168.10.5:0", nil, "192.168.10.5:PORT", true},
		{":0", nil, "192.168.10.5:PORT", true},
		{":0", nil, "gw.mall.lan:PORT", false},
		{"0.0.0.0:0", []string{"gw.mall.lan"}, "gw.mall.lan:PORT", true},
		{"0.0.0.0:0", []string{"gw.mall.lan"}, "GW.Mall.Lan", true},
		{"0.0.0.0:0", []string{"gw.mall.lan:8443"}, "gw.mall.lan:8443", true},
		{"0.0.0.0:0", []string{"gw.mall.lan:8443"}, "gw.mall.lan:PORT", false},
	} {
		rg := newRig(t, func(o *Options) { o.Listen, o.Hosts = tc.listen, tc.hosts })
		ln := serve(t, rg.s)
		_, port, _ := strings.Cut(ln, ":")
		host := strings.ReplaceAll(tc.host, "PORT", port)
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, "http://"+ln+"/api/v1/meters/M-101/relay", strings.NewReader(goodBody["POST /api/v1/meters/{id}/relay"]))
			if method == "GET" {
				req, _ = http.NewRequest(method, "http://"+ln+"/api/v1/meters", nil)
			}
			req.Host = host
			req.Header.Set("Authorization", "Bearer admin-secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if ok := resp.StatusCode/100 == 2; ok != tc.ok || !ok && resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("listen %s hosts %v, %s with Host %s = %d; want allowed %v (else 421)", tc.listen, tc.hosts, method, host, resp.StatusCode, tc.ok)
			}
		}
		if want := map[bool]int{true: 1, false: 0}[tc.ok]; rg.c.get() != want {
			t.Errorf("listen %s, Host %s: %d changes; want %d", tc.listen, host, rg.c.get(), want)
		}
	}
}

// serve runs s.Serve on a real listener and returns its address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}
