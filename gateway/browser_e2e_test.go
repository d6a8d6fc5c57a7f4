//go:build e2e

package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// The control room in a real browser (headless Debian chromium) against
// the daemon on simulated meters: one scenario per test, each with its own
// gateway and its own browser. A scenario fails on any JavaScript
// exception or console error a page raised, whatever it checked.

// pages is one browser tab on a gateway, and what its pages reported.
type pages struct {
	t     *testing.T
	ctx   context.Context
	alloc context.Context // the browser's allocator: a fresh browser context comes from the tab
	base  string

	mu     sync.Mutex
	errors []string // exceptions and console errors, as they came
}

// browser starts headless chromium (no background networking: this
// machine has no network) and opens a tab on base.
func browser(t *testing.T, base string) *pages {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not installed (apt-get install chromium): ", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &pages{t: t, alloc: actx, base: base}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(p.listen))
	p.ctx = ctx
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errors {
			t.Errorf("the page raised: %s", e)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return p
}

// listen keeps the exceptions, console errors and browser errors of the
// tab's pages.
func (p *pages) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg = d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		msg = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg)
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var args []string
		for _, a := range e.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		msg = "console.error: " + strings.Join(args, " ")
	case *cdplog.EventEntryAdded:
		// The browser's own errors: a refused script or style (the
		// Content-Security-Policy), a failed script. A refused request
		// (source "network") is what some scenarios provoke on purpose.
		if e.Entry.Level != cdplog.EntryLevelError || e.Entry.Source == cdplog.EntrySourceNetwork {
			return
		}
		msg = fmt.Sprintf("browser %s error at %s: %s", e.Entry.Source, e.Entry.URL, e.Entry.Text)
	default:
		return
	}
	p.mu.Lock()
	p.errors = append(p.errors, msg)
	p.mu.Unlock()
}

// do runs steps on the tab within 30 s; what names the step in a failure.
func (p *pages) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// open loads base+path and waits for the page's script to have run.
func (p *pages) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.base+path), chromedp.WaitReady(`body`))
}

// until waits for a JavaScript condition on the page. An evaluation that
// fails (the page is being replaced by a navigation) counts as not yet.
func (p *pages) until(what, cond string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %v waiting for %s (last error: %v)", within, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// js evaluates expr on the page (awaiting a promise) and returns its value.
func js[T any](p *pages, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is an element's text content ("" and a failure if it is missing).
func (p *pages) text(sel string) string {
	p.t.Helper()
	return js[string](p, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent.trim() : "<missing>"; })()`, sel))
}

// login fills the login form the tab is on and sends it.
func (p *pages) login(user, password string) {
	p.t.Helper()
	p.do("log in as "+user,
		chromedp.WaitVisible(`#username`),
		chromedp.SetValue(`#username`, user),
		chromedp.SetValue(`#password`, password),
		chromedp.Submit(`#password`),
		chromedp.WaitReady(`body`))
}

// status answers what a same-origin fetch from the page gets, with the
// page's session cookie; headers is a JavaScript object literal.
func (p *pages) status(method, path, headers, body string) int {
	p.t.Helper()
	return js[int](p, fmt.Sprintf(`fetch(%q, {method: %q, headers: %s, body: %s, credentials: "same-origin"}).then(r => r.status)`,
		path, method, headers, jsBody(body)))
}

func jsBody(body string) string {
	if body == "" {
		return "undefined"
	}
	return fmt.Sprintf("%q", body)
}

// withCSRF is the headers a form of the page sends: JSON with the
// session's CSRF token.
const withCSRF = `{"Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf}`

// e2eMall is a test mall with a login of every role: ann (operator,
// from newTestMall), vic (viewer), fay (finance) and ada (admin), each
// with the password NAME-pw at bcrypt's least cost.
func e2eMall(t *testing.T, perBus int, extraYAML ...string) *testMall {
	t.Helper()
	return withLogins(t, newTestMall(t, perBus, extraYAML...))
}

// withLogins adds e2eMall's logins to mall.
func withLogins(t *testing.T, mall *testMall) *testMall {
	t.Helper()
	for _, u := range []struct{ name, role string }{{"vic", config.RoleViewer}, {"fay", config.RoleFinance}, {"ada", config.RoleAdmin}} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.name+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		mall.cfg.HTTP.Users = append(mall.cfg.HTTP.Users, config.User{Name: u.name, Role: u.role, PasswordHash: string(hash)})
	}
	return mall
}

