package gateway

import (
	"net/http"
	"net/url"
	"testing"

	"mallgrid/gateway/verify"
	"mallgrid/store"
)

// The running gateway keeps each change and each failed login in its
// database's audit log, chained, which verify then passes; and it serves
// the audit view, to admins only.
func TestRun_AuditLog(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "till-secret", `{"amount":"100.00","ref":"PAY-A1","channel":"cash"}`, nil); code != http.StatusCreated {
		t.Fatalf("top-up = %d; want 201", code)
	}
	// A change refused is kept too: a viewer may not top up.
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "screen-secret", `{"amount":"1.00","ref":"PAY-A2","channel":"cash"}`, nil); code != http.StatusForbidden {
		t.Fatalf("viewer's top-up = %d; want 403", code)
	}
	resp, err := http.PostForm(base+"/login", url.Values{"username": {"mallory"}, "password": {"guess"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The view is there (not 404) and refused to an operator.
	if code := call(t, "GET", base+"/api/v1/audit", "till-secret", "", nil); code != http.StatusForbidden {
		t.Errorf("operator's GET /api/v1/audit = %d; want 403", code)
	}
	stop()

	db, err := store.Open(mall.dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.AuditRecords(store.AuditFilter{})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, action, target string }{ // newest first
		{"login:127.0.0.1", "login_failed", "mallory"},                                            // the name tried is the target, not the actor
		{"token:screen", "POST /api/v1/accounts/{tenant}/topups", "/api/v1/accounts/T-a1/topups"}, // refused before its handler named a target: its path
		{"token:till", "POST /api/v1/accounts/{tenant}/topups", "T-a1"},
	}
	if len(recs) != len(want) {
		t.Fatalf("audit log = %+v; want %d records", recs, len(want))
	}
	for i, w := range want {
		r := recs[i]
		if r.Actor != w.actor || r.Action != w.action || w.target != "*" && r.Target != w.target || r.Address != "127.0.0.1" || r.Time.IsZero() {
			t.Errorf("record %d = %+v; want %s %s on %q from 127.0.0.1", r.Seq, r, w.actor, w.action, w.target)
		}
	}
	if recs[2].Outcome != "ok" || recs[1].Outcome == "ok" {
		t.Errorf("outcomes %q, %q; want the top-up ok and the viewer's refused", recs[2].Outcome, recs[1].Outcome)
	}
	report, err := verify.File(mall.dbPath)
	if err != nil || len(report.Violations) != 0 || report.AuditRecords != 3 || report.AuditLast != recs[0].Hash {
		t.Errorf("verify = %+v, %v; want clean, 3 audit records ending at %s", report, err, recs[0].Hash)
	}
}
