package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A viewer reads deliveries with the phone and e-mail masked; an operator
// reads them whole. A bad state or limit is 400 with a reason.
func TestAPINotifications_MaskedForViewers(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	for _, tc := range []struct{ role, phone, email, lastError string }{
		{RoleViewer, "***0101", "l***@noodle.example", "busy: ***0101 and l***@noodle.example refused"},
		{RoleOperator, "+86 138 0000 0101", "liwei@noodle.example", "busy: +86 138 0000 0101 and liwei@noodle.example refused"},
	} {
		var list []NotificationView
		code := rg.do(t, c, "GET", "/api/v1/notifications?state=dead", "", map[string]string{"Authorization": "Bearer " + tc.role + "-secret"}, &list)
		if code != 200 || len(list) != 1 {
			t.Fatalf("as %s: %d %+v", tc.role, code, list)
		}
		if list[0].Phone != tc.phone || list[0].Email != tc.email || list[0].LastError != tc.lastError {
			t.Errorf("as %s: phone %q email %q error %q; want %q %q %q", tc.role, list[0].Phone, list[0].Email, list[0].LastError,
				tc.phone, tc.email, tc.lastError)
		}
	}
	// ?before= pages: the next page starts below the last seq read.
	var page []NotificationView
	if code := rg.do(t, c, "GET", "/api/v1/notifications?state=delivered&before=501&limit=3", "", map[string]string{"Authorization": "Bearer viewer-secret"}, &page); code != 200 ||
		len(page) != 3 || page[0].Seq != 500 || page[2].Seq != 498 {
		t.Errorf("page before 501 = %d %+v; want seqs 500..498", code, page)
	}
	for _, q := range []string{"?state=sent", "?limit=0", "?limit=x", "?before=0", "?before=-1", "?before=x"} {
		var e map[string]string
		if code := rg.do(t, c, "GET", "/api/v1/notifications"+q, "", map[string]string{"Authorization": "Bearer viewer-secret"}, &e); code != 400 || e["error"] == "" {
			t.Errorf("GET %s = %d %v; want 400 with a reason", q, code, e)
		}
	}
}

// The page lists deliveries with their state and error; the resend button
// is an operator's, and a viewer's page shows the masked address only.
func TestNotificationsPage(t *testing.T) {
	rg := newRig(t)
	get := func(role string) string {
		req, _ := http.NewRequest("GET", rg.url+"/notifications", nil)
		req.Header.Set("Authorization", "Bearer "+role+"-secret")
		req.Header.Set("Accept-Language", "en")
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /notifications as %s = %d", role, resp.StatusCode)
		}
		return string(b)
	}
	op := get(RoleOperator)
	for _, want := range []string{`id="notification-7-0-sms-t0"`, "Given up", "busy", `class="resend" data-delivery="7-0-sms-t0"`, "138 0000 0101"} {
		if !strings.Contains(op, want) {
			t.Errorf("operator's page lacks %q", want)
		}
	}
	viewer := get(RoleViewer)
	if strings.Contains(viewer, `class="resend"`) || strings.Contains(viewer, "0000 0101") || strings.Contains(viewer, "liwei@") || !strings.Contains(viewer, "***0101") {
		t.Errorf("viewer's page: a resend button or the whole number or address shown")
	}
}

// The page shows 200 a page with a link to the older ones.
func TestNotificationsPage_Older(t *testing.T) {
	rg := newRig(t)
	page := func(q string) string {
		req, _ := http.NewRequest("GET", rg.url+"/notifications"+q, nil)
		req.Header.Set("Authorization", "Bearer viewer-secret")
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	first := page("?state=delivered")
	if n := strings.Count(first, `class="notify-delivered"`); n != 200 || !strings.Contains(first, `href="/notifications?state=delivered&amp;before=801"`) {
		t.Errorf("first page: %d rows; want 200 and a link to those before 801", n)
	}
	last := page("?state=delivered&before=101")
	if n := strings.Count(last, `class="notify-delivered"`); n != 100 || strings.Contains(last, `id="older"`) {
		t.Errorf("last page: %d rows; want 100 and no link on", n)
	}
}

func TestMaskAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"isv.MOBILE_NUMBER_ILLEGAL: 13800000101", "isv.MOBILE_NUMBER_ILLEGAL: ***0101"},
		{"550 5.1.1 <duty@plaza.example>: no such user", "550 5.1.1 <d***@plaza.example>: no such user"},
		{"+86-138-0000-0101 busy", "***0101 busy"},
		{"HTTP 503 after 15s, attempt 3", "HTTP 503 after 15s, attempt 3"},
		{"x509: certificate expired 2024-06-01T10:00:00+08:00", "x509: certificate expired 2024-06-01T10:00:00+08:00"},
		{"delivery 0123456789ab-1234567-0-ops-s0 refused", "delivery 0123456789ab-1234567-0-ops-s0 refused"},
		{"RequestId 12345678-1234-1234-1234-123456789abc", "RequestId 12345678-1234-1234-1234-123456789abc"},
		{"number 138.0013.8000 invalid.", "number ***8000 invalid."},
		{"call 13800000101.", "call ***0101."},
	} {
		if got := maskAddresses(tc.in); got != tc.want {
			t.Errorf("maskAddresses(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{{"+86 138 0000 0101", "***0101"}, {"12", "***"}, {"", ""}} {
		if got := maskPhone(tc.in); got != tc.want {
			t.Errorf("maskPhone(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{{"duty@plaza.example", "d***@plaza.example"}, {"nobody", "***"}, {"", ""}} {
		if got := maskEmail(tc.in); got != tc.want {
			t.Errorf("maskEmail(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
