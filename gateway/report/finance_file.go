package report

import (
	"context"
	"fmt"
	"io"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// FinanceFile writes the finance report of period (2026-11 or 2026-11-27)
// in format (xlsx or csv) to w, from the database cfg names, opened as
// `mallgrid verify` opens it: read-only, held to its marker, waiting at
// most storage.lock_timeout for a running gateway's lock (then
// store.ErrLocked: the running gateway answers GET /api/v1/reports/finance
// instead). Errors: ErrPeriod, ErrFormat, the store's Open errors, and
// ctx's when it ends before the report is built.
func FinanceFile(ctx context.Context, cfg *config.Config, period, format string, w io.Writer) error {
	p, err := ParsePeriod(period, siteLocation(cfg))
	if err != nil {
		return err
	}
	if format != "xlsx" && format != "csv" {
		return fmt.Errorf("%w: %q", ErrFormat, format)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{ReadOnly: true, Marker: true, LockTimeout: cfg.Storage.LockTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	f, err := BuildFinance(ctx, db, cfg, p)
	if err != nil {
		return err
	}
	return f.Write(w, format)
}
