package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
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
		{"?tenant=T-999", `tenant \"T-999\": not found`, 404},
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
