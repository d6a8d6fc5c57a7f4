package report

import (
	"testing"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// slots is Intervals from a map: the balance's arithmetic alone.
type slots map[string][]store.Interval

func (s slots) Intervals(meter string, from, to time.Time) ([]store.Interval, error) {
	var out []store.Interval
	for _, i := range s[meter] {
		if !i.Start.Before(from) && i.Start.Before(to) {
			out = append(out, i)
		}
	}
	return out, nil
}

func TestBalance_DaysMonthsAndMains(t *testing.T) {
	cfg := &config.Config{Location: shanghai, Meters: []config.Meter{
		{ID: "MAIN-A", Role: config.MainMeter}, {ID: "MAIN-B", Role: config.MainMeter},
		{ID: "T1", Role: config.TenantMeter, Tenant: "T-1"}, {ID: "P1", Role: config.PublicMeter},
	}}
	d := func(month time.Month, day, hour, minute int) time.Time {
		return time.Date(2026, month, day, hour, minute, 0, 0, shanghai)
	}
	src := slots{
		// Both mains count: their sum is the building's.
		"MAIN-A": {{Start: d(11, 30, 0, 0), Wh: 600}, {Start: d(11, 30, 23, 45), Wh: 400}, {Start: d(12, 1, 0, 0), Wh: 2000}},
		"MAIN-B": {{Start: d(11, 30, 12, 0), Wh: 100}},
		"T1":     {{Start: d(11, 30, 8, 0), Wh: 700}, {Start: d(12, 1, 0, 0), Wh: 1500}, {Start: d(12, 2, 0, 0), Wh: 300}},
		"P1":     {{Start: d(11, 30, 9, 0), Wh: 200}, {Start: d(12, 1, 23, 45), Wh: 400}},
	}
	// From the middle of the 30th to the middle of 2 December: cut to the
	// whole days holding them.
	r, err := Balance(src, cfg, d(11, 30, 13, 0), d(12, 2, 6, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !r.From.Equal(d(11, 30, 0, 0)) || !r.To.Equal(d(12, 3, 0, 0)) {
		t.Errorf("span %v..%v; want the 30th's midnight to the 3rd's", r.From, r.To)
	}
	type want struct {
		label                     string
		main, tenant, public, unm int64
		pct                       string
	}
	check := func(got EnergyBalance, w want) {
		t.Helper()
		bp, ok := got.LossBP()
		pct := ""
		if ok {
			pct = decimal(bp, 2)
		}
		if got.Label != w.label || got.MainWh != w.main || got.TenantWh != w.tenant || got.PublicWh != w.public || got.UnmeteredWh() != w.unm || pct != w.pct {
			t.Errorf("%s: main %d tenant %d public %d unmetered %d (%s %%); want %+v", got.Label, got.MainWh, got.TenantWh, got.PublicWh, got.UnmeteredWh(), pct, w)
		}
	}
	if len(r.Days) != 3 || len(r.Months) != 2 {
		t.Fatalf("%d days, %d months; want 3 and 2", len(r.Days), len(r.Months))
	}
	check(r.Days[0], want{"2026-11-30", 1100, 700, 200, 200, "18.18"})
	check(r.Days[1], want{"2026-12-01", 2000, 1500, 400, 100, "5.00"})
	check(r.Days[2], want{"2026-12-02", 0, 300, 0, -300, ""}) // no mains: no per cent
	check(r.Months[0], want{"2026-11", 1100, 700, 200, 200, "18.18"})
	check(r.Months[1], want{"2026-12", 2000, 1800, 400, -200, "-10.00"})
	check(r.Total, want{"total", 3100, 2500, 600, 0, "0.00"})
	if !r.Months[0].From.Equal(d(11, 30, 0, 0)) || !r.Months[1].To.Equal(d(12, 3, 0, 0)) {
		t.Errorf("months %v..%v, %v..%v: a month cut by the span is the part inside it", r.Months[0].From, r.Months[0].To, r.Months[1].From, r.Months[1].To)
	}

	if _, err := Balance(src, cfg, d(12, 2, 0, 0), d(12, 2, 0, 0)); err == nil {
		t.Error("an empty span: no error")
	}
}

// TestBalance_DaylightSaving: a day is midnight to midnight of the site,
// 23 hours on the day clocks go forward; a slot at 23:30 that day belongs
// to it, not to the next.
func TestBalance_DaylightSaving(t *testing.T) {
	berlin := mustZone("Europe/Berlin")
	cfg := &config.Config{Location: berlin, Meters: []config.Meter{{ID: "MAIN", Role: config.MainMeter}}}
	late := time.Date(2026, 3, 29, 23, 30, 0, 0, berlin)
	src := slots{"MAIN": {{Start: late, Wh: 5}, {Start: late.Add(30 * time.Minute), Wh: 7}}}
	r, err := Balance(src, cfg, time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), time.Date(2026, 3, 31, 0, 0, 0, 0, berlin))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Days) != 2 || r.Days[0].MainWh != 5 || r.Days[1].MainWh != 7 || r.Days[0].To.Sub(r.Days[0].From) != 23*time.Hour {
		t.Errorf("days %+v; want 5 Wh on the 29th (23 hours long), 7 on the 30th", r.Days)
	}
}
