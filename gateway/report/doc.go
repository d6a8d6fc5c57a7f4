// Package report turns the ledger and the meters' interval energy into what
// the finance office and the tenants read: public-area allocation
// (preview and posting), tenant statements and finance reports (CSV, XLSX).
// It reads the store and writes only allocation postings and issued
// statements; figures are integers (billing.Money, Wh) until they are
// formatted.
//
// # Statements
//
// ComputeStatement is a pure function of a tenant's entries and its meters'
// intervals within a month's bounds (StatementMonth, in the site's zone);
// BuildStatement and BuildStatements read them from the store. A
// Statement reconciles (Statement.Reconcile) or is not issued.
// Statements.Run issues each month's IssueDelay after it ends, and those
// missed while the gateway was down, once (store.DB.PutStatement keeps
// the first); StatementRenderer draws the stored figures as HTML or PDF;
// SignLink and VerifyLink make and check a tenant's read-only link.
package report
