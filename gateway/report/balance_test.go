package report

import (
	"context"
	"testing"
	"time"

	"mallgrid/billing"
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
	r, err := Balance(context.Background(), src, cfg, d(11, 30, 13, 0), d(12, 2, 6, 0))
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

	if _, err := Balance(context.Background(), src, cfg, d(12, 2, 0, 0), d(12, 2, 0, 0)); err == nil {
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
	r, err := Balance(context.Background(), src, cfg, time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), time.Date(2026, 3, 31, 0, 0, 0, 0, berlin))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Days) != 2 || r.Days[0].MainWh != 5 || r.Days[1].MainWh != 7 || r.Days[0].To.Sub(r.Days[0].From) != 23*time.Hour {
		t.Errorf("days %+v; want 5 Wh on the 29th (23 hours long), 7 on the 30th", r.Days)
	}
}

// TestReport_DaylightSavingAtMidnight: in America/Santiago daylight saving
// starts on 6 September 2026 at midnight (00:00 −04 becomes 01:00 −03), so
// that day starts at 01:00 and has 23 hours. Its day's report reads as
// itself, the month has each date once, each day's row starts at its own
// first instant and holds its entries and slots.
func TestReport_DaylightSavingAtMidnight(t *testing.T) {
	santiago := mustZone("America/Santiago")
	cfg := newMallConfig(t, t.TempDir())
	cfg.Location = santiago
	cfg.Site.Timezone = "America/Santiago"
	db := openDB(t, cfg)
	local := func(day, hour, minute int) time.Time { return time.Date(2026, 9, day, hour, minute, 0, 0, santiago) }
	sep6 := time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC) // 01:00 −03
	if got := local(6, 1, 0); !got.Equal(sep6) {
		t.Fatalf("the zone's data: 6 September 01:00 is %s", got.UTC())
	}
	for i, c := range []struct {
		when time.Time
		day  string
	}{
		{local(5, 23, 30), "2026-09-05"}, // −04
		{sep6.Add(30 * time.Minute), "2026-09-06"},
		{local(6, 23, 30), "2026-09-06"},
		{local(7, 0, 30), "2026-09-07"},
	} {
		if _, _, err := db.PostTopUp(store.Entry{Time: c.when, Account: "T-101", Kind: store.TopUp,
			Amount: billing.Money(i+1) * billing.Yuan, Ref: "R" + itoa(i), Channel: "cash"}); err != nil {
			t.Fatal(err)
		}
	}

	// The day's checks go on to the month's when it fails: the days of
	// September tell more than the one.
	if day, err := DayPeriod("2026-09-06", santiago); err != nil {
		t.Error(err)
	} else {
		if !day.From.Equal(sep6) || !day.To.Equal(local(7, 0, 0)) {
			t.Errorf("2026-09-06: %s to %s, want %s to %s", day.From, day.To, sep6, local(7, 0, 0))
		}
		f, err := BuildFinance(context.Background(), db, cfg, day)
		if err != nil {
			t.Fatal(err)
		}
		if f.Total.TopUps != 5*billing.Yuan || len(f.Days) != 1 || f.Days[0].Name != "2026-09-06" {
			t.Errorf("2026-09-06: top-ups %s in days %v, want 5.00 in 2026-09-06", f.Total.TopUps, f.Days)
		}
	}
	if before, err := DayPeriod("2026-09-05", santiago); err != nil {
		t.Error(err)
	} else if !before.To.Equal(sep6) {
		t.Errorf("2026-09-05 ends at %s, want %s", before.To, sep6)
	}

	month, err := MonthPeriod("2026-09", santiago)
	if err != nil {
		t.Fatal(err)
	}
	f, err := BuildFinance(context.Background(), db, cfg, month)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Days) != 30 {
		t.Fatalf("September has %d days", len(f.Days))
	}
	want := map[string]billing.Money{"2026-09-05": 1, "2026-09-06": 5, "2026-09-07": 4}
	for i, d := range f.Days {
		if name := time.Date(2026, 9, i+1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly); d.Name != name {
			t.Errorf("day %d is %s, want %s", i, d.Name, name)
		}
		if d.TopUps != want[d.Name]*billing.Yuan {
			t.Errorf("%s: top-ups %s, want %s", d.Name, d.TopUps, want[d.Name]*billing.Yuan)
		}
	}

	src := slots{"M-101": {{Start: local(5, 23, 45), Wh: 100}, {Start: sep6, Wh: 200}, {Start: local(7, 0, 0), Wh: 400}}}
	b, err := Balance(context.Background(), src, cfg, local(5, 12, 0), local(7, 12, 0))
	if err != nil {
		t.Fatal(err)
	}
	wantDays := []EnergyBalance{
		{From: local(5, 0, 0), To: sep6, Label: "2026-09-05", TenantWh: 100},
		{From: sep6, To: local(7, 0, 0), Label: "2026-09-06", TenantWh: 200},
		{From: local(7, 0, 0), To: local(8, 0, 0), Label: "2026-09-07", TenantWh: 400},
	}
	if len(b.Days) != len(wantDays) {
		t.Fatalf("balance days %+v, want %+v", b.Days, wantDays)
	}
	for i, d := range b.Days {
		w := wantDays[i]
		if d.Label != w.Label || !d.From.Equal(w.From) || !d.To.Equal(w.To) || d.TenantWh != w.TenantWh {
			t.Errorf("balance day %d: %s %s..%s %d Wh, want %s %s..%s %d Wh", i, d.Label, d.From, d.To, d.TenantWh, w.Label, w.From, w.To, w.TenantWh)
		}
	}
}