// waitRead waits until every simulated meter has been read once.
func waitRead(t *testing.T, base string) {
	t.Helper()
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var health web.HealthView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK
	})
}

// silence makes a simulated meter stop answering, so that its
// meter_offline alarm is raised (the mall's offlineAfter must be short),
// and returns the alarm once the API lists it as active.
func silence(t *testing.T, mall *testMall, base, meterID string) web.AlarmView {
	t.Helper()
	if err := mall.meters[meterID].SetFaultRates(map[sim.FaultKind]float64{sim.NoReply: 1}); err != nil {
		t.Fatal(err)
	}
	var active []web.AlarmView
	waitFor(t, 20*time.Second, meterID+"'s meter_offline alarm", func() bool {
		active = alarmsOf(t, base, web.AlarmActive)
		return len(active) > 0
	})
	if a := active[0]; a.Kind != "meter_offline" || a.Meter != meterID {
		t.Fatalf("active alarms = %+v; want %s's meter_offline", active, meterID)
	}
	return active[0]
}

// TestE2E_Login: a page asked for without a login sends the browser to
// the login form with the page to come back to; a wrong password shows
// the message and opens no session; the right one goes back to the page.
func TestE2E_Login(t *testing.T) {
	mall := e2eMall(t, 1)
	base, _ := mall.start(t)
	p := browser(t, base)

	p.open("/tenants")
	p.do("the login form", chromedp.WaitVisible(`#username`))
	if loc := js[string](p, `location.pathname + location.search`); loc != "/login?next=%2Ftenants" {
		t.Errorf("the page without a login is at %s; want /login?next=%%2Ftenants", loc)
	}

	p.login("ann", "not-her-password")
	p.do("the refusal", chromedp.WaitVisible(`p.bad[role=alert]`))
	if msg := p.text(`p.bad[role=alert]`); msg != "Wrong user name or password." {
		t.Errorf("wrong password: the page says %q; want the login.failed message", msg)
	}
	if code := p.status("GET", "/api/v1/status", `{}`, ""); code != http.StatusUnauthorized {
		t.Errorf("after a wrong password the API answers the browser %d; want 401 (no session)", code)
	}
	if loc := js[string](p, `location.pathname`); loc != "/login" {
		t.Errorf("after a wrong password the browser is at %s; want the login form", loc)
	}

	p.login("ann", "ann-pw")
	p.do("the tenants page", chromedp.WaitVisible(`#tenants`))
	if loc := js[string](p, `location.pathname`); loc != "/tenants" {
		t.Errorf("after the login the browser is at %s; want /tenants, the page it asked for", loc)
	}
	if user := p.text(`#user`); user != "ann" {
		t.Errorf("the page shows user %q; want ann", user)
	}
	if code := p.status("GET", "/api/v1/status", `{}`, ""); code != http.StatusOK {
		t.Errorf("with the session the API answers %d; want 200", code)
	}
}

