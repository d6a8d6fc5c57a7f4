package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/store"
)

// fakeAuditLog answers every query with its records, newest first, cut to
// the query's limit, and keeps the queries it was asked.
type fakeAuditLog struct {
	records []AuditEntry
	err     error
	asked   []AuditQuery
}

func (f *fakeAuditLog) Records(q AuditQuery) ([]AuditEntry, error) {
	f.asked = append(f.asked, q)
	if f.err != nil {
		return nil, f.err
	}
	var out []AuditEntry
	for _, r := range f.records {
		if (q.Before == 0 || r.Seq < q.Before) && len(out) < q.Limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// auditEntries returns n entries, seq n down to 1.
func auditEntries(n int) []AuditEntry {
	out := make([]AuditEntry, n)
	for i := range out {
		seq := uint64(n - i)
		out[i] = AuditEntry{Seq: seq, Time: time.Date(2026, 11, 27, 10, 0, int(seq), 0, time.UTC), Actor: "user:ann", Role: RoleOperator,
			Address: "10.0.0.7", Action: "POST /api/v1/meters/{id}/relay", Target: "M-101", Before: "auto", After: "off",
			Reason: "maintenance", Outcome: "ok", Prev: fmt.Sprintf("%064d", seq-1), Hash: fmt.Sprintf("%064d", seq)}
	}
	return out
}

func auditServer(t *testing.T, log *fakeAuditLog) http.Handler {
	t.Helper()
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens(), AuditLog: log})
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

func getAudit(t *testing.T, h http.Handler, role, query string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, as(httptest.NewRequest(http.MethodGet, "/api/v1/audit"+query, nil), role))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// The view's JSON: each record with every field under its documented
// name, newest first, and next_before while older records remain.
func TestAPIAudit_Shape(t *testing.T) {
	log := &fakeAuditLog{records: auditEntries(3)}
	h := auditServer(t, log)
	code, body := getAudit(t, h, RoleAdmin, "?limit=2")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/audit = %d %s", code, body)
	}
	var page map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if got := string(page["next_before"]); got != "2" {
		t.Errorf("next_before = %s; want 2 (the page's last record)", got)
	}
	var recs []map[string]any
	if err := json.Unmarshal(page["records"], &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0]["seq"] != 3.0 || recs[1]["seq"] != 2.0 {
		t.Fatalf("records = %v; want seq 3 then 2", recs)
	}
	want := map[string]any{"seq": 3.0, "time": "2026-11-27T10:00:03Z", "actor": "user:ann", "role": "operator", "address": "10.0.0.7",
		"action": "POST /api/v1/meters/{id}/relay", "target": "M-101", "before": "auto", "after": "off", "reason": "maintenance",
		"outcome": "ok", "prev": fmt.Sprintf("%064d", 2), "hash": fmt.Sprintf("%064d", 3)}
	if !reflect.DeepEqual(recs[0], want) {
		t.Errorf("record = %v;\nwant %v", recs[0], want)
	}
	// The last page has no next_before; an empty one is [], not null.
	if _, body := getAudit(t, h, RoleAdmin, "?limit=2&before=2"); strings.Contains(body, "next_before") || !strings.Contains(body, `"seq": 1`) {
		t.Errorf("last page = %s; want record 1 and no next_before", body)
	}
	if _, body := getAudit(t, h, RoleAdmin, "?before=1"); !strings.Contains(body, `"records": []`) {
		t.Errorf("empty page = %s; want \"records\": []", body)
	}
}

