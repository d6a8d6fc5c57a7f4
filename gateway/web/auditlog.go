package web

import (
	"net"
	"net/http"
	"time"
)

// AuditRecord is one change or failed login as the audit log keeps it.
type AuditRecord struct {
	Time    time.Time
	Actor   string // "user:alice", "token:till", or the username tried for a failed login
	Role    string
	Address string // client address (r.RemoteAddr host)
	Action  string // e.g. "POST /api/v1/accounts/{tenant}/topups", "login_failed"
	Target  string // e.g. "T-101", "M-102"
	Before  string // short text or JSON of the state before, "" if not known
	After   string // ... after
	Reason  string
	Outcome string // "ok", or the HTTP status and reason of a refusal
}

// Auditor records changes; the gateway implements it over the database.
//
// Record is called after the change was answered (or the login refused);
// an error is logged by the server and does not undo the change, which is
// already durable by then.
type Auditor interface {
	Record(AuditRecord) error
}

// auditNote is what a handler adds to its change's audit record: what it
// acted on and, where it knows them cheaply, the state before and after.
type auditNote struct {
	Target, Before, After, Reason string
}

type auditKey struct{}

// noteAudit lets a handler fill in its change's audit record; outside the
// guard (a test calling a handler directly) it does nothing.
func noteAudit(r *http.Request, fill func(*auditNote)) {
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok {
		fill(n)
	}
}

// clientAddress is r's client address without its port.
func clientAddress(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// audit records one change, after its handler answered (or the guard
// refused it). A record that cannot be kept is logged: the change itself
// is already durable and stays.
func (s *Server) audit(r *http.Request, p principal, pattern string, n *auditNote, w *recorder) {
	if s.auditor == nil {
		return
	}
	// A change refused before its handler named what it was about (a role
	// or CSRF refusal, a body that did not decode) is kept with its path.
	target := n.Target
	if target == "" {
		target = r.URL.Path
	}
	rec := AuditRecord{Time: s.now(), Actor: p.Actor, Role: p.Role, Address: clientAddress(r), Action: pattern,
		Target: target, Before: n.Before, After: n.After, Reason: n.Reason, Outcome: w.outcome()}
	if err := s.auditor.Record(rec); err != nil {
		s.log.Error().Err(err).Str("actor", p.Actor).Str("action", pattern).Str("target", n.Target).
			Str("outcome", rec.Outcome).Msg("audit record not kept: it is in this log only")
	}
}
