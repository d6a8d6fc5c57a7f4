// Package report turns the ledger and the meters' interval energy into what
// the finance office and the tenants read: public-area allocation
// (preview and posting), tenant statements and finance reports (CSV, XLSX).
// It reads the store and writes only allocation postings; figures are
// integers (billing.Money, Wh) until they are formatted.
package report
