package web

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// The finance office's page (GET /finance): the month's report files and
// energy balance, the allocation rules with their postings, reversals and
// a preview. It reads through the same Reports and Allocations the API
// serves, so the page and the API cannot disagree.

// financeParts are the parts the finance page (reports, allocations) and
// the tenant page (statements) read; any may be nil.
type financeParts struct {
	reports     Reports
	allocations Allocations
	statements  Statements
}

// AllocationRuleInfo is a configured allocation rule as the finance page
// lists it.
type AllocationRuleInfo struct {
	Name    string
	Basis   string // "area", "area 50% + consumption 50%"
	Tariff  string
	Period  string   // day or month
	Meters  []string // the public meters shared
	Tenants []string // the tenants sharing them
}

// AllocationRules is implemented by an Allocations that can list its
// configured rules: the finance page lists them and offers each for a
// preview. Without it the page knows only the rules its postings name.
type AllocationRules interface {
	Rules() []AllocationRuleInfo
}

// financeBalanceLimit bounds the page's read of the month's energy
// balance: the page must answer well within the server's write timeout
// even when the meters' history is slow to read.
const financeBalanceLimit = 10 * time.Second

// financeView is the finance page.
type financeView struct {
	Month string // the report's month, YYYY-MM in the site's calendar
	// Reports: the report files and the balance are offered.
	Reports bool
	Balance *BalanceRow // the month's total; nil when not read
	// BalanceProblem is the reason the balance is not shown, in English
	// from the report package (a period it cannot answer, a timeout).
	BalanceProblem string

	Allocations bool
	Rules       []AllocationRuleInfo
	Postings    []AllocationPosting
	// PostingsFailed says the postings could not be read: the page says
	// so rather than show none, as if nothing had been posted.
	PostingsFailed bool
	CanReverse     bool

	// The preview form's fields (dates in the site's calendar, to
	// inclusive) and, once asked, its result or the reason there is none.
	Rule, From, To string
	Preview        *AllocationPreview
	PreviewProblem string // the reason the preview was refused
	// PreviewBad is what is wrong with the form's dates, checked before
	// anything is asked: "dates" (not dates) or "order" (to before from).
	PreviewBad string
}

func (s *Server) financePage(w http.ResponseWriter, r *http.Request) {
	loc := s.location()
	now := s.now().In(loc)
	q := r.URL.Query()
	// The month the office closes is usually the one just ended.
	lastMonth := time.Date(now.Year(), now.Month()-1, 1, 12, 0, 0, 0, loc)
	d := financeView{Month: lastMonth.Format("2006-01"), Reports: s.finance.reports != nil, Allocations: s.finance.allocations != nil}
	if v := q.Get("month"); v != "" {
		if t, err := time.Parse("2006-01", v); err == nil && t.Format("2006-01") == v {
			d.Month = v
		}
	}
	if d.Reports {
		m, _ := time.Parse("2006-01", d.Month) // checked above
		from := dayStart(m.Year(), m.Month(), 1, loc)
		// The balance's to is an instant of the last day it covers.
		to := dayStart(m.Year(), m.Month()+1, 1, loc).Add(-time.Nanosecond)
		ctx, cancel := context.WithTimeout(r.Context(), financeBalanceLimit)
		b, err := s.finance.reports.EnergyBalance(ctx, from, to)
		cancel()
		switch {
		case err == nil:
			d.Balance = &b.Total
		case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound), errors.Is(err, context.DeadlineExceeded):
			d.BalanceProblem = err.Error()
		default:
			s.log.Error().Err(err).Str("month", d.Month).Msg("read the energy balance for the finance page")
			d.BalanceProblem = "the balance could not be read; see the gateway's log"
		}
	}
	if d.Allocations {
		d.CanReverse = s.rules["POST /api/v1/allocations/{id}/reverse"].allows(principalOf(r).Role)
		postings, err := s.finance.allocations.Postings()
		if err != nil {
			s.log.Error().Err(err).Msg("read allocation postings for the finance page")
			d.PostingsFailed = true
		}
		d.Postings = postings
		if rl, ok := s.finance.allocations.(AllocationRules); ok {
			d.Rules = rl.Rules()
		} else {
			seen := map[string]bool{}
			for _, p := range postings {
				if !seen[p.Rule] {
					seen[p.Rule] = true
					d.Rules = append(d.Rules, AllocationRuleInfo{Name: p.Rule, Basis: p.Basis, Tariff: p.Tariff})
				}
			}
		}
		d.Rule, d.From, d.To = q.Get("rule"), q.Get("from"), q.Get("to")
		if d.From == "" && d.To == "" {
			d.From = lastMonth.Format("2006-01") + "-01"
			d.To = dayStart(lastMonth.Year(), lastMonth.Month()+1, 1, loc).Add(-time.Hour).Format(time.DateOnly)
		}
		if d.Rule != "" {
			s.financePreview(&d, loc)
		}
	}
	s.render(w, r, "finance", "nav.finance", d)
}

