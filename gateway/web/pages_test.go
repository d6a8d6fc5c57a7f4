package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/i18n"
)

// page GETs path with c and returns the status and body.
func (rg *rig) page(t *testing.T, c *http.Client, path string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", rg.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// everyPage is a path of each page, with the parts the fakes know.
var everyPage = []string{"/", "/meters", "/meters/M-101", "/tenants", "/tenants/T-101", "/tenants/T-101/receipts/1",
	"/alarms", "/alarms?state=active", "/events", "/events?kind=reset", "/audit", "/audit?from=2026-11-01&to=bad"}

// messageID matches what a page shows when a message id has no text: the
// id itself ("dash.at_risk").
var messageID = regexp.MustCompile(`>[a-z_]+(\.[a-z0-9_-]+)+<`)

// TestPages_EveryPageInBothLanguages renders every page as an admin in
// English and in Chinese: 200, the language in <html lang>, its words,
// no message id left untranslated, nothing from the internet.
func TestPages_EveryPageInBothLanguages(t *testing.T) {
	rg := newRig(t)
	for _, lang := range []struct{ accept, tag, word string }{
		{"en-GB,en;q=0.9", "en", ">Dashboard</a>"},
		{"zh-CN,zh;q=0.9", "zh-CN", ">总览</a>"},
	} {
		c := client(t)
		for _, p := range everyPage {
			code, body := rg.page(t, c, p, map[string]string{"Authorization": "Bearer admin-secret", "Accept-Language": lang.accept})
			if code != 200 {
				t.Errorf("%s in %s = %d; want 200: %.300s", p, lang.tag, code, body)
				continue
			}
			if !strings.Contains(body, `<html lang="`+lang.tag+`">`) || !strings.Contains(body, lang.word) {
				t.Errorf("%s in %s: no <html lang=%q> or no %q", p, lang.tag, lang.tag, lang.word)
			}
			if m := messageID.FindString(body); m != "" {
				t.Errorf("%s in %s shows the message id %s instead of its words", p, lang.tag, m)
			}
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Errorf("%s loads something from the internet", p)
			}
		}
	}
}

// TestPages_FormsFollowTheRole: a page offers only what the reader's role
// may do — the server refuses the rest anyway (TestAccess_…), but a
// viewer must not see buttons that fail.
func TestPages_FormsFollowTheRole(t *testing.T) {
	rg := newRig(t)
	forms := map[string]string{"topup": `id="topup"`, "override": `class="override"`, "protect": `id="protect"`, "ack": `class="ack"`, "audit": `href="/audit"`}
	want := map[string]string{
		RoleViewer:   "",
		RoleOperator: "topup override protect ack",
		RoleFinance:  "topup",
		RoleAdmin:    "topup override protect ack audit",
	}
	for role, may := range want {
		c := client(t)
		rg.login(t, c, role, role+"-pw")
		var body string
		for _, p := range []string{"/tenants/T-101", "/alarms", "/meters/M-101"} {
			code, b := rg.page(t, c, p, nil)
			if code != 200 {
				t.Fatalf("%s as %s = %d", p, role, code)
			}
			body += b
		}
		for form, mark := range forms {
			shown := strings.Contains(body, mark)
			if allowed := strings.Contains(" "+may+" ", " "+form+" "); shown != allowed {
				t.Errorf("%s: %s form shown %v; want %v", role, form, shown, allowed)
			}
		}
		// An operator takes cash only: the form offers no other channel.
		if role == RoleOperator && strings.Contains(body, `value="wechat"`) {
			t.Error("the operator's top-up form offers WeChat; an operator records cash only")
		}
		if role == RoleFinance && !strings.Contains(body, `value="wechat"`) {
			t.Error("the finance top-up form lacks WeChat")
		}
	}
}

