package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Reports is what the finance office's report endpoints read; the gateway
// implements it over the store (gateway/report). Errors: ErrInvalid for a
// period it cannot answer.
type Reports interface {
	// Finance returns the finance report of period — a month "2026-11"
	// or a day "2026-11-27" of the site's calendar — as a file of
	// format, "xlsx" or "csv". It stops with ctx's error when ctx ends.
	Finance(ctx context.Context, period, format string) ([]byte, error)
	// EnergyBalance returns the building's balance (main meters against
	// the tenants' and public meters) per day and month of the site's
	// calendar, over the days holding from up to to. It stops with ctx's
	// error when ctx ends.
	EnergyBalance(ctx context.Context, from, to time.Time) (BalanceView, error)
}

// BalanceView is GET /api/v1/reports/balance.
type BalanceView struct {
	From         time.Time    `json:"from"` // the first day's start, in site.timezone
	To           time.Time    `json:"to"`   // the last day's end
	MainMeters   []string     `json:"main_meters"`
	TenantMeters []string     `json:"tenant_meters"`
	PublicMeters []string     `json:"public_meters"`
	Days         []BalanceRow `json:"days"`
	Months       []BalanceRow `json:"months"` // a month cut by the range is the part inside it
	Total        BalanceRow   `json:"total"`
}

// BalanceRow is the balance of one day, month or the whole range. Energy
// is kWh to the Wh, as decimal text; UnmeteredPct is the unmetered energy
// as a per cent of the mains' with two decimals, null when the mains
// measured nothing.
type BalanceRow struct {
	Period       string    `json:"period"` // 2026-11-27, 2026-11 or "total"
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	MainKWh      string    `json:"main_kwh"`
	TenantKWh    string    `json:"tenant_kwh"`
	PublicKWh    string    `json:"public_kwh"`
	MeteredKWh   string    `json:"metered_kwh"`
	UnmeteredKWh string    `json:"unmetered_kwh"`
	UnmeteredPct *string   `json:"unmetered_pct"`
}

// reportTypes are the finance report's formats and their media types.
var reportTypes = map[string]string{
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"csv":  "text/csv; charset=utf-8",
}

// financeBuildLimit bounds a finance report's build: the server's write
// timeout (30 s) would drop the answer of a longer one anyway, and
// `mallgrid report finance` has no such limit.
const financeBuildLimit = 25 * time.Second

// financeRetryAfter is the Retry-After (seconds) of a finance report
// refused while another is being built.
const financeRetryAfter = "10"

func (s *Server) reportRoutes(rep Reports) {
	// building holds a token while a finance report is built: one at a
	// time, since a month's build reads every account's month of ledger
	// (seconds of both cores the meters' polling shares) and a second
	// request, often the same one sent again, would only slow both. It is
	// refused at once with 503 and Retry-After rather than queued: a
	// waiting request would hold a connection and a goroutine for as long
	// as the build takes.
	building := make(chan struct{}, 1)
	s.handle("GET /api/v1/reports/finance", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		month, day, format := q.Get("month"), q.Get("day"), q.Get("format")
		var period string
		switch {
		case month != "" && day != "":
			writeError(w, http.StatusBadRequest, "give month=YYYY-MM or day=YYYY-MM-DD, not both")
			return
		case month != "":
			if t, err := time.Parse("2006-01", month); err != nil || t.Format("2006-01") != month {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("month %q: want YYYY-MM, like 2026-11", month))
				return
			}
			period = month
		case day != "":
			if t, err := time.Parse(time.DateOnly, day); err != nil || t.Format(time.DateOnly) != day {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("day %q: want YYYY-MM-DD, like 2026-11-27", day))
				return
			}
			period = day
		default:
			writeError(w, http.StatusBadRequest, "month: required, YYYY-MM like 2026-11 (or day=YYYY-MM-DD for one day)")
			return
		}
		if format == "" {
			format = "xlsx"
		}
		ctype, ok := reportTypes[format]
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want xlsx or csv", format))
			return
		}
		select {
		case building <- struct{}{}:
			defer func() { <-building }()
		default:
			w.Header().Set("Retry-After", financeRetryAfter)
			writeError(w, http.StatusServiceUnavailable, "another finance report is being built; one is built at a time: try again in a few seconds")
			return
		}
		// The build stops when the client goes away, or at the limit.
		ctx, cancel := context.WithTimeout(r.Context(), financeBuildLimit)
		defer cancel()
		body, err := rep.Finance(ctx, period, format)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			w.Header().Set("Retry-After", financeRetryAfter)
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the report took longer than %s to build and was stopped; "+
				"`mallgrid report finance` writes it without a limit", financeBuildLimit))
			return
		case errors.Is(err, context.Canceled):
			return // the client went away: nobody reads an answer
		case err != nil:
			s.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="mallgrid-finance-%s.%s"`, period, format))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body) // a client gone away is not the gateway's failure
	}))
	s.handle("GET /api/v1/reports/balance", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		from, to, ok := historyRange(w, q.Get("from"), q.Get("to"))
		if !ok || !fewPoints(w, from, to, StepDay) {
			return
		}
		v, err := rep.EnergyBalance(r.Context(), from, to)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}
