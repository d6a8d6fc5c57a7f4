package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/gateway/notify"
	"mallgrid/gateway/web"
)

// A tenant's credit running low reaches the mall's webhook: the
// warning_1 event stored by the pipeline is queued in its transaction,
// delivered signed (checked with notify.Verify) under its delivery id, in
// the tenant's language (zh-CN, the default), and listed as delivered by
// the API.
func TestNotify_WarningReachesWebhook(t *testing.T) {
	t.Parallel()
	const secret = "e2e-webhook-secret"
	var (
		mu   sync.Mutex
		got  []notify.WebhookBody
		bads []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := notify.Verify(secret, r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			bads = append(bads, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b notify.WebhookBody
		if err := json.Unmarshal(body, &b); err != nil || b.Delivery != r.Header.Get(notify.HeaderDelivery) {
			bads = append(bads, "body or delivery header")
		}
		got = append(got, b)
	}))
	defer hook.Close()
	mall := newTestMall(t, 2,
		"tariffs: [{name: standard, kind: flat, price: '100.00'}]\n",
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 1h, restore: '1.00'}]\n",
		"notify:\n  channels: [{name: app, kind: webhook, url: '"+hook.URL+"', secret: "+secret+"}]\n",
		"  routes: [{events: [warning_1], to: tenant, channels: [app]}]\n")
	base, _ := mall.start(t)
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "till-secret", `{"amount":"10.00","ref":"P-1","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up = %d", code)
	}
	mall.meters["M-a1"].SetLoad(36_000) // ¥1 a second at ¥100/kWh
	var warning notify.WebhookBody
	waitFor(t, 30*time.Second, "the warning at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range got {
			if b.Kind == "warning_1" {
				warning = b
				return true
			}
		}
		return false
	})
	mu.Lock()
	if len(bads) > 0 {
		t.Errorf("receiver refused: %q", bads)
	}
	mu.Unlock()
	if warning.Lang != "zh-CN" || !strings.Contains(warning.Text, "余额") || !strings.Contains(warning.Text, "Shop a1") ||
		warning.Subject == "" || !strings.HasSuffix(warning.Delivery, "-0-app-hook-tenant") {
		t.Errorf("warning = %+v; want it in Chinese, about Shop a1, under <event>-0-app-hook-tenant", warning)
	}
	var list []web.NotificationView
	waitFor(t, 5*time.Second, "the delivery listed as delivered", func() bool {
		getJSON(t, base+"/api/v1/notifications?state=delivered", &list)
		return len(list) > 0 && list[0].ID == warning.Delivery
	})
}