// TestE2E_TopUpRestoresRelay: an operator tops up a cut-off tenant
// through the form on its page; the simulated relay closes, the page shows
// it closed, and the receipt shows its number, the operator and the time.
func TestE2E_TopUpRestoresRelay(t *testing.T) {
	mall := cutOffMall(t, "0s")
	base, _ := mall.start(t)
	mall.meters["M-a1"].SetLoad(36_000)
	waitFor(t, 20*time.Second, "T-a1's relay to be opened", func() bool { return !mall.meters["M-a1"].Snapshot().RelayClosed })
	if a := account(t, base, "T-a1"); a.State != "cut_off" {
		t.Fatalf("T-a1 = %s; want cut_off before the top-up", a.State)
	}

	p := browser(t, base)
	p.open("/tenants/T-a1")
	p.login("ann", "ann-pw")
	p.do("the top-up form", chromedp.WaitVisible(`#topup`))
	if st := p.text(`#account .state`); st != "Cut off" {
		t.Errorf("the tenant page says %q; want Cut off", st)
	}
	p.do("send the top-up",
		chromedp.SendKeys(`#topup input[name=amount]`, "100.00"),
		chromedp.Click(`#topup button[type=submit]`))
	p.until("the receipt", `location.pathname.startsWith("/tenants/T-a1/receipts/") && !!document.querySelector("#receipt")`, 15*time.Second)

	if no := p.text(`#receipt-no`); !regexp.MustCompile(`^R\d{8}$`).MatchString(no) {
		t.Errorf("receipt number %q; want R and eight digits", no)
	}
	if op := p.text(`#receipt-operator`); op != "user:ann" {
		t.Errorf("receipt operator %q; want user:ann", op)
	}
	if amt := p.text(`#receipt-amount`); !strings.Contains(amt, "100.00") {
		t.Errorf("receipt amount %q; want 100.00", amt)
	}
	when := p.text(`#receipt tr:nth-child(2) td`)
	if at, err := time.ParseInLocation("2006-01-02 15:04:05", when, mall.cfg.Location); err != nil || time.Since(at).Abs() > time.Minute {
		t.Errorf("receipt time %q; want now, as 2006-01-02 15:04:05 in the site's zone (%s)", when, mall.cfg.Site.Timezone)
	}

	waitFor(t, 20*time.Second, "the simulated relay to close", func() bool { return mall.meters["M-a1"].Snapshot().RelayClosed })
	deadline := time.Now().Add(15 * time.Second)
	for {
		p.open("/tenants/T-a1")
		if p.text(`#meter-M-a1 td.relay`) == "Closed (power on)" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant page shows M-a1's relay %q; want Closed (power on)", p.text(`#meter-M-a1 td.relay`))
		}
		time.Sleep(300 * time.Millisecond)
	}
	if st := p.text(`#account .state`); st == "Cut off" {
		t.Errorf("after the top-up the tenant page still says %q", st)
	}
}

// TestE2E_OverrideWithConfirmation: an override asks first; Cancel sends
// nothing, Confirm sends it, the simulated relay opens and the page shows
// who overrode it and why.
func TestE2E_OverrideWithConfirmation(t *testing.T) {
	mall := e2eMall(t, 2)
	base, _ := mall.start(t)
	waitRead(t, base)
	p := browser(t, base)
	p.open("/tenants/T-a2")
	p.login("ann", "ann-pw")
	const form = `form.override[data-meter="M-a2"]`
	p.do("the override form", chromedp.WaitVisible(form))
	// Count what the page posts from here on (in the tab's session
	// storage, which outlives a reload the post would cause).
	js[bool](p, `(() => { sessionStorage.posts = "0"; const f = window.fetch;
		window.fetch = function (u, o) { if (o && o.method === "POST") { sessionStorage.posts = String(+sessionStorage.posts + 1); } return f.apply(this, arguments); };
		return true; })()`)

	p.do("ask for the override",
		chromedp.SetValue(form+` select[name=state]`, "off"),
		chromedp.SendKeys(form+` input[name=reason]`, "electrician at work on shop a2"),
		chromedp.Click(form+` button[type=submit]`),
		chromedp.WaitVisible(form+` dialog.confirm`))
	if q := p.text(form + ` dialog .question`); !strings.Contains(q, "M-a2") {
		t.Errorf("the confirmation asks %q; want it to name M-a2", q)
	}
	p.do("cancel", chromedp.Click(form+` dialog .no`), chromedp.WaitNotVisible(form+` dialog.confirm`))
	time.Sleep(time.Second)
	if n := js[int](p, `+(sessionStorage.posts || 0)`); n != 0 {
		t.Errorf("Cancel posted %d requests; want none", n)
	}
	var m web.MeterView
	getJSON(t, base+"/api/v1/meters/M-a2", &m)
	if m.Relay.Desired != "closed" || !mall.meters["M-a2"].Snapshot().RelayClosed {
		t.Fatalf("after Cancel M-a2 desired %s, simulated relay closed %v; want untouched", m.Relay.Desired, mall.meters["M-a2"].Snapshot().RelayClosed)
	}

	p.do("confirm",
		chromedp.Click(form+` button[type=submit]`),
		chromedp.WaitVisible(form+` dialog.confirm`),
		chromedp.Click(form+` dialog .yes`))
	waitFor(t, 15*time.Second, "the simulated relay to open", func() bool { return !mall.meters["M-a2"].Snapshot().RelayClosed })
	p.until("the override on the page", `(() => { const r = document.querySelector("#meter-M-a2"); return !!r && r.textContent.includes("user:ann"); })()`, 15*time.Second)
	row := p.text(`#meter-M-a2`)
	if !strings.Contains(row, "Overridden by user:ann") || !strings.Contains(row, "electrician at work on shop a2") {
		t.Errorf("M-a2's row after the override: %q; want who (user:ann) and why", row)
	}
	if !mall.meters["M-a1"].Snapshot().RelayClosed {
		t.Error("the neighbour's relay opened")
	}
}

