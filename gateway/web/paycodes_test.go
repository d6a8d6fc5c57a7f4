package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakePaycodes has tenants T-101 and T-102; a code or sheet is a
// document naming what was asked for.
type fakePaycodes struct{}

func (fakePaycodes) Tenants() []PaycodeTenant {
	return []PaycodeTenant{{ID: "T-101", Name: "Tea House", Link: "https://pay.example/m/s/T-101?k=q1&s=x"},
		{ID: "T-102", Name: "书店 Books", Link: "https://pay.example/m/s/T-102?k=q1&s=y"}}
}

func (fakePaycodes) Code(tenant, format string) (Document, error) {
	if tenant != "T-101" && tenant != "T-102" {
		return Document{}, fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
	}
	return Document{Body: []byte(format + " " + tenant), ContentType: "image/" + format, Filename: "qr-" + tenant + "." + format}, nil
}

func (fakePaycodes) Sheet(tenants []string, format string) (Document, error) {
	for _, t := range tenants {
		if t != "T-101" && t != "T-102" {
			return Document{}, fmt.Errorf("tenant %q: %w", t, ErrNotFound)
		}
	}
	return Document{Body: []byte(format + " " + strings.Join(tenants, ",")), ContentType: "application/" + format, Filename: "qr-stickers." + format}, nil
}

// get fetches path as the admin (token) and returns the status, the
// content type and the body.
func (rg *rig) adminGet(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", rg.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer admin-secret")
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header, b.String()
}

// The sheet: the tenants asked for, in order, as an attachment; a bad
// request is a 400 with a reason, an unknown tenant a 404.
func TestPaycodes_Sheet(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		query, body string
		code        int
	}{
		{"?format=pdf&tenant=T-102&tenant=T-101", "pdf T-102,T-101", 200},
		{"?format=svg", "svg ", 200},
		{"", "pdf ", 200},
		{"?format=png", `format \"png\": want pdf or svg`, 400},
		{"?format=pdf&format=svg", "given more than once", 400},
		{"?tenants=T-101", `unknown parameter \"tenants\"`, 400},
		{"?tenant=T-999&tenant=T-998", `unknown tenants \"T-999\", \"T-998\"`, 400},
		{"?tenant=T-101&tenant=T-998", `unknown tenants \"T-998\"`, 400},
		// Each tenant once.
		{"?tenant=T-102&tenant=T-102", "pdf T-102", 200},
		{"?tenant=T-101&tenant=T-101&tenant=T-101", "3 tenants asked for; there are 2", 400},
		// A malformed query is refused, not read as far as it parses.
		{"?format=svg&tenant=T-101;tenant=T-102", "bad query string", 400},
		{"?format=svg&tenant=%zz", "bad query string", 400},
	}
	for _, tc := range cases {
		code, h, body := rg.adminGet(t, "/api/v1/paycodes/sheet"+tc.query)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("sheet%s = %d %q; want %d with %q", tc.query, code, body, tc.code, tc.body)
		}
		if code == 200 && !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") {
			t.Errorf("sheet%s: Content-Disposition %q; want an attachment", tc.query, h.Get("Content-Disposition"))
		}
	}
}

// 9,999 × the same tenant is refused before anything is drawn: the
// fake's Sheet is never called.
func TestPaycodes_Sheet_ManyTenants(t *testing.T) {
	pc := &slowPaycodes{started: make(chan []string, 1), release: make(chan struct{})}
	close(pc.release)
	rg := newRig(t, func(o *Options) { o.Paycodes = pc })
	code, _, body := rg.adminGet(t, "/api/v1/paycodes/sheet?format=pdf"+strings.Repeat("&tenant=T-101", 9999))
	if code != 400 || !strings.Contains(body, "9999 tenants asked for; there are 2") {
		t.Errorf("9,999 tenants = %d %.200q; want 400 naming the count", code, body)
	}
	select {
	case got := <-pc.started:
		t.Errorf("the sheet was drawn for %d tenants", len(got))
	default:
	}
}

// slowPaycodes is fakePaycodes whose Sheet says it started and then waits
// for release.
type slowPaycodes struct {
	fakePaycodes
	started chan []string
	release chan struct{}
}

func (p *slowPaycodes) Sheet(tenants []string, format string) (Document, error) {
	p.started <- tenants
	<-p.release
	return p.fakePaycodes.Sheet(tenants, format)
}

// One sheet is drawn at a time: while one is, another request is answered
// at once with 503 and Retry-After, and once it is done the next is drawn.
func TestPaycodes_Sheet_OneAtATime(t *testing.T) {
	pc := &slowPaycodes{started: make(chan []string, 2), release: make(chan struct{})}
	rg := newRig(t, func(o *Options) { o.Paycodes = pc })
	first := make(chan int, 1)
	go func() {
		code, _, _ := rg.adminGet(t, "/api/v1/paycodes/sheet?format=svg&tenant=T-101")
		first <- code
	}()
	select {
	case <-pc.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first sheet was never drawn")
	}
	second := make(chan [2]string, 1)
	go func() {
		code, h, body := rg.adminGet(t, "/api/v1/paycodes/sheet?format=pdf&tenant=T-102")
		second <- [2]string{fmt.Sprint(code, " ", h.Get("Retry-After")), body}
	}()
	select {
	case got := <-second:
		if got[0] != "503 "+pdfRetryAfter || !strings.Contains(got[1], "another sticker sheet is being drawn") {
			t.Errorf("a second sheet while one is drawn = %s %q; want 503 with Retry-After %s", got[0], got[1], pdfRetryAfter)
		}
	case <-time.After(2 * time.Second):
		t.Error("a second sheet while one is drawn waited; want 503 at once")
		close(pc.release)
		<-first
		return
	}
	close(pc.release)
	if code := <-first; code != 200 {
		t.Errorf("the first sheet = %d; want 200", code)
	}
	if code, _, body := rg.adminGet(t, "/api/v1/paycodes/sheet?format=svg&tenant=T-102"); code != 200 || body != "svg T-102" {
		t.Errorf("a sheet after the first = %d %q; want it drawn", code, body)
	}
}

