package paycode

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

var testQR = config.UplinkQR{URL: "https://pay.example.com/mall/{site}/shop/{tenant}?k={key}&s={sig}", KeyID: "q1",
	Secret: "mallgrid-qr-test-secret-0123456789abcdef"}

var testTenants = []config.Tenant{{ID: "B1-07", Name: "茶馆 Tea House"}, {ID: "B1/08", Name: "Books & More"}}

// status is the little the web server asks of the gateway for a page.
type status struct{}

func (status) Status() web.StatusView {
	return web.StatusView{Site: "Riverside Plaza", Timezone: "Asia/Shanghai"}
}
func (status) Meters() []web.MeterView { return nil }

// server serves the stickers through the real web server, with an admin
// token and a viewer token.
func server(t *testing.T) string {
	t.Helper()
	svc, err := NewService("滨江广场 Riverside Plaza", "riverside-plaza", testQR, testTenants)
	if err != nil {
		t.Fatal(err)
	}
	tok := func(name, role string) web.Token {
		sum := sha256.Sum256([]byte(role + "-secret"))
		return web.Token{Name: name, Role: role, SHA256: hex.EncodeToString(sum[:])}
	}
	s, err := web.New(status{}, web.Options{Paycodes: svc, Listen: "127.0.0.1:0",
		Tokens: []web.Token{tok("desk", web.RoleAdmin), tok("screen", web.RoleViewer)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, base, path, role string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+role+"-secret")
	resp, err := (&http.Client{Timeout: 10 * 1e9}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// A tenant's PNG, fetched from the server, decodes to its signed link,
// whose signature the payment page accepts for that tenant only.
func TestService_CodeOverHTTP(t *testing.T) {
	base := server(t)
	code, h, body := get(t, base, "/api/v1/accounts/B1%2F08/paycode.png", web.RoleAdmin)
	if code != 200 || h.Get("Content-Type") != "image/png" {
		t.Fatalf("PNG = %d %s: %.200s", code, h.Get("Content-Type"), body)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	link, _ := decode(t, img)
	want := "https://pay.example.com/mall/riverside-plaza/shop/B1%2F08?k=q1&s=" + Sig([]byte(testQR.Secret), "riverside-plaza", "B1/08")
	if link != want {
		t.Fatalf("PNG holds %q; want %q", link, want)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	tenant, _ := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/mall/riverside-plaza/shop/"))
	sig := u.Query().Get("s")
	if tenant != "B1/08" || !Verify([]byte(testQR.Secret), "riverside-plaza", tenant, sig) || Verify([]byte(testQR.Secret), "riverside-plaza", "B1-07", sig) {
		t.Errorf("the link's tenant %q and signature %q do not verify as B1/08's alone", tenant, sig)
	}
	if code, _, body := get(t, base, "/api/v1/accounts/B1-07/paycode.svg", web.RoleAdmin); code != 200 || !bytes.HasPrefix(body, []byte("<svg")) {
		t.Errorf("SVG = %d %.80s", code, body)
	}
	for _, tc := range []struct {
		path, role string
		code       int
	}{
		{"/api/v1/accounts/B1-99/paycode.png", web.RoleAdmin, 404},
		{"/api/v1/accounts/B1-07/paycode.png", web.RoleViewer, 403},
		{"/api/v1/paycodes/sheet?format=pdf", web.RoleViewer, 403},
		{"/api/v1/paycodes/sheet?format=pdf&tenant=B1-99", web.RoleAdmin, 400},
		{"/api/v1/paycodes/sheet?format=pdf&tenant=B1-07&tenant=B1-07&tenant=B1-07", web.RoleAdmin, 400},
		{"/api/v1/paycodes/sheet?format=png", web.RoleAdmin, 400},
	} {
		if code, _, body := get(t, base, tc.path, tc.role); code != tc.code || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("%s as %s = %d %.120s; want %d with a reason", tc.path, tc.role, code, body, tc.code)
		}
	}
}

// The sheets over HTTP: the SVG holds each asked tenant's code, in the
// order asked; the PDF is a PDF with the Chinese font embedded.
func TestService_SheetOverHTTP(t *testing.T) {
	base := server(t)
	code, h, body := get(t, base, "/api/v1/paycodes/sheet?format=svg&tenant=B1%2F08&tenant=B1-07", web.RoleAdmin)
	if code != 200 || h.Get("Content-Type") != "image/svg+xml" || h.Get("Content-Disposition") != `attachment; filename="qr-stickers.svg"` {
		t.Fatalf("SVG sheet = %d %s %s", code, h.Get("Content-Type"), h.Get("Content-Disposition"))
	}
	groups := svgGroup.FindAllStringSubmatch(string(body), -1)
	codes := svgCode.FindAllStringSubmatch(string(body), -1)
	if len(groups) != 2 || groups[0][1] != "B1/08" || groups[1][1] != "B1-07" || len(codes) != 2 {
		t.Fatalf("SVG sheet's stickers %v; want B1/08 then B1-07", groups)
	}
	c, err := Encode("https://pay.example.com/mall/riverside-plaza/shop/B1-07?k=q1&s=e301a2Nr1a8fNtHTsEvqhw")
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := decode(t, parsePath(t, codes[1][4], c.Size()+2*QuietZone).image(4)); text != c.Text() {
		t.Errorf("B1-07's sticker decodes to %q; want docs/QR.md's link %q", text, c.Text())
	}
	code, h, body = get(t, base, "/api/v1/paycodes/sheet", web.RoleAdmin)
	if code != 200 || h.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(body, []byte("%PDF-")) || !bytes.Contains(body, []byte("FontFile2")) {
		t.Errorf("PDF sheet = %d %s %.20q; want a PDF with the embedded font", code, h.Get("Content-Type"), body)
	}
	code, _, body = get(t, base, "/paycodes?q=tea", web.RoleAdmin)
	if code != 200 || !bytes.Contains(body, []byte(`data-tenant="B1-07"`)) || bytes.Contains(body, []byte(`data-tenant="B1/08"`)) {
		t.Errorf("GET /paycodes?q=tea = %d; want B1-07 listed alone", code)
	}
}

// Sheet draws each tenant once however often it is named, and refuses
// names of no tenant (all of them named) as a bad request before drawing.
func TestService_Sheet_Tenants(t *testing.T) {
	svc, err := NewService("Riverside Plaza", "riverside-plaza", testQR, testTenants)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := svc.Sheet([]string{"B1/08", "B1-07", "B1/08", "B1-07", "B1/08"}, "svg")
	if err != nil {
		t.Fatal(err)
	}
	if groups := svgGroup.FindAllStringSubmatch(string(doc.Body), -1); len(groups) != 2 || groups[0][1] != "B1/08" || groups[1][1] != "B1-07" {
		t.Errorf("sheet of B1/08, B1-07 named five times: %d stickers; want B1/08 then B1-07 once each", len(groups))
	}
	_, err = svc.Sheet([]string{"B1-07", "X-1", "X-2", "X-1"}, "pdf")
	if !errors.Is(err, web.ErrInvalid) || !errors.Is(err, ErrUnknownTenant) || !strings.Contains(err.Error(), `"X-1", "X-2"`) {
		t.Errorf("sheet with unknown tenants: %v; want ErrUnknownTenant, ErrInvalid naming X-1 and X-2", err)
	}
}
