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
// Statement reconciles (Statement.Reconcile) and opens with the closing
// of the statement before, or is not issued. Statements.Run issues each
// month's IssueDelay after it ends, and those missed while the gateway was
// down once every bus has cycled, once (store.DB.PutStatement keeps the
// first): a tenant's first from the whole ledger, each after from the
// statement before (its closing balance, Through and Later) and the
// entries posted since, which gives the same figures as the whole ledger
// read with that statement's Through. An entry posted after the statement
// before, dated before the month, is a late line (Statement.Late), never
// added to the opening: issued statements do not change. StatementRenderer
// draws the stored figures as HTML or PDF; SignLink and VerifyLink make
// and check a tenant's read-only link.
//
// # Finance reports and the energy balance
//
// BuildFinance reads a Period (MonthPeriod, DayPeriod: midnight to
// midnight in site.timezone) into a Finance: every entry counts by its
// date (Entry.Time), never by its id, and the balances are Σ of the
// entries dated before each bound, so the period's entries move them
// exactly from its Opening to its Closing figures and a month closes where
// the next opens whatever order the entries were posted in. It reads each
// account's entries from its newest down to a slack before the period
// (readSpan), not the whole ledger unless entries are dated further out of
// posting order than that slack. Finance.Tables lays it out, the summary
// first; WriteCSV
// and WriteXLSX write the same tables, cells formatted only there.
// Balance sets the main meters against the tenants' and public meters over
// whole days, from store.DB.Intervals. Reports serves both to gateway/web;
// FinanceFile is `mallgrid report finance`.
package report
