package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// ErrPeriod is returned for a month or day that cannot be read
// (want 2026-11 or 2026-11-27).
var ErrPeriod = errors.New("report: bad period")

// Period is the span a finance report covers: one month or one day of the
// site's calendar, midnight to midnight in site.timezone.
type Period struct {
	From, To time.Time
	Label    string // 2026-11 or 2026-11-27
}

// MonthPeriod returns the month named "2026-11" in loc.
// The date is read in UTC and checked there, then its start is found in
// loc (midnight): so a month or day starting where loc's clocks skip
// midnight still reads as itself.
func MonthPeriod(month string, loc *time.Location) (Period, error) {
	t, err := time.Parse("2006-01", month)
	if err != nil || t.Format("2006-01") != month {
		return Period{}, fmt.Errorf("%w: month %q: want YYYY-MM, like 2026-11", ErrPeriod, month)
	}
	return Period{From: midnight(t.Year(), t.Month(), 1, loc), To: midnight(t.Year(), t.Month()+1, 1, loc), Label: month}, nil
}

// DayPeriod returns the day named "2026-11-27" in loc.
// (See MonthPeriod.)
func DayPeriod(day string, loc *time.Location) (Period, error) {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil || t.Format(time.DateOnly) != day {
		return Period{}, fmt.Errorf("%w: day %q: want YYYY-MM-DD, like 2026-11-27", ErrPeriod, day)
	}
	y, m, d := t.Date()
	return Period{From: midnight(y, m, d, loc), To: midnight(y, m, d+1, loc), Label: day}, nil
}

// Figures are one row's sums of the ledger's entries posted in a period.
// Revenue and Allocation are what tenants paid (the entries' debits as
// positive amounts); Reversals and Adjustments keep the ledger's sign (a
// reversed top-up is negative, a reversed charge positive).
type Figures struct {
	ChargeWh    int64         // energy of the charge entries
	Revenue     billing.Money // Σ charges, as a positive amount
	AllocWh     int64         // public-area energy of the allocation entries
	Allocation  billing.Money // Σ allocation entries, as a positive amount
	TopUps      billing.Money
	TopUpCount  int
	Reversals   billing.Money
	Adjustments billing.Money
}

func (f *Figures) add(e store.Entry) {
	switch e.Kind {
	case store.Charge:
		f.ChargeWh += e.Wh
		f.Revenue -= e.Amount
	case store.Allocation:
		f.AllocWh += e.Wh
		f.Allocation -= e.Amount
	case store.TopUp:
		f.TopUps += e.Amount
		f.TopUpCount++
	case store.Reversal:
		f.Reversals += e.Amount
	case store.Adjustment:
		f.Adjustments += e.Amount
	}
}

// Movement is the change the entries made to the balances: top-ups,
// reversals and adjustments in, charges and allocations out.
func (f Figures) Movement() billing.Money {
	return f.TopUps + f.Reversals + f.Adjustments - f.Revenue - f.Allocation
}

// TenantFigures is one account's row.
type TenantFigures struct {
	Tenant, Name, Category string
	Figures
	// Opening and Closing are Σ of the account's entries dated before the
	// period's start and before its end (0 for an account without entries).
	Opening, Closing billing.Money
}

// GroupFigures is a category's row, or a day's.
type GroupFigures struct {
	Name    string
	Tenants int // tenants of the category (0 for a day)
	Figures
}

// WindowFigures is the charges of one tariff window.
type WindowFigures struct {
	Window  string
	Wh      int64
	Revenue billing.Money
}

// TopUpGroup is the top-ups of one channel or one operator.
type TopUpGroup struct {
	Name   string
	Count  int
	Amount billing.Money
}

