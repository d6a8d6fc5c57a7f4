package gateway

import (
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/web"
	"mallgrid/store"
)

// TestStrictBodies_TopUp: a duplicated key once credited its last value
// (99,999.00 for a body that began "amount":"1.00") and keys matched in
// any case. Both are refused through the real server with the ledger
// untouched, and the payment reference is not used up by the refusal.
func TestStrictBodies_TopUp(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, _ := mall.start(t)
	const op = "till-secret"
	api := base + "/api/v1/accounts/T-a1"
	if code := call(t, "POST", api+"/topups", op, `{"amount":"100.00","ref":"PAY-1","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up = %d; want 201", code)
	}
	for _, tt := range []struct{ name, body, reason string }{
		{"duplicated amount", `{"amount":"1.00","ref":"PAY-2","channel":"cash","amount":"99999.00"}`, `"amount" appears more than once`},
		{"duplicated reference", `{"amount":"1.00","ref":"PAY-1","channel":"cash","ref":"PAY-2"}`, `"ref" appears more than once`},
		{"amount in another case", `{"Amount":"1.00","ref":"PAY-2","channel":"cash"}`, `"Amount"`},
		{"reference in capitals", `{"amount":"1.00","REF":"PAY-2","channel":"cash"}`, `"REF"`},
		{"a second object", `{"amount":"1.00","ref":"PAY-2","channel":"cash"}{"amount":"99999.00"}`, "nothing after it"},
	} {
		var e struct {
			Error string `json:"error"`
		}
		if code := call(t, "POST", api+"/topups", op, tt.body, &e); code != 400 || !strings.Contains(e.Error, tt.reason) {
			t.Errorf("%s: got %d %q; want 400 about %q", tt.name, code, e.Error, tt.reason)
		}
	}
	var a web.AccountView
	getJSON(t, api, &a)
	if a.Balance != "100.00" || a.Entries != 1 {
		t.Errorf("got balance %s in %d entries after refused bodies; want 100.00 in 1", a.Balance, a.Entries)
	}
	if code := call(t, "POST", api+"/topups", op, `{"amount":"1.00","ref":"PAY-2","channel":"cash"}`, nil); code != 201 {
		t.Errorf("PAY-2 sent properly = %d; want 201 (a refused body must not use up its reference)", code)
	}
	getJSON(t, api, &a)
	if a.Balance != "101.00" {
		t.Errorf("got balance %s; want 101.00", a.Balance)
	}
}

// TestStrictBodies_Protection: a body that does not say "protected": true
// or false once lifted an account's protection. Now it is refused and the
// account stays protected; a lift needs a reason, and the reason is kept
// in the stored event with who lifted it.
func TestStrictBodies_Protection(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	const op = "till-secret"
	url := base + "/api/v1/accounts/T-a1/protection"

	var a web.AccountView
	if code := call(t, "POST", url, op, `{"protected":true,"reason":"dialysis clinic"}`, &a); code != 200 || a.Protected != "dialysis clinic" {
		t.Fatalf("protect = %d %+v; want 200, protected for the clinic", code, a)
	}
	for _, tt := range []struct{ name, body, reason string }{
		{"empty object", `{}`, "protected"},
		{"null", `null`, "JSON object"},
		{"flag missing", `{"reason":"typo"}`, "protected"},
		{"flag null", `{"protected":null,"reason":"typo"}`, "protected"},
		{"flag in another case", `{"Protected":false,"reason":"typo"}`, `"Protected"`},
		{"flag given twice", `{"protected":true,"reason":"typo","protected":false}`, `"protected" appears more than once`},
		{"lift without a reason", `{"protected":false}`, "reason"},
		{"lift with an expiry", `{"protected":false,"reason":"typo","until":"2099-01-01T00:00:00Z"}`, "until"},
	} {
		var e struct {
			Error string `json:"error"`
		}
		if code := call(t, "POST", url, op, tt.body, &e); code != 400 || !strings.Contains(e.Error, tt.reason) {
			t.Errorf("%s: got %d %q; want 400 about %q", tt.name, code, e.Error, tt.reason)
		}
		a = web.AccountView{}
		getJSON(t, base+"/api/v1/accounts/T-a1", &a)
		if a.Protected != "dialysis clinic" {
			t.Fatalf("%s: got protection %q; want it still set", tt.name, a.Protected)
		}
	}
	var lifted web.AccountView // "protected" is left out when not set: decode into a fresh view
	if code := call(t, "POST", url, op, `{"protected":false,"reason":"clinic moved out"}`, &lifted); code != 200 || lifted.Tenant != "T-a1" || lifted.Protected != "" {
		t.Fatalf("lift with a reason = %d %+v; want 200, not protected", code, lifted)
	}

	var texts []string
	for _, e := range replayEvents(t, base) {
		if e.Kind == "protection" && e.Tenant == "T-a1" {
			texts = append(texts, e.Text)
		}
	}
	if len(texts) != 2 || !strings.Contains(texts[1], "lifted by token:till: clinic moved out") {
		t.Errorf("got protection events %q; want the set and the lift, the lift with who and why", texts)
	}

	// And in the database itself, after the gateway has stopped.
	stop()
	db, err := store.Open(mall.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err := db.LastEvents(100)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, e := range evs {
		if e.Kind == "protection" && e.Tenant == "T-a1" {
			stored = append(stored, e.Text)
		}
	}
	if len(stored) != 2 || !strings.Contains(strings.Join(stored, "\n"), "lifted by token:till: clinic moved out") {
		t.Errorf("got stored protection events %q; want two, the lift with its reason", stored)
	}
}

// replayEvents replays the event stream from the start and returns, in
// order, what arrived within a second.
func replayEvents(t *testing.T, base string) []web.EventView {
	t.Helper()
	var got []web.EventView
	resp := sse(t, t.Context(), base+"/api/v1/events", "0")
	timeout := time.After(time.Second)
	for {
		select {
		case e, ok := <-resp:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-timeout:
			return got
		}
	}
}