// TestE2E_AcknowledgeAlarm: an operator acknowledges a meter_offline
// alarm with a note on the dashboard; the row and the API say
// acknowledged, by whom, with the note.
func TestE2E_AcknowledgeAlarm(t *testing.T) {
	mall := e2eMall(t, 2)
	mall.offlineAfter = 2 * time.Second
	base, _ := mall.start(t)
	waitRead(t, base)
	a := silence(t, mall, base, "M-a1")

	p := browser(t, base)
	p.open("/")
	p.login("ann", "ann-pw")
	row := fmt.Sprintf(`#alarm-%d`, a.ID)
	p.do("the alarm's form",
		chromedp.WaitVisible(row+` form.ack`),
		chromedp.SendKeys(row+` form.ack input[name=note]`, "breaker tripped; tenant resets it"),
		chromedp.Click(row+` form.ack button[type=submit]`))
	p.until("the row acknowledged", fmt.Sprintf(`!document.querySelector(%q)`, row+` form.ack`), 10*time.Second)
	if st := p.text(row + ` td.state`); st != "Acknowledged · user:ann" {
		t.Errorf("the alarm's row says %q; want Acknowledged · user:ann", st)
	}
	var got web.AlarmView
	for _, x := range alarmsOf(t, base, "") {
		if x.ID == a.ID {
			got = x
		}
	}
	if got.State != web.AlarmAcknowledged || got.AckedBy != "user:ann" || got.Note != "breaker tripped; tenant resets it" {
		t.Errorf("the API has %+v; want acknowledged by user:ann with the note", got)
	}
	// The alarms page shows the same after a reload, with the note.
	p.open("/alarms")
	if st := p.text(row + ` td.state`); !strings.Contains(st, "Acknowledged") || !strings.Contains(st, "user:ann") || !strings.Contains(st, "breaker tripped") {
		t.Errorf("/alarms shows %q; want acknowledged, by user:ann, the note", st)
	}
}

// TestE2E_RestaurantOverload: a restaurant's circuit drawing about 56 A
// against its 60 A rating — over the kitchens' 90 %
// (alarms.categories.restaurant) but under the shops' 100 % — raises a
// critical overload that appears on the dashboard already open in the
// browser, without a reload; the operator acknowledges it there. The shop
// next door on the same load, under the same 2 s, raises nothing.
func TestE2E_RestaurantOverload(t *testing.T) {
	mall := withLogins(t, buildMall(t, 2, sim.WireTiming{}, map[string]string{"T-a1": "restaurant"},
		"alarms:\n  defaults:\n    overload: {for: 2s}\n  categories:\n    restaurant: {overload: {factor: 0.9, clear_factor: 0.8, severity: critical}}\n"))
	base, _ := mall.start(t)
	waitRead(t, base)
	p := browser(t, base)
	p.open("/")
	p.login("ann", "ann-pw")
	p.do("the dashboard", chromedp.WaitVisible(`#alarms`))
	js[bool](p, `(window.__sameDashboard = true)`)
	// 37 kW on three phases at 230 V and a power factor of 0.95: about
	// 56 A a phase.
	mall.meters["M-a1"].SetLoad(37_000)
	mall.meters["M-a2"].SetLoad(37_000)
	p.until("the overload's row on the open dashboard", `[...document.querySelectorAll('#alarms [id^="alarm-"]')].some(r => r.textContent.includes("M-a1"))`, 20*time.Second)
	if !js[bool](p, `window.__sameDashboard === true`) {
		t.Error("the dashboard was reloaded; want the alarm streamed to the open page")
	}
	active := alarmsOf(t, base, web.AlarmActive)
	if len(active) != 1 || active[0].Kind != "overload" || active[0].Meter != "M-a1" || active[0].Severity != "critical" || active[0].Values["limit_a"] != "54" {
		t.Fatalf("active alarms = %+v; want one critical overload of M-a1 at the kitchens' 54 A", active)
	}
	row := fmt.Sprintf(`#alarm-%d`, active[0].ID)
	if txt := p.text(row); !strings.Contains(txt, "Overload") {
		t.Errorf("the dashboard's row says %q; want the overload told", txt)
	}
	p.do("acknowledge it",
		chromedp.WaitVisible(row+` form.ack`),
		chromedp.SendKeys(row+` form.ack input[name=note]`, "fryers staggered"),
		chromedp.Click(row+` form.ack button[type=submit]`))
	p.until("the row acknowledged", fmt.Sprintf(`!document.querySelector(%q)`, row+` form.ack`), 10*time.Second)
	for _, a := range alarmsOf(t, base, "") {
		switch {
		case a.ID == active[0].ID && (a.State != web.AlarmAcknowledged || a.AckedBy != "user:ann" || a.Note != "fryers staggered"):
			t.Errorf("the API has %+v; want acknowledged by user:ann with the note", a)
		case a.Meter == "M-a2":
			t.Errorf("the shop next door raised %+v; want nothing at 56 A of 60", a)
		}
	}
}

