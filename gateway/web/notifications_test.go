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
	for _, tc := range []struct{ role, phone, email string }{
		{RoleViewer, "***0101", "l***@noodle.example"},
		{RoleOperator, "+86 138 0000 0101", "liwei@noodle.example"},
	} {
		var list []NotificationView
		code := rg.do(t, c, "GET", "/api/v1/notifications?state=dead", "", map[string]string{"Authorization": "Bearer " + tc.role + "-secret"}, &list)
		if code != 200 || len(list) != 1 {
			t.Fatalf("as %s: %d %+v", tc.role, code, list)
		}
		if list[0].Phone != tc.phone || list[0].Email != tc.email {
			t.Errorf("as %s: phone %q email %q; want %q %q", tc.role, list[0].Phone, list[0].Email, tc.phone, tc.email)
		}
	}
	for _, q := range []string{"?state=sent", "?limit=0", "?limit=x"} {
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
	if strings.Contains(viewer, `class="resend"`) || strings.Contains(viewer, "0000 0101") || !strings.Contains(viewer, "***0101") {
		t.Errorf("viewer's page: a resend button or the whole number shown")
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