// Finance is the finance office's report of one period. Every entry
// counts by its date (Entry.Time: a charge's is its slot's last reading,
// a top-up's or a correction's when it was posted), not by its id: so the
// period's entries are exactly what moved the balances from Opening to
// Closing, and a month's report reconciles with the next month's. (A
// meter offline across midnight is charged when it is read again: its
// energy counts on that day, not spread back; the tenant's usage chart,
// which counts by the time energy was used, may place it a day earlier.)
type Finance struct {
	Site     string
	Timezone string
	Period   Period
	Total    Figures
	// Days has a row per day of the period (one for a day's report).
	Days        []GroupFigures
	Tenants     []TenantFigures
	Categories  []GroupFigures
	Windows     []WindowFigures
	Channels    []TopUpGroup
	Operators   []TopUpGroup
	TopUps      []store.Entry // the reconciliation list, by id
	Corrections []Correction  // reversals and adjustments, by id
	// Reversed is Σ of the period's reversals by the kind of entry each
	// undid, with the reversals' sign: a reversed charge (refunded) is
	// positive, a reversed top-up negative.
	Reversed map[store.Kind]billing.Money
	// Opening and Closing are Σ of every account's balance at the
	// period's start and end; Liability is Σ of the positive balances at
	// the end (prepaid money the mall holds), Receivables Σ of the
	// negative ones as a positive amount (what tenants owe).
	Opening, Closing       billing.Money
	Liability, Receivables billing.Money
	// Energy is the building's balance over the period.
	Energy BalanceReport
}

// Correction is a reversal or an adjustment, and for a reversal the kind
// of entry it undid ("" when that entry is not in the account's ledger).
type Correction struct {
	store.Entry
	ReversedKind store.Kind
}

// NetRevenue is the charges less the reversals of charges.
func (f *Finance) NetRevenue() billing.Money { return f.Total.Revenue - f.Reversed[store.Charge] }

// Source is what a finance report reads; *store.DB implements it.
type Source interface {
	Intervals
	Ledger
}

// Words of the report for what has no name: Unconfigured is the category
// of an account whose tenant is no longer in the configuration, NoWindow
// the window of a charge without one, NoActor the operator of a top-up
// that names none.
const (
	Unconfigured = "(not configured)"
	NoWindow     = "(none)"
	NoActor      = "(unknown)"
	// NotFound is the reversed kind of a reversal whose entry is not in
	// its account's ledger (verify reports such a reversal).
	NotFound = "(not found)"
)

