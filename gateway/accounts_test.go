package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"mallgrid/gateway/web"
)

// call sends method path with body and an optional bearer token, and
// decodes the JSON reply into v (if not nil).
func call(t *testing.T, method, url, token, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, url, err, raw)
		}
	}
	return resp.StatusCode
}

// TestAccountsAPI goes through the top-up contract of DESIGN.md: amounts
// are decimal strings, a repeated reference returns the original entry,
// every bad request is a 4xx with a reason and changes nothing.
func TestAccountsAPI(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	base, _ := mall.start(t)
	api := base + "/api/v1/accounts"
	const op = "till-secret"

	var created web.EntryView
	if code := call(t, "POST", api+"/T-a1/topups", op, `{"amount":"100.00","ref":"PAY-1","channel":"cash"}`, &created); code != 201 {
		t.Fatalf("top-up = %d; want 201", code)
	}
	if created.Amount != "100.00" || created.Balance != "100.00" || created.Kind != "topup" || created.Actor != "token:till" || created.Ref != "PAY-1" {
		t.Errorf("top-up entry = %+v", created)
	}
	var again web.EntryView
	if code := call(t, "POST", api+"/T-a1/topups", op, `{"amount":"100.00","ref":"PAY-1","channel":"cash"}`, &again); code != 200 || again.ID != created.ID {
		t.Errorf("same payment again = %d %+v; want 200 and entry %d", code, again, created.ID)
	}

	refused := []struct {
		name, tenant, token, body string
		code                      int
		reason                    string
	}{
		{"malformed amount", "T-a1", op, `{"amount":"1e3","ref":"PAY-2","channel":"cash"}`, 400, "amount"},
		{"negative", "T-a1", op, `{"amount":"-5.00","ref":"PAY-2","channel":"cash"}`, 400, "more than zero"},
		{"zero", "T-a1", op, `{"amount":"0.00","ref":"PAY-2","channel":"cash"}`, 400, "more than zero"},
		{"over the limit", "T-a1", op, `{"amount":"100000.01","ref":"PAY-2","channel":"cash"}`, 400, "over the limit"},
		{"below a fen", "T-a1", op, `{"amount":"1.005","ref":"PAY-2","channel":"cash"}`, 400, "fen"},
		{"amount as a number", "T-a1", op, `{"amount":100,"ref":"PAY-2","channel":"cash"}`, 400, "body"},
		{"unknown field", "T-a1", op, `{"amount":"1.00","ref":"PAY-2","channel":"cash","tip":"1"}`, 400, "unknown field"},
		{"no reference", "T-a1", op, `{"amount":"1.00","channel":"cash"}`, 400, "ref"},
		{"unknown channel", "T-a1", "books-secret", `{"amount":"1.00","ref":"PAY-2","channel":"paypal"}`, 400, "channel"},
		{"reference of another payment", "T-a2", op, `{"amount":"100.00","ref":"PAY-1","channel":"cash"}`, 409, "reference"},
		{"operator recording a wechat payment", "T-a1", op, `{"amount":"1.00","ref":"PAY-W","channel":"wechat"}`, 403, "finance"},
		{"unknown tenant", "T-zz", op, `{"amount":"1.00","ref":"PAY-2","channel":"cash"}`, 404, "T-zz"},
		{"no token", "T-a1", "", `{"amount":"1.00","ref":"PAY-2","channel":"cash"}`, 401, "token"},
		{"wrong token", "T-a1", "guess", `{"amount":"1.00","ref":"PAY-2","channel":"cash"}`, 401, "token"},
		{"viewer token", "T-a1", "screen-secret", `{"amount":"1.00","ref":"PAY-2","channel":"cash"}`, 403, "operator"},
	}
	for _, tt := range refused {
		var e map[string]string
		code := call(t, "POST", api+"/"+tt.tenant+"/topups", tt.token, tt.body, &e)
		if code != tt.code || !strings.Contains(e["error"], tt.reason) {
			t.Errorf("%s: %d %q; want %d with a reason about %q", tt.name, code, e["error"], tt.code, tt.reason)
		}
	}

	// One receipt for the payment, however often it was sent.
	if n := eventKinds(t, base, "T-a1")["topup_receipt"]; n != 1 {
		t.Errorf("%d topup_receipt events for T-a1; want 1", n)
	}

	// Nothing above changed a balance.
	var accts []web.AccountView
	if code := call(t, "GET", api, "screen-secret", "", &accts); code != 200 || len(accts) != 4 {
		t.Fatalf("GET accounts = %d, %d accounts; want 4 (every tenant)", code, len(accts))
	}
	for _, a := range accts {
		want := "0.00"
		if a.Tenant == "T-a1" {
			want = "100.00"
		}
		if a.Balance != want {
			t.Errorf("%s balance %s; want %s", a.Tenant, a.Balance, want)
		}
	}
	var ledger []web.EntryView
	if code := call(t, "GET", api+"/T-a1/ledger", "screen-secret", "", &ledger); code != 200 || len(ledger) != 1 || ledger[0].ID != created.ID {
		t.Errorf("GET ledger = %d %+v; want the one top-up", code, ledger)
	}
	if code := call(t, "GET", api+"/T-a1/ledger?limit=0", "screen-secret", "", nil); code != 400 {
		t.Errorf("GET ledger?limit=0 = %d; want 400", code)
	}
	var one web.AccountView
	if code := call(t, "GET", api+"/T-a2", "screen-secret", "", &one); code != 200 || one.Name != "Shop a2" || one.Balance != "0.00" {
		t.Errorf("GET account T-a2 = %d %+v", code, one)
	}
	if code := call(t, "GET", api+"/T-zz", "screen-secret", "", nil); code != 404 {
		t.Errorf("GET unknown account = %d; want 404", code)
	}

	// An operator's counter decisions, through the same rules.
	meters := base + "/api/v1/meters"
	for _, tt := range []struct {
		name, path, token, body string
		code                    int
		reason                  string
	}{
		{"release with nothing held", "/M-a1/release", op, `{"reason":"checked on site"}`, 409, "no quarantined jump"},
		{"release without a reason", "/M-a1/release", op, `{}`, 400, "reason"},
		{"release by a viewer", "/M-a1/release", "screen-secret", `{"reason":"x"}`, 403, "operator"},
		{"release of an unknown meter", "/M-zz/release", op, `{"reason":"x"}`, 404, "M-zz"},
		{"exchange with a bad counter", "/M-a1/exchange", op, `{"old_final_kwh":"12,5","new_start_kwh":"0","reason":"x"}`, 400, "old_final_kwh"},
	} {
		var e map[string]string
		code := call(t, "POST", meters+tt.path, tt.token, tt.body, &e)
		if code != tt.code || !strings.Contains(e["error"], tt.reason) {
			t.Errorf("%s: %d %q; want %d with a reason about %q", tt.name, code, e["error"], tt.code, tt.reason)
		}
	}
}