// Every filter reaches the log as given; the page is asked one longer, to
// tell whether another follows.
func TestAPIAudit_Filters(t *testing.T) {
	log := &fakeAuditLog{}
	h := auditServer(t, log)
	code, body := getAudit(t, h, RoleAdmin, "?from=2026-11-27T08:00:00%2B08:00&to=2026-11-28T00:00:00Z&actor=user:ann&action=POST+/api/v1/meters/&target=M-101&before=42&limit=20")
	if code != http.StatusOK {
		t.Fatalf("GET = %d %s", code, body)
	}
	want := AuditQuery{From: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC),
		Actor: "user:ann", Action: "POST /api/v1/meters/", Target: "M-101", Before: 42, Limit: 21}
	if len(log.asked) != 1 {
		t.Fatalf("asked %d times", len(log.asked))
	}
	got := log.asked[0]
	if !got.From.Equal(want.From) || !got.To.Equal(want.To) {
		t.Errorf("from, to = %v, %v; want %v, %v", got.From, got.To, want.From, want.To)
	}
	got.From, got.To, want.From, want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("query = %+v; want %+v", got, want)
	}
	getAudit(t, h, RoleAdmin, "")
	if q := log.asked[1]; q != (AuditQuery{Limit: DefaultAuditPage + 1}) {
		t.Errorf("query without parameters = %+v; want only the default page", q)
	}
}

// A bad parameter is a 400 that says which and what is wanted, and the log
// is not read.
func TestAPIAudit_BadParameters(t *testing.T) {
	for _, tt := range []struct{ query, says string }{
		{"?from=yesterday", "from=\"yesterday\": want an RFC 3339 time"},
		{"?to=2026-11-27", "to=\"2026-11-27\": want an RFC 3339 time"},
		{"?from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z", "must be before to"},
		{"?from=2026-11-27T00:00:00Z&to=2026-11-27T00:00:00Z", "must be before to"},
		{"?before=0", "before=\"0\": want a record's sequence number"},
		{"?before=-3", "before=\"-3\""},
		{"?limit=0", "limit=\"0\": want a number from 1 to 500"},
		{"?limit=501", "limit=\"501\""},
		{"?limit=ten", "limit=\"ten\""},
		{"?actr=user:ann", "unknown parameter \"actr\""},
		{"?actor=a&actor=b", "parameter actor given 2 times"},
	} {
		log := &fakeAuditLog{records: auditEntries(1)}
		code, body := getAudit(t, auditServer(t, log), RoleAdmin, tt.query)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, tt.says) {
			t.Errorf("GET %s = %d %s; want 400 saying %q", tt.query, code, body, tt.says)
		}
		if len(log.asked) != 0 {
			t.Errorf("GET %s read the log", tt.query)
		}
	}
}

// The audit view is the admin's alone.
func TestAPIAudit_AdminOnly(t *testing.T) {
	log := &fakeAuditLog{records: auditEntries(1)}
	h := auditServer(t, log)
	for _, role := range []string{RoleViewer, RoleOperator, RoleFinance} {
		if code, body := getAudit(t, h, role, ""); code != http.StatusForbidden {
			t.Errorf("%s: GET /api/v1/audit = %d %s; want 403", role, code, body)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/audit", nil)
	req.Host = "localhost"
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /api/v1/audit = %d; want 401", rec.Code)
	}
	if len(log.asked) != 0 {
		t.Errorf("the log was read %d times for callers refused", len(log.asked))
	}
	if code, _ := getAudit(t, h, RoleAdmin, ""); code != http.StatusOK {
		t.Errorf("admin: GET /api/v1/audit = %d; want 200", code)
	}
}

// A log that cannot be read is the gateway's fault, said as one.
func TestAPIAudit_ReadFails(t *testing.T) {
	log := &fakeAuditLog{err: fmt.Errorf("audit record 7: %w", store.ErrCorrupt)}
	code, body := getAudit(t, auditServer(t, log), RoleAdmin, "")
	if code != http.StatusInternalServerError || !strings.Contains(body, "error") {
		t.Errorf("GET with a damaged log = %d %s; want 500 with a reason", code, body)
	}
}

// Without an audit log there is no audit view.
func TestAPIAudit_NoLog(t *testing.T) {
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := getAudit(t, s.Handler(), RoleAdmin, ""); code != http.StatusNotFound {
		t.Errorf("GET /api/v1/audit without a log = %d; want 404", code)
	}
}