// BuildFinance reads the ledger and the interval energy into the report of
// p. It reads each account's entries of the period (and a few to find
// them; see readSpan), one account after another: entries never change, so
// a period that has ended is reported exactly; one still running counts
// what each account held when it was read. It stops with ctx's error when
// ctx ends (checked before each account and each page of its ledger): a
// client gone away or a gateway stopping does not wait for the build.
func BuildFinance(ctx context.Context, src Source, cfg *config.Config, p Period) (*Finance, error) {
	loc := siteLocation(cfg)
	f := &Finance{Site: cfg.Site.Name, Timezone: loc.String(), Period: p, Reversed: make(map[store.Kind]billing.Money)}
	var dayStarts []time.Time
	for _, d := range siteDays(p.From, p.To, loc) {
		dayStarts = append(dayStarts, d.Start)
		f.Days = append(f.Days, GroupFigures{Name: d.Label})
	}
	// dayOf is the row of the day holding t, From <= t < To.
	dayOf := func(t time.Time) int {
		return sort.Search(len(dayStarts), func(i int) bool { return dayStarts[i].After(t) }) - 1
	}
	tenants := make(map[string]*TenantFigures)
	tenantOf := func(id string) *TenantFigures {
		t := tenants[id]
		if t == nil {
			t = &TenantFigures{Tenant: id, Category: Unconfigured}
			if c, ok := cfg.Tenant(id); ok {
				t.Name, t.Category = c.Name, c.Category
			}
			tenants[id] = t
		}
		return t
	}
	for _, c := range cfg.Tenants {
		tenantOf(c.ID)
	}
	windows := make(map[string]*WindowFigures)
	channels := make(map[string]*TopUpGroup)
	operators := make(map[string]*TopUpGroup)
	group := func(m map[string]*TopUpGroup, name string, amount billing.Money) {
		g := m[name]
		if g == nil {
			g = &TopUpGroup{Name: name}
			m[name] = g
		}
		g.Count++
		g.Amount += amount
	}
	accounts, err := src.Accounts()
	if err != nil {
		return nil, fmt.Errorf("report: read the accounts: %w", err)
	}
	for _, a := range accounts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("report: finance %s: %w", p.Label, err)
		}
		span, err := readSpan(ctx, src, a, p.From, p.To, entriesPage)
		if err != nil {
			return nil, fmt.Errorf("report: read the ledger: %w", err)
		}
		t := tenantOf(a.ID)
		t.Opening, t.Closing = span.Opening, span.Closing
		for _, e := range span.Entries {
			t.add(e)
			f.Total.add(e)
			f.Days[dayOf(e.Time)].add(e)
			switch e.Kind {
			case store.Charge:
				name := e.Window
				if name == "" {
					name = NoWindow
				}
				w := windows[name]
				if w == nil {
					w = &WindowFigures{Window: name}
					windows[name] = w
				}
				w.Wh += e.Wh
				w.Revenue -= e.Amount
			case store.TopUp:
				group(channels, e.Channel, e.Amount)
				actor := e.Actor
				if actor == "" {
					actor = NoActor
				}
				group(operators, actor, e.Amount)
				f.TopUps = append(f.TopUps, e)
			case store.Adjustment:
				f.Corrections = append(f.Corrections, Correction{Entry: e})
			case store.Reversal:
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("report: finance %s: %w", p.Label, err)
				}
				kind, err := reversedKind(src, span.Entries, e)
				if err != nil {
					return nil, fmt.Errorf("report: read the ledger: %w", err)
				}
				f.Reversed[kind] += e.Amount
				f.Corrections = append(f.Corrections, Correction{Entry: e, ReversedKind: kind})
			}
		}
	}
	byID(f.TopUps)
	sort.Slice(f.Corrections, func(i, j int) bool { return f.Corrections[i].ID < f.Corrections[j].ID })
	categories := make(map[string]*GroupFigures)
	for _, t := range tenants {
		f.Tenants = append(f.Tenants, *t)
		c := categories[t.Category]
		if c == nil {
			c = &GroupFigures{Name: t.Category}
			categories[t.Category] = c
		}
		c.Tenants++
		c.Figures = c.Figures.plus(t.Figures)
		f.Opening += t.Opening
		f.Closing += t.Closing
		if t.Closing > 0 {
			f.Liability += t.Closing
		} else {
			f.Receivables -= t.Closing
		}
	}
	sort.Slice(f.Tenants, func(i, j int) bool { return f.Tenants[i].Tenant < f.Tenants[j].Tenant })
	f.Categories = sortedValues(categories, func(g GroupFigures) string { return g.Name })
	f.Windows = sortedValues(windows, func(w WindowFigures) string { return w.Window })
	f.Channels = sortedValues(channels, func(g TopUpGroup) string { return g.Name })
	f.Operators = sortedValues(operators, func(g TopUpGroup) string { return g.Name })
	if f.Energy, err = Balance(ctx, src, cfg, p.From, p.To); err != nil {
		return nil, err
	}
	return f, nil
}

func (f Figures) plus(g Figures) Figures {
	return Figures{
		ChargeWh: f.ChargeWh + g.ChargeWh, Revenue: f.Revenue + g.Revenue,
		AllocWh: f.AllocWh + g.AllocWh, Allocation: f.Allocation + g.Allocation,
		TopUps: f.TopUps + g.TopUps, TopUpCount: f.TopUpCount + g.TopUpCount,
		Reversals: f.Reversals + g.Reversals, Adjustments: f.Adjustments + g.Adjustments,
	}
}

func sortedValues[T any](m map[string]*T, key func(T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

// ErrFormat is returned by Write for a format it does not write.
var ErrFormat = errors.New("report: unknown format (want xlsx or csv)")

// ParsePeriod reads a month (2026-11) or a day (2026-11-27) of loc's
// calendar.
func ParsePeriod(s string, loc *time.Location) (Period, error) {
	if len(s) == len("2006-01") {
		return MonthPeriod(s, loc)
	}
	return DayPeriod(s, loc)
}

// Write writes the report in format: "xlsx" (WriteXLSX) or "csv"
// (WriteCSV).
func (f *Finance) Write(w io.Writer, format string) error {
	switch format {
	case "xlsx":
		return WriteXLSX(w, f.Tables())
	case "csv":
		return WriteCSV(w, f.Tables())
	}
	return fmt.Errorf("%w: %q", ErrFormat, format)
}
