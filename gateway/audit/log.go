package audit

import (
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Log is the audit log kept in a database.
type Log struct {
	DB *store.DB
}

// Record appends r to the log; it returns the store's error (store.ErrNoSpace,
// store.ErrUnavailable, store.ErrBadAudit for a record without a time or
// an action), and nil once the record is durable.
func (l *Log) Record(r web.AuditRecord) error {
	_, err := l.DB.AppendAudit(store.AuditRecord{Time: r.Time, Actor: r.Actor, Role: r.Role, Address: r.Address, Action: r.Action,
		Target: r.Target, Before: r.Before, After: r.After, Reason: r.Reason, Outcome: r.Outcome})
	return err
}

// Records returns the records q selects, newest first; an error wraps
// store.ErrCorrupt for a record that cannot be read.
func (l *Log) Records(q web.AuditQuery) ([]web.AuditEntry, error) {
	return l.DB.AuditRecords(store.AuditFilter{From: q.From, To: q.To, Actor: q.Actor, Action: q.Action, Target: q.Target,
		Before: q.Before, Limit: q.Limit})
}

var (
	_ web.Auditor  = (*Log)(nil)
	_ web.AuditLog = (*Log)(nil)
)