// TestE2E_Language: the login page's links switch it to Chinese and back;
// the switch in the header turns the pages Chinese, and the choice is
// remembered: on the next page load, and for the same user logging in from
// a browser that never chose.
func TestE2E_Language(t *testing.T) {
	mall := e2eMall(t, 1)
	base, _ := mall.start(t)
	p := browser(t, base)
	p.open("/")
	// The login page has its own links: to Chinese and back.
	p.do("the login page in Chinese", chromedp.Click(`#lang-zh-CN`))
	p.until("the Chinese login page", `document.documentElement.lang === "zh-CN" && !!document.querySelector("#lang-en")`, 10*time.Second)
	if b := p.text(`main.login button[type=submit]`); b != "登录" {
		t.Errorf("the Chinese login page's button reads %q; want 登录", b)
	}
	if loc := js[string](p, `new URLSearchParams(location.search).get("next")`); loc != "/" {
		t.Errorf("the Chinese login page goes on to %q; want /, the page asked for", loc)
	}
	p.do("the login page in English", chromedp.Click(`#lang-en`))
	p.until("the English login page", `document.documentElement.lang === "en" && !!document.querySelector("#lang-zh-CN")`, 10*time.Second)
	p.login("ann", "ann-pw")
	if lang := js[string](p, `document.documentElement.lang`); lang != "en" {
		t.Fatalf("the page is in %q before the switch; want en (the browser's)", lang)
	}
	p.do("switch to Chinese", chromedp.Click(`#lang-zh-CN`))
	p.until("the Chinese page", `document.documentElement.lang === "zh-CN"`, 10*time.Second)
	if nav := p.text(`header.top nav a[href="/"]`); nav != "总览" {
		t.Errorf("the dashboard's link reads %q; want 总览", nav)
	}
	p.open("/meters")
	if lang := js[string](p, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("the next page is in %q; want zh-CN, remembered", lang)
	}
	p.until("the meters' rows in Chinese", `(() => { const c = document.querySelector("#meters td.relay"); return !!c && c.textContent === "合闸（供电）"; })()`, 10*time.Second)

	// A fresh browser context: no cookies. The login page follows the
	// browser; once ann logs in, her choice.
	ctx, cancel := chromedp.NewContext(p.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	defer cancel()
	q := &pages{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a fresh browser context: %v", err)
	}
	q.open("/")
	if lang := js[string](q, `document.documentElement.lang`); lang != "en" {
		t.Errorf("the login page of a fresh browser is in %q; want en", lang)
	}
	q.login("ann", "ann-pw")
	q.do("the dashboard", chromedp.WaitVisible(`#at-risk`))
	if lang := js[string](q, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("ann's new login is in %q; want zh-CN, her choice", lang)
	}
	if h := q.text(`main h1`); h != "总览" {
		t.Errorf("ann's new login shows the heading %q; want 总览", h)
	}
}

// TestE2E_ViewerSeesNoOperatorButtons: a viewer's pages have no form that
// changes something, and a change forged from the viewer's page with its
// own CSRF token is refused and changes nothing.
func TestE2E_ViewerSeesNoOperatorButtons(t *testing.T) {
	mall := e2eMall(t, 2)
	mall.offlineAfter = 2 * time.Second
	base, _ := mall.start(t)
	waitRead(t, base)
	a := silence(t, mall, base, "M-b1")

	p := browser(t, base)
	p.open("/tenants/T-a1")
	p.login("vic", "vic-pw")
	p.do("the tenant page", chromedp.WaitVisible(`#account`))
	for _, sel := range []string{`#topup`, `form.override`, `#protect`} {
		if n := js[int](p, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)); n != 0 {
			t.Errorf("the viewer's tenant page has %d %s; want none", n, sel)
		}
	}
	// The meters' rows are there: the forms are missing, not the page.
	if n := js[int](p, `document.querySelectorAll("#meter-M-a1").length`); n != 1 {
		t.Errorf("the viewer's tenant page lists %d rows of M-a1; want 1", n)
	}
	for _, path := range []string{"/", "/alarms"} {
		p.open(path)
		p.do("the alarm's row on "+path, chromedp.WaitVisible(fmt.Sprintf(`#alarm-%d`, a.ID)))
		if n := js[int](p, `document.querySelectorAll("form.ack").length`); n != 0 {
			t.Errorf("the viewer's %s has %d ack forms; want none", path, n)
		}
	}

	before := account(t, base, "T-a1")
	for _, f := range []struct{ path, body string }{
		{"/api/v1/accounts/T-a1/topups", `{"amount":"50.00","ref":"FORGED-1","channel":"cash"}`},
		{"/api/v1/meters/M-a1/relay", `{"state":"off","reason":"forged"}`},
		{fmt.Sprintf("/api/v1/alarms/%d/ack", a.ID), `{"note":"forged"}`},
	} {
		if code := p.status("POST", f.path, withCSRF, f.body); code != http.StatusForbidden {
			t.Errorf("the viewer's forged POST %s = %d; want 403", f.path, code)
		}
	}
	if after := account(t, base, "T-a1"); after.Balance != before.Balance {
		t.Errorf("T-a1's balance went from %s to %s after the viewer's forged top-up", before.Balance, after.Balance)
	}
	var m web.MeterView
	getJSON(t, base+"/api/v1/meters/M-a1", &m)
	if m.Relay.Desired != "closed" {
		t.Errorf("M-a1 desired %s after the viewer's forged override; want closed", m.Relay.Desired)
	}
	if list := alarmsOf(t, base, web.AlarmActive); len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("active alarms after the viewer's forged ack = %+v; want alarm %d still active", list, a.ID)
	}
}