// financePreview computes the preview the form asks for: the days From
// through To of the site's calendar.
func (s *Server) financePreview(d *financeView, loc *time.Location) {
	from, err1 := time.Parse(time.DateOnly, d.From)
	to, err2 := time.Parse(time.DateOnly, d.To)
	switch {
	case err1 != nil || err2 != nil:
		d.PreviewBad = "dates"
		return
	case to.Before(from):
		d.PreviewBad = "order"
		return
	}
	release, ok := s.previewSlot()
	if !ok {
		d.PreviewProblem = "another allocation preview is being computed: try again in a few seconds"
		return
	}
	defer release()
	p, err := s.finance.allocations.Preview(d.Rule, dayStart(from.Year(), from.Month(), from.Day(), loc),
		dayStart(to.Year(), to.Month(), to.Day()+1, loc))
	switch {
	case err == nil:
		d.Preview = &p
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound):
		d.PreviewProblem = err.Error()
	default:
		s.log.Error().Err(err).Str("rule", d.Rule).Msg("allocation preview for the finance page")
		d.PreviewProblem = "the preview could not be computed; see the gateway's log"
	}
}

// dayStart is the first instant of a date in loc: its midnight, or where
// the clocks skip midnight (America/Santiago's 6 September 2026), the
// instant they move to — time.Date puts a missing 00:00 an hour early, on
// the day before. Out-of-range days and months are normalised as by
// time.Date.
func dayStart(year int, month time.Month, day int, loc *time.Location) time.Time {
	want := time.Date(year, month, day, 12, 0, 0, 0, time.UTC).Format(time.DateOnly)
	t := time.Date(year, month, day, 0, 0, 0, 0, loc)
	// A skipped midnight is at most a few hours' move; step in quarter
	// hours to the first instant carrying the date.
	for i := 0; i < 16 && t.Format(time.DateOnly) != want; i++ {
		t = t.Add(15 * time.Minute).Truncate(15 * time.Minute)
	}
	return t
}

// tenantStatements fills the tenant page's statements, for a role that
// may read them (the statements' endpoint's rule). A failed read is shown
// as such on the page, not as a tenant without statements.
func (s *Server) tenantStatements(r *http.Request, tenant string, d *tenantView) {
	if s.finance.statements == nil || !s.rules["GET /api/v1/accounts/{tenant}/statements"].allows(principalOf(r).Role) {
		return
	}
	list, err := s.finance.statements.List(tenant)
	if err != nil {
		s.log.Error().Err(err).Str("tenant", tenant).Msg("list statements for the tenant page")
		d.StatementsFailed = true
		return
	}
	d.Statements = list
	// The guard has checked the Host against the allowed names: the link
	// names the gateway as the reader reached it.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	d.LinkBase = scheme + "://" + r.Host
}
