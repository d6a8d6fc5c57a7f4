package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"mallgrid/gateway/config"
	"mallgrid/gateway/paycode"
)

// qrSecret is the test mall's sticker secret: not docs/QR.md's, which
// the configuration refuses as published.
const qrSecret = "gateway-test-qr-secret-0123456789abcdef"

// qrYAML configures the stickers of a test mall (the secret in the file:
// a warning, which the test mall's parse allows).
const qrYAML = "uplink:\n  site_id: test-mall\n  qr:\n    url: 'https://pay.example.com/m/{site}/t/{tenant}?k={key}&s={sig}'\n" +
	"    secret: '" + qrSecret + "'\n"

// withAdminToken gives mall an admin token, "desk-secret".
func withAdminToken(mall *testMall) *testMall {
	sum := sha256.Sum256([]byte("desk-secret"))
	mall.cfg.HTTP.Tokens = append(mall.cfg.HTTP.Tokens, config.Token{Name: "desk", Role: config.RoleAdmin, SHA256: hex.EncodeToString(sum[:])})
	return mall
}

// getStatus GETs url with token (fetch): its status and body.
func getStatus(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	resp, body := fetch(t, url, token)
	return resp.StatusCode, body
}

// The running gateway serves the stickers of uplink.qr to the admin: a
// tenant's code is the code of its signed link; a viewer is refused.
func TestPaycodes_Served(t *testing.T) {
	t.Parallel()
	mall := withAdminToken(newTestMall(t, 1, qrYAML))
	base, _ := mall.start(t)
	code, body := getStatus(t, base+"/api/v1/accounts/T-a1/paycode.png", "desk-secret")
	sig := paycode.Sig([]byte(qrSecret), "test-mall", "T-a1")
	c, err := paycode.Encode("https://pay.example.com/m/test-mall/t/T-a1?k=q1&s=" + sig)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := c.PNG(&want); err != nil {
		t.Fatal(err)
	}
	if code != 200 || !bytes.Equal(body, want.Bytes()) {
		t.Errorf("T-a1's code = %d, %d bytes; want 200 and the code of its signed link", code, len(body))
	}
	if code, body := getStatus(t, base+"/paycodes", "desk-secret"); code != 200 || !bytes.Contains(body, []byte(`data-tenant="T-b1"`)) {
		t.Errorf("GET /paycodes = %d; want the page listing T-b1", code)
	}
	if code, _ := getStatus(t, base+"/api/v1/paycodes/sheet?format=svg", "screen-secret"); code != http.StatusForbidden {
		t.Errorf("the sheet as a viewer = %d; want 403", code)
	}
}

// Without uplink.qr there is no sticker page and no sticker endpoint.
func TestPaycodes_NotConfigured(t *testing.T) {
	t.Parallel()
	mall := withAdminToken(newTestMall(t, 1))
	base, _ := mall.start(t)
	for _, p := range []string{"/paycodes", "/api/v1/paycodes/sheet", "/api/v1/accounts/T-a1/paycode.png"} {
		if code, _ := getStatus(t, base+p, "desk-secret"); code != http.StatusNotFound {
			t.Errorf("GET %s without uplink.qr = %d; want 404", p, code)
		}
	}
}