func TestPaycodes_Code(t *testing.T) {
	rg := newRig(t)
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/api/v1/accounts/T-101/paycode.png", "png T-101", 200},
		{"/api/v1/accounts/T-102/paycode.svg", "svg T-102", 200},
		{"/api/v1/accounts/T-9/paycode.svg", "not found", 404},
		{"/api/v1/accounts/T-101/paycode.gif", "", 404},
	} {
		code, h, body := rg.adminGet(t, tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s = %d %q; want %d with %q", tc.path, code, body, tc.code, tc.body)
		}
		if code == 200 && h.Get("Content-Type") != "image/"+tc.path[len(tc.path)-3:] {
			t.Errorf("%s: Content-Type %q", tc.path, h.Get("Content-Type"))
		}
	}
}

// The page lists the tenants the filter matches with their previews, and
// its download buttons ask for exactly those tenants' sheet; the menu
// shows it to the admin only.
func TestPaycodes_Page(t *testing.T) {
	rg := newRig(t)
	code, _, body := rg.adminGet(t, "/paycodes?q=book")
	if code != 200 {
		t.Fatalf("GET /paycodes = %d", code)
	}
	for _, want := range []string{`data-tenant="T-102"`, `src="/api/v1/accounts/T-102/paycode.svg"`,
		`href="/api/v1/paycodes/sheet?format=pdf&amp;tenant=T-102"`, `href="/api/v1/paycodes/sheet?format=svg&amp;tenant=T-102"`,
		`<a href="/paycodes" class="here">`, "1 of 2 tenants"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /paycodes?q=book lacks %s", want)
		}
	}
	if strings.Contains(body, `data-tenant="T-101"`) || strings.Contains(body, "<script>") {
		t.Errorf("GET /paycodes?q=book lists T-101 or has an inline script")
	}
	_, _, all := rg.adminGet(t, "/paycodes")
	if !strings.Contains(all, `href="/api/v1/paycodes/sheet?format=pdf"`) || !strings.Contains(all, `data-tenant="T-101"`) {
		t.Errorf("GET /paycodes without a filter: want every tenant and the whole sheet")
	}
	c := client(t)
	rg.login(t, c, RoleFinance, RoleFinance+"-pw")
	resp, err := c.Get(rg.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if strings.Contains(b.String(), `href="/paycodes"`) {
		t.Errorf("finance's menu links the sticker page; want it for the admin only")
	}
}

// dotPaycodes has tenants whose ids a path would mangle.
type dotPaycodes struct{ fakePaycodes }

var dotIDs = []string{".", "..", "B1/02", "a b", "50%", "?x", "#1"}

func (dotPaycodes) Tenants() []PaycodeTenant {
	var out []PaycodeTenant
	for _, id := range dotIDs {
		out = append(out, PaycodeTenant{ID: id, Name: "shop " + id, Link: "https://pay.example/?t=" + url.QueryEscape(id)})
	}
	return out
}

func (dotPaycodes) Code(tenant, format string) (Document, error) {
	if !slices.Contains(dotIDs, tenant) {
		return Document{}, fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
	}
	return Document{Body: []byte(format + " " + tenant), ContentType: "image/" + format, Filename: "qr." + format}, nil
}

// Every preview and download link of the page fetches its own tenant's
// code, resolved as a browser resolves it (dot segments removed): a
// tenant "." or ".." is %2E, not a segment the browser drops.
func TestPaycodes_Page_LinksEveryTenant(t *testing.T) {
	rg := newRig(t, func(o *Options) { o.Paycodes = dotPaycodes{} })
	code, _, body := rg.adminGet(t, "/paycodes")
	if code != 200 {
		t.Fatalf("GET /paycodes = %d", code)
	}
	base, err := url.Parse(rg.url + "/paycodes")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?s)<tr data-tenant="([^"]*)">(.*?)</tr>`).FindAllStringSubmatch(body, -1)
	if len(rows) != len(dotIDs) {
		t.Fatalf("the page lists %d tenants; want %d", len(rows), len(dotIDs))
	}
	for i, row := range rows {
		id := dotIDs[i]
		links := regexp.MustCompile(`(?:src|href)="(/api/v1/accounts/[^"]*)"`).FindAllStringSubmatch(row[2], -1)
		if len(links) != 3 {
			t.Errorf("tenant %q: %d code links; want the preview, PNG and SVG", id, len(links))
		}
		for _, l := range links {
			ref, err := url.Parse(html.UnescapeString(l[1]))
			if err != nil {
				t.Fatal(err)
			}
			u := base.ResolveReference(ref)
			format := u.Path[len(u.Path)-3:]
			code, _, got := rg.adminGet(t, u.RequestURI())
			if code != 200 || got != format+" "+id {
				t.Errorf("tenant %q: %s (as a browser asks: %s) = %d %q; want its %s", id, l[1], u.RequestURI(), code, got, format)
			}
		}
	}
}

// A query the page cannot parse is a 400, not read in part.
func TestPaycodes_Page_BadQuery(t *testing.T) {
	rg := newRig(t)
	for _, q := range []string{"?q=%zz", "?q=tea;q=book"} {
		if code, _, body := rg.adminGet(t, "/paycodes"+q); code != 400 || !strings.Contains(body, "bad query string") {
			t.Errorf("GET /paycodes%s = %d %.200q; want 400 with the reason", q, code, body)
		}
	}
}
