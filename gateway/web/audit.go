package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"mallgrid/store"
)

// AuditQuery is what the admin's audit view asks of the audit log: the
// parameters of GET /api/v1/audit.
type AuditQuery struct {
	From, To time.Time // From ≤ time < To; zero: unbounded
	Actor    string    // exactly this actor
	Action   string    // actions starting with this
	Target   string    // exactly this target
	Before   uint64    // only records before this sequence number; 0: from the newest
	Limit    int       // at most this many (1 … MaxAuditPage)
}

// AuditEntry is a record as the audit log keeps it: what Auditor was
// given, with its place in the log's hash chain — the store's record
// itself, whose JSON the admin's view shows as it is.
type AuditEntry = store.AuditRecord

// AuditLog reads the audit log for the admin's view; the gateway
// implements it over the database, beside Auditor.
type AuditLog interface {
	// Records returns the records q selects, newest first.
	Records(q AuditQuery) ([]AuditEntry, error)
}

// Pages of GET /api/v1/audit.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 500
)

// AuditPage is the answer of GET /api/v1/audit.
type AuditPage struct {
	Records []AuditEntry `json:"records"` // newest first
	// NextBefore, when there are older records that match, is the before=
	// that asks for the next page.
	NextBefore uint64 `json:"next_before,omitempty"`
}

// auditRoutes registers the admin's audit view; who may read it (admins)
// is its line in accessRules.
func (s *Server) auditRoutes() {
	s.handle("GET /api/v1/audit", http.HandlerFunc(s.apiAudit))
}

// auditParams are the query parameters GET /api/v1/audit knows; any other
// is refused, so that a misspelt filter is not silently ignored.
var auditParams = []string{"from", "to", "actor", "action", "target", "before", "limit"}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	want := q.Limit
	q.Limit++ // one more than the page says whether there is a next one
	recs, err := s.auditLog.Records(q)
	if err != nil {
		s.fail(w, fmt.Errorf("read the audit log: %w", err))
		return
	}
	page := AuditPage{Records: recs}
	if len(recs) > want {
		page.Records = recs[:want]
		page.NextBefore = recs[want-1].Seq
	}
	if page.Records == nil {
		page.Records = []AuditEntry{} // [] rather than null
	}
	writeJSON(w, http.StatusOK, page)
}

// parseAuditQuery reads GET /api/v1/audit's parameters; its error is the
// reason of a 400.
func parseAuditQuery(v url.Values) (AuditQuery, error) {
	q := AuditQuery{Limit: DefaultAuditPage}
	for k, vals := range v {
		if !slices.Contains(auditParams, k) {
			return q, fmt.Errorf("unknown parameter %q; the audit view takes %s", k, strings.Join(auditParams, ", "))
		}
		if len(vals) > 1 {
			return q, fmt.Errorf("parameter %s given %d times; give it once", k, len(vals))
		}
	}
	q.Actor, q.Action, q.Target = v.Get("actor"), v.Get("action"), v.Get("target")
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, fmt.Errorf("%s=%q: want an RFC 3339 time with its offset, such as 2026-11-27T10:00:00+08:00", p.name, s)
			}
			*p.to = t
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, fmt.Errorf("from (%s) must be before to (%s)", v.Get("from"), v.Get("to"))
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return q, fmt.Errorf("before=%q: want a record's sequence number (1 or more), such as a page's next_before", s)
		}
		q.Before = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditPage {
			return q, fmt.Errorf("limit=%q: want a number from 1 to %d", s, MaxAuditPage)
		}
		q.Limit = n
	}
	return q, nil
}
