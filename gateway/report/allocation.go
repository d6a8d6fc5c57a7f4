package report

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/allocation"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// Allocation is an allocation rule computed over a span: the public
// meters' energy, its cost at the rule's tariff, and each tenant's share.
type Allocation struct {
	Rule     config.Allocation
	From, To time.Time // in site time
	PublicWh int64
	// CostNano is the exact price of the public energy in nano-yuan; Cost
	// is it to the nearest fen, what is shared.
	CostNano int64
	Cost     billing.Money
	Shares   []allocation.Share // tenant id order
}

// ErrAllocation is returned for a rule or span an allocation cannot be
// computed over: an unknown rule, a span that does not run forward or is
// not on quarter hours, nothing to share by.
var ErrAllocation = errors.New("report: allocation refused")

// maxAllocationSpan bounds a computed span: a preview over years would
// read every interval of the rule's meters in one request.
const maxAllocationSpan = 366 * 24 * time.Hour

// ComputeAllocation computes rule over [from, to), which must start and
// end on quarter hours (the interval energy's slots), from the stored
// 15-minute energy of the rule's public meters (each slot priced at the
// rule's tariff in the window it fell in) and, for a consumption basis,
// of each tenant's own meters over the same slots. It writes nothing.
func ComputeAllocation(db *store.DB, cfg *config.Config, rule config.Allocation, from, to time.Time) (Allocation, error) {
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	from, to = from.In(loc), to.In(loc)
	switch {
	case !from.Before(to):
		return Allocation{}, fmt.Errorf("%w: from %s is not before to %s", ErrAllocation, from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.Sub(from) > maxAllocationSpan:
		return Allocation{}, fmt.Errorf("%w: %s to %s is longer than %d days", ErrAllocation, from.Format(time.RFC3339), to.Format(time.RFC3339), maxAllocationSpan/(24*time.Hour))
	case !store.IntervalStart(from).Equal(from) || !store.IntervalStart(to).Equal(to):
		return Allocation{}, fmt.Errorf("%w: from and to must be on a quarter hour (the meters' energy is kept by 15 minutes)", ErrAllocation)
	}
	a := Allocation{Rule: rule, From: from, To: to}
	// The public energy of every meter by slot, so that a tiered tariff
	// sees the rule's month in order.
	firstOfMonth := monthStart(from, loc)
	slots := make(map[int64]int64)
	var monthWh int64 // the rule's energy this month before from
	for _, m := range rule.Meters {
		before, err := db.Intervals(m, firstOfMonth, from)
		if err != nil {
			return Allocation{}, err
		}
		for _, s := range before {
			monthWh += s.Wh
		}
		got, err := db.Intervals(m, from, to)
		if err != nil {
			return Allocation{}, err
		}
		for _, s := range got {
			slots[s.Start.Unix()] += s.Wh
		}
	}
	starts := make([]int64, 0, len(slots))
	for s := range slots {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	month := firstOfMonth
	for _, s := range starts {
		start, wh := time.Unix(s, 0).In(loc), slots[s]
		if wh <= 0 {
			continue
		}
		if ms := monthStart(start, loc); !ms.Equal(month) {
			month, monthWh = ms, 0
		}
		parts, err := rule.Tariff.Split(start, start.Add(store.IntervalLength), wh, monthWh)
		if err != nil {
			return Allocation{}, fmt.Errorf("price %d Wh of %s at %s: %w", wh, rule.Name, start.Format(time.RFC3339), err)
		}
		for _, p := range parts {
			c, err := p.Price.Cost(p.Wh)
			if err != nil {
				return Allocation{}, err
			}
			a.CostNano += c
		}
		a.PublicWh += wh
		monthWh += wh
	}
	cost, err := allocation.RoundFen(a.CostNano)
	if err != nil {
		return Allocation{}, err
	}
	a.Cost = cost
	consumption := false
	for _, w := range rule.Weights {
		consumption = consumption || w.Kind == allocation.Consumption
	}
	tenants := make([]allocation.Tenant, 0, len(rule.Tenants))
	for _, id := range rule.Tenants {
		t := allocation.Tenant{ID: id, AreaCM2: rule.AreaCM2[id], QuotaPPM: rule.Quotas[id]}
		if consumption {
			for _, m := range cfg.Meters {
				if m.Role != config.TenantMeter || m.Tenant != id {
					continue
				}
				got, err := db.Intervals(m.ID, from, to)
				if err != nil {
					return Allocation{}, err
				}
				for _, s := range got {
					t.Wh += s.Wh
				}
			}
		}
		tenants = append(tenants, t)
	}
	a.Shares, err = allocation.Split(a.Cost, rule.Weights, tenants)
	if err != nil {
		return Allocation{}, fmt.Errorf("%w: %s from %s to %s: %w", ErrAllocation, rule.Name, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return a, nil
}

// Posting is what an allocation posts: a store posting of its period,
// named periodName, by actor at now.
func (a Allocation) Posting(periodName, actor string, now time.Time) store.Posting {
	p := store.Posting{Rule: a.Rule.Name, Period: periodName, From: a.From, To: a.To, Basis: a.Rule.Basis,
		Tariff: a.Rule.TariffName, Meters: a.Rule.Meters, PublicWh: a.PublicWh, Cost: a.Cost, Time: now, Actor: actor}
	for _, s := range a.Shares {
		p.Shares = append(p.Shares, store.PostingShare{Tenant: s.Tenant, Basis: allocation.Explain(s), Amount: s.Amount})
	}
	return p
}

// PeriodOf returns the period of rule (a day or a month of the site's
// calendar, loc) that holds t, and its name: "2026-11-30" or "2026-11".
// A period runs from the first instant of its date to the first of the
// next (see midnight): where daylight saving starts at midnight
// (America/Santiago, 6 September 2026) the day starts at 01:00, not at
// the 23:00 the day before that time.Date gives for the missing 00:00.
// The name is the date's, not read back from the start.
func PeriodOf(period string, t time.Time, loc *time.Location) (from, to time.Time, name string) {
	y, m, d := t.In(loc).Date()
	if period == config.PeriodDay {
		return midnight(y, m, d, loc), midnight(y, m, d+1, loc), time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	return midnight(y, m, 1, loc), midnight(y, m+1, 1, loc), time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
}
