package web

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

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
		{"en-GB,en;q=0.9", "en", "Dashboard"},
		{"zh-CN,zh;q=0.9", "zh-CN", "总览"},
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
