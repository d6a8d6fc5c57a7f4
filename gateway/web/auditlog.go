package web

import "time"

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