// TestE2E_PostWithoutCSRF: a logged-in page's change without its CSRF
// token, or with another, is refused (403) and changes nothing; the same
// change with the token goes through.
func TestE2E_PostWithoutCSRF(t *testing.T) {
	mall := e2eMall(t, 1)
	base, _ := mall.start(t)
	p := browser(t, base)
	p.open("/tenants/T-a1")
	p.login("fay", "fay-pw")
	p.do("the top-up form", chromedp.WaitVisible(`#topup`))
	const path = "/api/v1/accounts/T-a1/topups"
	body := func(ref string) string { return `{"amount":"50.00","ref":"` + ref + `","channel":"cash"}` }
	if code := p.status("POST", path, `{"Content-Type": "application/json"}`, body("NO-TOKEN")); code != http.StatusForbidden {
		t.Errorf("POST without the CSRF token = %d; want 403", code)
	}
	if code := p.status("POST", path, `{"Content-Type": "application/json", "X-CSRF-Token": "0123456789abcdef"}`, body("BAD-TOKEN")); code != http.StatusForbidden {
		t.Errorf("POST with another CSRF token = %d; want 403", code)
	}
	if a := account(t, base, "T-a1"); a.Balance != "0.00" {
		t.Fatalf("T-a1's balance after two refused top-ups = %s; want 0.00", a.Balance)
	}
	if code := p.status("POST", path, withCSRF, body("WITH-TOKEN")); code != http.StatusCreated {
		t.Errorf("POST with the page's CSRF token = %d; want 201", code)
	}
	if a := account(t, base, "T-a1"); a.Balance != "50.00" {
		t.Errorf("T-a1's balance = %s; want 50.00, the one accepted top-up", a.Balance)
	}
}

