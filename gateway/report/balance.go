package report

import (
	"context"
	"fmt"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// EnergyBalance is the building's balance over one span: what the main
// meters took from the grid against what the tenants' and public meters
// measured. Unmetered is the difference (losses in cables and
// transformers, unmetered loads, theft, a meter that failed); it is
// negative when the sub-meters measured more than the mains.
type EnergyBalance struct {
	From, To time.Time
	Label    string // 2026-11-27 for a day, 2026-11 for a month, "total"
	MainWh   int64  // Σ of the main meters
	TenantWh int64  // Σ of the tenants' meters
	PublicWh int64  // Σ of the public-area meters
}

// MeteredWh is the sub-meters' sum: tenants' and public areas'.
func (b EnergyBalance) MeteredWh() int64 { return b.TenantWh + b.PublicWh }

// UnmeteredWh is the mains' energy the sub-meters did not measure.
func (b EnergyBalance) UnmeteredWh() int64 { return b.MainWh - b.MeteredWh() }

// LossBP is UnmeteredWh as hundredths of a per cent of MainWh; ok is false
// when the mains measured nothing (no main meter, or no data).
func (b EnergyBalance) LossBP() (bp int64, ok bool) { return ratio(b.UnmeteredWh(), b.MainWh) }

// BalanceReport is the building's balance from From to To, per day and per
// month of the site's calendar, and in all.
type BalanceReport struct {
	From, To time.Time
	// Mains, Tenants and Public are the configured meters of each role.
	Mains, Tenants, Public []string
	Days                   []EnergyBalance
	Months                 []EnergyBalance
	Total                  EnergyBalance
}

// Intervals is the part of the store the balance reads; *store.DB
// implements it.
type Intervals interface {
	// Intervals returns meter's 15-minute slots with from <= start < to.
	Intervals(meter string, from, to time.Time) ([]store.Interval, error)
}

// Balance computes the building's balance from the 15-minute interval
// energy the pipeline accepted for billing (the same energy the charges
// are priced from). from and to are cut to the site's days: the balance
// runs from the midnight starting from's day to the midnight ending the
// day before to, or to itself when it is a midnight. A slot counts in the
// day its start falls in. A meter's missing slots (it was offline and its
// energy came later, in the slot it was read) are not spread back: over a
// day that straddles an outage the balance may show a loss one day and a
// gain the next, and over the month it evens out. It stops with ctx's
// error when ctx ends, checked before each meter.
func Balance(ctx context.Context, src Intervals, cfg *config.Config, from, to time.Time) (BalanceReport, error) {
	loc := siteLocation(cfg)
	start := dayStart(from, loc)
	end := dayStart(to, loc)
	if end.Before(to) {
		end = nextDayStart(end, loc)
	}
	if !start.Before(end) {
		return BalanceReport{}, fmt.Errorf("%w: balance from %s to %s: an empty span", ErrPeriod, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	r := BalanceReport{From: start, To: end}
	for _, m := range cfg.Meters {
		switch m.Role {
		case config.MainMeter:
			r.Mains = append(r.Mains, m.ID)
		case config.PublicMeter:
			r.Public = append(r.Public, m.ID)
		default:
			r.Tenants = append(r.Tenants, m.ID)
		}
	}
	for _, d := range siteDays(start, end, loc) {
		r.Days = append(r.Days, EnergyBalance{From: d.Start, To: d.End, Label: d.Label})
	}
	add := func(ids []string, field func(*EnergyBalance) *int64) error {
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("report: balance: %w", err)
			}
			slots, err := src.Intervals(id, start, end)
			if err != nil {
				return fmt.Errorf("report: intervals of meter %s: %w", id, err)
			}
			i := 0
			for _, s := range slots {
				for i < len(r.Days) && !s.Start.Before(r.Days[i].To) {
					i++
				}
				if i == len(r.Days) {
					break
				}
				*field(&r.Days[i]) += s.Wh
			}
		}
		return nil
	}
	if err := add(r.Mains, func(b *EnergyBalance) *int64 { return &b.MainWh }); err != nil {
		return BalanceReport{}, err
	}
	if err := add(r.Tenants, func(b *EnergyBalance) *int64 { return &b.TenantWh }); err != nil {
		return BalanceReport{}, err
	}
	if err := add(r.Public, func(b *EnergyBalance) *int64 { return &b.PublicWh }); err != nil {
		return BalanceReport{}, err
	}
	r.Total = EnergyBalance{From: start, To: end, Label: "total"}
	for _, d := range r.Days {
		ms := monthStart(d.From, loc)
		if n := len(r.Months); n == 0 || !r.Months[n-1].From.Equal(ms) {
			// A month cut by the span is the part of it inside the span.
			from := ms
			if from.Before(start) {
				from = start
			}
			r.Months = append(r.Months, EnergyBalance{From: from, Label: ms.Format("2006-01")})
		}
		m := &r.Months[len(r.Months)-1]
		m.To = d.To
		m.MainWh += d.MainWh
		m.TenantWh += d.TenantWh
		m.PublicWh += d.PublicWh
		r.Total.MainWh += d.MainWh
		r.Total.TenantWh += d.TenantWh
		r.Total.PublicWh += d.PublicWh
	}
	return r, nil
}

// siteLocation is site.timezone, UTC for a configuration without one.
func siteLocation(cfg *config.Config) *time.Location {
	if cfg == nil || cfg.Location == nil {
		return time.UTC
	}
	return cfg.Location
}

// dayStart is the start of t's day in loc.
func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return midnight(y, m, d, loc)
}

// nextDayStart is the start of the day after t's in loc.
func nextDayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return midnight(y, m, d+1, loc)
}

// monthStart is the start of t's month in loc.
func monthStart(t time.Time, loc *time.Location) time.Time {
	y, m, _ := t.In(loc).Date()
	return midnight(y, m, 1, loc)
}

// midnight is the first instant of the day y-m-d (normalised: day 32 is
// the next month's first) in loc: its 00:00, or where a zone's clocks
// skip 00:00 — America/Santiago's daylight saving starts at midnight, the
// clocks going from 23:59:59 to 01:00 — the instant they move, 01:00.
// time.Date puts the 00:00 that does not exist an hour early, on the day
// before, so days stepped from it by AddDate start an hour early or late
// and a day's date read back from its start is the day before's.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	y, m, d = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if ty, tm, td := t.Date(); ty != y || tm != m || td != d {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}

// siteDay is one day of the site's calendar.
type siteDay struct {
	Label      string // its date, 2026-09-06
	Start, End time.Time
}

// siteDays is every day of loc's calendar starting in [from, to), from
// the day holding from; each is labelled by its date, not by its start's
// (see midnight), and ends where the next starts.
func siteDays(from, to time.Time, loc *time.Location) []siteDay {
	y, m, d := from.In(loc).Date()
	var out []siteDay
	for i := 0; ; i++ {
		start := midnight(y, m, d+i, loc)
		if !start.Before(to) {
			return out
		}
		label := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		out = append(out, siteDay{Label: label, Start: start, End: midnight(y, m, d+i+1, loc)})
	}
}