// TestPages_LanguageSwitchRememberedPerUser: the switch sets a cookie and
// the user's choice; the same user in another browser (no cookie) gets it
// too, whatever that browser asks for; another user does not.
func TestPages_LanguageSwitchRememberedPerUser(t *testing.T) {
	rg := newRig(t)
	en := map[string]string{"Accept-Language": "en"}
	c := client(t)
	csrf := rg.login(t, c, "operator", "operator-pw")
	if _, body := rg.page(t, c, "/", en); !strings.Contains(body, `<html lang="en">`) {
		t.Fatal("the page is not in English for an English browser")
	}
	// Without its CSRF token the switch is refused like any change.
	resp, err := c.PostForm(rg.url+"/lang", url.Values{"lang": {"zh-CN"}, "next": {"/tenants"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /lang without CSRF = %d; want 403", resp.StatusCode)
	}
	resp, err = c.PostForm(rg.url+"/lang", url.Values{"lang": {"zh-CN"}, "next": {"/tenants"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants" {
		t.Fatalf("POST /lang = %d to %q; want 303 back to /tenants", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := rg.page(t, c, "/", en); !strings.Contains(body, `<html lang="zh-CN">`) {
		t.Error("after the switch the page is not in Chinese")
	}
	other := client(t)
	rg.login(t, other, "operator", "operator-pw")
	if _, body := rg.page(t, other, "/", en); !strings.Contains(body, `<html lang="zh-CN">`) {
		t.Error("the user's choice is not remembered in another browser")
	}
	// The user's choice outranks a cookie another user of the browser
	// left: the viewer's English cookie does not change the operator's.
	shared := client(t)
	shared.Jar.SetCookies(mustURL(t, rg.url), []*http.Cookie{{Name: i18n.CookieName, Value: "en", Path: "/"}})
	rg.login(t, shared, "operator", "operator-pw")
	if _, body := rg.page(t, shared, "/", en); !strings.Contains(body, `<html lang="zh-CN">`) {
		t.Error("a cookie of English outranks the operator's own choice")
	}
	viewer := client(t)
	rg.login(t, viewer, "viewer", "viewer-pw")
	if _, body := rg.page(t, viewer, "/", en); !strings.Contains(body, `<html lang="en">`) {
		t.Error("another user got the operator's language")
	}
	bad, err := c.PostForm(rg.url+"/lang", url.Values{"lang": {"fr"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /lang fr = %d; want 400", bad.StatusCode)
	}
	// The login page switches by a link, before anyone is logged in.
	anon := client(t)
	if _, body := rg.page(t, anon, "/login?lang=zh-CN", en); !strings.Contains(body, `<html lang="zh-CN">`) || !strings.Contains(body, "密码") {
		t.Error("the login page's language link does not switch it")
	}
	if _, body := rg.page(t, anon, "/login", en); !strings.Contains(body, `<html lang="zh-CN">`) {
		t.Error("the login page's choice is not remembered")
	}
}

// TestPages_Receipt: a top-up's receipt names its number, amount,
// operator and time in the site's zone; an entry that is not a top-up of
// this tenant has none.
func TestPages_Receipt(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	hdr := map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": "en"}
	code, body := rg.page(t, c, "/tenants/T-101/receipts/1", hdr)
	if code != 200 {
		t.Fatalf("receipt = %d", code)
	}
	for _, want := range []string{"R00000001", "¥100.00", "¥110.00", "user:operator", "PAY-1", "Cash", "2026-12-01 08:00:00"} {
		if !strings.Contains(body, want) {
			t.Errorf("the receipt lacks %q", want)
		}
	}
	for _, p := range []string{"/tenants/T-101/receipts/2", "/tenants/T-999/receipts/1", "/tenants/T-101/receipts/x"} {
		if code, _ := rg.page(t, c, p, hdr); code != 404 {
			t.Errorf("%s = %d; want 404", p, code)
		}
	}
}

// TestPages_WordsForCodes: every quantity a meter page names has its
// words in both languages.
func TestPages_WordsForCodes(t *testing.T) {
	for _, q := range append(liveQuantities, energyQuantities...) {
		for _, l := range i18n.Langs() {
			if !i18n.Has(l, "quantity."+q) {
				t.Errorf("quantity %s has no words in %s", q, l)
			}
		}
	}
	if err := checkPageTemplates(); err != nil {
		t.Error(err)
	}
}

// oddLedger is fakeLedger with a tenant whose id holds characters that
// mean something in a URL.
type oddLedger struct{ fakeLedger }

const oddTenant = "A#3/x?y"

func (l oddLedger) Accounts() ([]AccountView, error) {
	return []AccountView{{Tenant: oddTenant, Balance: "1.00", Accrued: "0.00", State: "cut_off"}}, nil
}

// brokenAlarms cannot read its alarms.
type brokenAlarms struct{ fakeAlarms }

func (brokenAlarms) List(string, int) ([]AlarmView, error) { return nil, errors.New("disk on fire") }

// TestPages_IDsInLinksAndProblemsShown: an id is one path segment of a
// link, whatever it holds; a list that cannot be read is said to be, not
// shown empty; a meter without a relay the gateway drives has no relay
// form.
func TestPages_IDsInLinksAndProblemsShown(t *testing.T) {
	rg := newRig(t, func(o *Options) {
		o.Ledger = oddLedger{fakeLedger{&changes{}}}
		o.Alarms = brokenAlarms{}
	})
	c := client(t)
	admin := map[string]string{"Authorization": "Bearer admin-secret", "Accept-Language": "en"}
	_, body := rg.page(t, c, "/", admin)
	if want := `href="/tenants/A%233%2Fx%3Fy"`; !strings.Contains(body, want) {
		t.Errorf("the dashboard's link to tenant %q is not %s", oddTenant, want)
	}
	// (The catalog is in the page for its script: look at the table rows.)
	if !strings.Contains(body, `<tr class="problem"><td colspan="7" class="bad" role="alert">Could not be read`) ||
		strings.Contains(body, `<td colspan="7">No open alarm.`) {
		t.Error("the dashboard shows no alarm where it could not read them")
	}
	_, body = rg.page(t, c, "/meters/P-N01", admin)
	if strings.Contains(body, `class="override"`) || strings.Contains(body, `id="relay"`) {
		t.Error("a meter without a relay the gateway drives has a relay form")
	}
	_, body = rg.page(t, c, "/meters/M-101", admin)
	if !strings.Contains(body, `class="override"`) || !strings.Contains(body, "Automatic: the account may draw power") {
		t.Error("a tenant meter's page lacks its relay form or the reason of its state")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPages_NotCompressed: the pages and the session carry the CSRF
// token, so they are never compressed (a compressed secret beside text an
// attacker chooses leaks by its size: BREACH); the API is.
func TestPages_NotCompressed(t *testing.T) {
	rg := newRig(t)
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tt := range []struct {
		path       string
		compressed bool
	}{{"/", false}, {"/tenants/T-101", false}, {"/api/v1/session", false}, {"/static/app.js", true}} {
		req, _ := http.NewRequest("GET", rg.url+tt.path, nil)
		req.Header.Set("Authorization", "Bearer admin-secret")
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tt.compressed {
			t.Errorf("%s: compressed %v; want %v", tt.path, got, tt.compressed)
		}
	}
}

// pagedEvents holds n events, one a minute from 2026-11-01 08:00 site
// time; every third a reset of M-101, the others warnings of T-101.
type pagedEvents struct {
	fakeEvents
	evs []EventView // oldest first
}

func newPagedEvents(n int) pagedEvents {
	var p pagedEvents
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	for i := range n {
		e := EventView{ID: uint64(i + 1), Time: at.Add(time.Duration(i) * time.Minute), Kind: "warning_1", Tenant: "T-101", Text: "low"}
		if i%3 == 0 {
			e.Kind, e.Tenant, e.Meter, e.Text = "reset", "", "M-101", "reset"
		}
		p.evs = append(p.evs, e)
	}
	return p
}

func (p pagedEvents) EachBefore(id uint64, fn func(EventView) bool) error {
	for i := len(p.evs) - 1; i >= 0; i-- {
		if id != 0 && p.evs[i].ID >= id {
			continue
		}
		if !fn(p.evs[i]) {
			return nil
		}
	}
	return nil
}

// TestPages_EventsFilteredAndPaged: the events page shows the newest 200
// matches and links to the older ones; kind, meter and dates filter.
func TestPages_EventsFilteredAndPaged(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	rg := newRig(t, func(o *Options) { o.Events = newPagedEvents(3000); o.Location = shanghai })
	c := client(t)
	hdr := map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": "en"}
	rows := func(body string) int { return strings.Count(body, `<tr><td class="t">`) }
	_, body := rg.page(t, c, "/events", hdr)
	if rows(body) != 200 || !strings.Contains(body, "before=2801") || !strings.Contains(body, `data-live="1"`) {
		t.Errorf("first page: %d rows, older link %v, live %v; want 200, before=2801, live", rows(body),
			strings.Contains(body, "before=2801"), strings.Contains(body, `data-live="1"`))
	}
	_, body = rg.page(t, c, "/events?before=2801", hdr)
	if rows(body) != 200 || !strings.Contains(body, "before=2601") || strings.Contains(body, `data-live="1"`) {
		t.Errorf("second page: %d rows; want 200 and a link before 2601, not live", rows(body))
	}
	// 1,000 resets among 3,000 events; of them, those of the 1st of
	// November in the site's zone (08:00 to midnight: 960 minutes, 320).
	_, body = rg.page(t, c, "/events?kind=reset&meter=m-101&from=2026-11-01&to=2026-11-01", hdr)
	if rows(body) != 200 || strings.Contains(body, `<td class="kind">Warning 1</td>`) || !strings.Contains(body, "before=") {
		t.Errorf("resets of the 1st: %d rows; want a page of 200 resets only", rows(body))
	}
	_, body = rg.page(t, c, "/events?kind=reset&from=2026-11-01&to=2026-11-01&before=400", hdr)
	// Below id 400, all on the 1st: resets 1, 4, … 397.
	if rows(body) != 133 || strings.Contains(body, `id="older"`) {
		t.Errorf("older resets of the 1st: %d rows; want the last 133 and no older link", rows(body))
	}
	// The 2nd of November holds ids 961…2400: 1,440 events, none before.
	_, body = rg.page(t, c, "/events?from=2026-11-02&to=2026-11-02&before=1200", hdr)
	if rows(body) != 200 || !strings.Contains(body, "before=1000") {
		t.Errorf("the 2nd below 1200: %d rows; want 200 and more below 1000", rows(body))
	}
	_, body = rg.page(t, c, "/events?from=2026-11-02&to=2026-11-02&before=1000", hdr)
	if rows(body) != 39 || strings.Contains(body, `id="older"`) {
		t.Errorf("the 2nd below 1000: %d rows; want 961…999, 39, and no older link", rows(body))
	}
}

// TestPages_AlarmsFiltered: the alarms page filters by kind and by the
// meter, tenant or bus an alarm is about.
func TestPages_AlarmsFiltered(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	hdr := map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": "en"}
	for q, want := range map[string]bool{"": true, "?kind=meter_offline": true, "?kind=bus_down": false,
		"?where=m-101": true, "?where=M-999": false, "?state=active&where=M-101": true} {
		_, body := rg.page(t, c, "/alarms"+q, hdr)
		if got := strings.Contains(body, `id="alarm-1"`); got != want {
			t.Errorf("/alarms%s lists alarm 1: %v; want %v", q, got, want)
		}
	}
}

// TestPages_WordsScript: each language's catalog is a public, cacheable,
// compressed script; the pages load it instead of carrying it.
func TestPages_WordsScript(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	code, body := rg.page(t, c, "/words/zh-CN.js", nil)
	if code != 200 || !strings.HasPrefix(body, "window.mallgridWords = {") || !strings.Contains(body, `"nav.dashboard":"总览"`) {
		t.Errorf("GET /words/zh-CN.js = %d %.80q; want the Chinese catalog as a script", code, body)
	}
	for _, p := range []string{"/words/fr.js", "/words/zh-CN", "/words/ZH-cn.js"} {
		if code, _ := rg.page(t, c, p, nil); code != 404 {
			t.Errorf("GET %s = %d; want 404", p, code)
		}
	}
	_, page := rg.page(t, c, "/", map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": "zh-CN"})
	if !strings.Contains(page, `<script src="/words/zh-CN.js?v=`) || strings.Contains(page, `"nav.dashboard"`) {
		t.Error("the page does not load its words' script, or carries the catalog itself")
	}
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, _ := http.NewRequest("GET", rg.url+"/words/en.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "public") {
		t.Errorf("/words/en.js: encoding %q, cache %q; want gzip and public", resp.Header.Get("Content-Encoding"), resp.Header.Get("Cache-Control"))
	}
}

// pagedAlarms holds n alarms, newest last: every other one an overload of
// M-101, the rest meter_offline of M-102; those below id 100 cleared.
type pagedAlarms struct {
	fakeAlarms
	list []AlarmView
}

func newPagedAlarms(n int) pagedAlarms {
	var p pagedAlarms
	for i := 1; i <= n; i++ {
		a := AlarmView{ID: uint64(i), Kind: "overload", Severity: "critical", State: AlarmActive, Meter: "M-101"}
		if i%2 == 0 {
			a.Kind, a.Meter, a.Severity = "meter_offline", "M-102", "warning"
		}
		if i < 100 {
			a.State = AlarmCleared
		}
		p.list = append(p.list, a)
	}
	return p
}

func (p pagedAlarms) EachAlarmBefore(id uint64, fn func(AlarmView) bool) error {
	for i := len(p.list) - 1; i >= 0; i-- {
		if id != 0 && p.list[i].ID >= id {
			continue
		}
		if !fn(p.list[i]) {
			return nil
		}
	}
	return nil
}

func (p pagedAlarms) Kinds() []string { return []string{"meter_offline", "overload"} }

// TestPages_AlarmsPaged: the alarms page reads back through every alarm
// with its filters, 200 a page, linking to the older ones.
func TestPages_AlarmsPaged(t *testing.T) {
	rg := newRig(t, func(o *Options) { o.Alarms = newPagedAlarms(1000) })
	c := client(t)
	hdr := map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": "en"}
	rows := func(body string) int { return strings.Count(body, `<tr id="alarm-`) }
	_, body := rg.page(t, c, "/alarms", hdr)
	if rows(body) != 200 || !strings.Contains(body, "before=801") {
		t.Errorf("first page: %d rows; want 200 and a link before 801", rows(body))
	}
	// Overloads of M-101 that are cleared: odd ids below 100, 50 of them.
	_, body = rg.page(t, c, "/alarms?state=cleared&kind=overload&where=m-101", hdr)
	if rows(body) != 50 || strings.Contains(body, `id="older"`) || !strings.Contains(body, `id="alarm-99"`) {
		t.Errorf("cleared overloads of M-101: %d rows; want 50 (1, 3 … 99) and no older link", rows(body))
	}
	_, body = rg.page(t, c, "/alarms?kind=meter_offline&before=11", hdr)
	if rows(body) != 5 || !strings.Contains(body, `id="alarm-10"`) || strings.Contains(body, `id="alarm-11"`) {
		t.Errorf("meter_offline below 11: %d rows; want 10, 8, 6, 4, 2", rows(body))
	}
}