// TestE2E_MetersPageAndPhone: the meters page lists and pages 120 meters,
// filters them, and a relay change reaches its row without a reload; at
// 400 px the dashboard stays usable.
func TestE2E_MetersPageAndPhone(t *testing.T) {
	mall := e2eMall(t, 60)
	base, _ := mall.start(t)
	waitRead(t, base)
	p := browser(t, base)
	p.open("/meters")
	p.login("vic", "vic-pw")
	rows := `document.querySelectorAll("#meters tbody tr[id^=meter-]").length`
	p.until("the first page", rows+` === 100`, 10*time.Second)
	if r := p.text(`#range`); !strings.Contains(r, "1") || !strings.Contains(r, "100") || !strings.Contains(r, "120") {
		t.Errorf("the pager says %q; want 1–100 of 120", r)
	}
	p.do("the next page", chromedp.Click(`#next`))
	p.until("the second page", rows+` === 20 && !!document.querySelector("#meter-M-b60")`, 10*time.Second)
	if !js[bool](p, `document.querySelector("#next").disabled && !document.querySelector("#prev").disabled`) {
		t.Error("on the last page: want › disabled and ‹ enabled")
	}
	if loc := js[string](p, `location.search`); !strings.Contains(loc, "offset=100") {
		t.Errorf("the second page's address is %q; want offset=100 in it", loc)
	}

	p.do("filter bus b", chromedp.SetValue(`#meter-filter select[name=bus]`, "b"), chromedp.Click(`#meter-filter button[type=submit]`))
	p.until("bus b's meters", rows+` === 60 && !document.querySelector("#meter-M-a1")`, 10*time.Second)
	if n := js[int](p, `Array.from(document.querySelectorAll("#meters tbody tr[id^=meter-]")).filter(r => !r.id.startsWith("meter-M-b")).length`); n != 0 {
		t.Errorf("filtered by bus b, %d rows are of another bus", n)
	}
	p.do("search M-b12", chromedp.SetValue(`#meter-filter select[name=bus]`, ""), chromedp.SendKeys(`#meter-filter input[name=q]`, "M-b12"),
		chromedp.Click(`#meter-filter button[type=submit]`))
	p.until("the search's one match", rows+` === 1 && !!document.querySelector("#meter-M-b12")`, 10*time.Second)

	// A relay opened by an operator (a machine here) reaches the row by the
	// stream; the marker proves the page was not reloaded.
	js[bool](p, `window.notReloaded = true`)
	if !strings.HasPrefix(p.text(`#meter-M-b12 td.relay`), "Closed") {
		t.Fatalf("M-b12's relay reads %q before the override; want Closed", p.text(`#meter-M-b12 td.relay`))
	}
	if code := call(t, "POST", base+"/api/v1/meters/M-b12/relay", "till-secret", `{"state":"off","reason":"e2e"}`, nil); code != http.StatusOK {
		t.Fatalf("relay override = %d", code)
	}
	p.until("the open relay in the row", `document.querySelector("#meter-M-b12 td.relay").textContent === "Open (power off)"`, 15*time.Second)
	if !js[bool](p, `window.notReloaded === true`) {
		t.Error("the page reloaded to show the relay change; want it live")
	}

	// A phone: 400 px wide. Nothing but the tables' own scrolling may be
	// wider than the screen, and every link of the menu is on it.
	p.do("a 400 px window", chromedp.EmulateViewport(400, 800))
	p.open("/")
	p.do("the dashboard", chromedp.WaitVisible(`#at-risk`))
	if w := js[int](p, `document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("the dashboard is %d px wide in a 400 px window; want no sideways scrolling", w)
	}
	off := js[[]string](p, `Array.from(document.querySelectorAll("header.top nav a, #logout")).filter(a => {
		const r = a.getBoundingClientRect(); return r.width === 0 || r.left < 0 || r.right > window.innerWidth; }).map(a => a.textContent.trim())`)
	if len(off) > 0 {
		t.Errorf("at 400 px these links are off the screen or hidden: %q", off)
	}
	if n := js[int](p, `document.querySelectorAll("header.top nav a").length`); n < 5 {
		t.Errorf("the menu has %d links at 400 px; want every page's", n)
	}
}
