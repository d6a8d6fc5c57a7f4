// Package audit is the control room's audit log over the database: Log
// takes the records the web layer hands over (web.Auditor) — every change
// made through the API or the pages, and every failed login — and appends
// them to the store's hash-chained log (store.AppendAudit); it reads them
// back for the admin's view (web.AuditLog).
//
// # Use
//
// Build one Log over the open database and give it to web.Options as both
// Auditor and AuditLog. Record is called after a change was answered: its
// error (a full disk, a lost file) is the caller's to log; the change it
// describes is already durable and stays.
//
// # Times
//
// A record's time is the one the web layer gives (the gateway's clock, in
// the site's zone); Log reads no clock. The log's order is its sequence,
// not its times: a clock set back leaves later records with earlier times.
//
// audit imports store and gateway/web; it holds no state of its own.
package audit
