package report

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// allocYAML is a mall with two public meters priced by time of use (peak
// 1.00 from 08:00, valley 0.40 before) and two tenants; rule corridors
// shares M-PUB by area every month, rule daily M-HALL by consumption
// every day (a public meter is shared by one rule: its energy is charged
// once).
const allocYAML = `site: {name: M, timezone: Asia/Shanghai}
buses: [{name: b, port: /dev/ttyUSB0}]
meters:
  - {id: M-PUB, bus: b, address: 1, model: kpm33b, role: public}
  - {id: M-HALL, bus: b, address: 4, model: kpm33b, role: public}
  - {id: M-1, bus: b, address: 2, model: kpm33b, tenant: T-1}
  - {id: M-2, bus: b, address: 3, model: kpm33b, tenant: T-2}
tenants:
  - {id: T-1, name: One, area_m2: 30}
  - {id: T-2, name: Two, area_m2: 10}
tariffs:
  - name: standard
    kind: tou
    rates: {peak: '1.00', valley: '0.40'}
    days: [{days: all, windows: [{from: '00:00', to: '08:00', rate: valley}, {from: '08:00', to: '24:00', rate: peak}]}]
allocation:
  - {name: corridors, meters: [M-PUB], basis: area}
  - {name: daily, meters: [M-HALL], basis: consumption, period: day}
`

var allocSH = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

func allocMall(t *testing.T) (*store.DB, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("m.yaml", []byte(allocYAML+"storage: {path: "+filepath.Join(dir, "m.db")+"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, cfg
}

func allocEnergy(t *testing.T, db *store.DB, e ...store.IntervalEnergy) {
	t.Helper()
	if _, err := db.CommitCycle(store.Cycle{Energy: e}); err != nil {
		t.Fatal(err)
	}
}

// Each quarter hour is priced in the window it fell in: 10 kWh at 07:45
// (valley, 4.00) and 10 kWh at 08:00 (peak, 10.00) cost 14.00, shared 3:1
// by area.
func TestComputeAllocation_PricedByWindow(t *testing.T) {
	db, cfg := allocMall(t)
	day := time.Date(2026, 11, 3, 0, 0, 0, 0, allocSH)
	allocEnergy(t, db, store.IntervalEnergy{Meter: "M-PUB", Time: day.Add(7*time.Hour + 45*time.Minute), Wh: 10_000},
		store.IntervalEnergy{Meter: "M-PUB", Time: day.Add(8 * time.Hour), Wh: 10_000},
		store.IntervalEnergy{Meter: "M-HALL", Time: day.Add(8 * time.Hour), Wh: 10_000})
	rule, _ := cfg.AllocationNamed("corridors")
	a, err := ComputeAllocation(db, cfg, rule, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if a.PublicWh != 20_000 || a.Cost != 14*billing.Yuan || len(a.Shares) != 2 ||
		a.Shares[0].Amount != 10_50*billing.Fen || a.Shares[1].Amount != 3_50*billing.Fen {
		t.Errorf("got %d Wh, cost %s, shares %+v; want 20000 Wh, 14.00, T-1 10.50 and T-2 3.50", a.PublicWh, a.Cost, a.Shares)
	}
	// Only what lies inside the span counts.
	a, err = ComputeAllocation(db, cfg, rule, day.Add(8*time.Hour), day.AddDate(0, 0, 1))
	if err != nil || a.PublicWh != 10_000 || a.Cost != 10*billing.Yuan {
		t.Errorf("from 08:00: %d Wh, %s, %v; want 10000 Wh, 10.00", a.PublicWh, a.Cost, err)
	}
	for _, bad := range [][2]time.Time{
		{day.AddDate(0, 0, 1), day},                  // backwards
		{day.Add(time.Minute), day.AddDate(0, 0, 1)}, // not on a quarter hour
		{day, day.AddDate(2, 0, 0)},                  // beyond a year
	} {
		if _, err := ComputeAllocation(db, cfg, rule, bad[0], bad[1]); !errors.Is(err, ErrAllocation) {
			t.Errorf("%s to %s: got %v; want ErrAllocation", bad[0], bad[1], err)
		}
	}
	// By consumption with no tenant energy, a cost cannot be shared.
	daily, _ := cfg.AllocationNamed("daily")
	if _, err := ComputeAllocation(db, cfg, daily, day, day.AddDate(0, 0, 1)); !errors.Is(err, ErrAllocation) {
		t.Errorf("consumption basis without consumption: got %v; want ErrAllocation", err)
	}
}

// PostDue posts each finished period once its settle time has passed —
// every day missed while the gateway was down, in order — starting a new
// rule at the period that ended last before now (at Nov 4 00:10, Nov 3,
// not yet settled: not Nov 2); a second call posts nothing.
func TestAllocator_PostDue(t *testing.T) {
	db, cfg := allocMall(t)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, allocSH)
	for d := 0; d < 10; d++ {
		day := start.AddDate(0, 0, d)
		allocEnergy(t, db, store.IntervalEnergy{Meter: "M-PUB", Time: day.Add(9 * time.Hour), Wh: 1000},
			store.IntervalEnergy{Meter: "M-HALL", Time: day.Add(9 * time.Hour), Wh: 1000})
		if d != 4 { // on Nov 5 the corridors were lit and no shop drew anything
			allocEnergy(t, db, store.IntervalEnergy{Meter: "M-1", Time: day.Add(10 * time.Hour), Wh: 300},
				store.IntervalEnergy{Meter: "M-2", Time: day.Add(10 * time.Hour), Wh: 100})
		}
	}
	now := start.AddDate(0, 0, 3).Add(10 * time.Minute) // Nov 4 00:10: Nov 3 not yet settled
	ctx := context.Background()
	woken := 0
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop(), Posted: func() { woken++ }}
	if n := a.PostDue(ctx, now); n != 1 {
		t.Fatalf("first pass posted %d; want 1 (October for corridors; daily starts with Nov 3, not settled)", n)
	}
	if woken != 1 {
		t.Errorf("enforcement woken %d times; want once a posting", woken)
	}
	now = now.Add(10 * time.Minute) // 00:20: Nov 3 has settled
	if n := a.PostDue(ctx, now); n != 1 {
		t.Fatalf("at 00:20 posted %d; want 1 (Nov 3 for daily)", n)
	}
	postings, err := a.Postings()
	if err != nil {
		t.Fatal(err)
	}
	if len(postings) != 2 || postings[0].Period != "2026-11-03" || postings[0].Cost != "1.00" || postings[1].Period != "2026-10" || postings[1].Cost != "0.00" {
		t.Fatalf("postings %+v", postings)
	}
	// Down until Nov 8 08:00: Nov 4 to Nov 7 are posted, in order, but for
	// Nov 5, which has no consumption to share by: it is left for finance,
	// and the days after it go on.
	now = start.AddDate(0, 0, 7).Add(8 * time.Hour)
	if n := a.PostDue(ctx, now); n != 3 {
		t.Errorf("after the downtime posted %d; want 3", n)
	}
	if _, _, err := a.Post(context.Background(), "daily", start.AddDate(0, 0, 4), "token:books"); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("Nov 5 by hand: got %v; want ErrInvalid with the reason", err)
	}
	if n := a.PostDue(ctx, now); n != 0 {
		t.Errorf("a second pass posted %d; want 0", n)
	}
	last, ok, err := db.LatestPosting("daily")
	if err != nil || !ok || last.Period != "2026-11-07" || last.Shares[0].Amount != 75*billing.Fen {
		t.Errorf("daily's last posting: %+v, %v, %v; want Nov 7, T-1 0.75", last, ok, err)
	}
	// A reversed period is not posted again by the poster, only by hand.
	if _, err := a.Reverse(context.Background(), last.ID, "meter re-read", "token:books"); err != nil {
		t.Fatal(err)
	}
	if n := a.PostDue(ctx, now); n != 0 {
		t.Errorf("after a reversal the poster posted %d; want 0", n)
	}
	if _, existing, err := a.Post(context.Background(), "daily", last.From, "token:books"); err != nil || existing {
		t.Errorf("post by hand after the reversal: existing %v, %v", existing, err)
	}
	// The poster sleeps until the next period is due, or maxPostingWait.
	if n := a.nextDue(now); !n.Equal(now.Add(maxPostingWait)) {
		t.Errorf("next due at %s: %s; want %s", now, n, now.Add(maxPostingWait))
	}
	at := start.AddDate(0, 0, 8).Add(10 * time.Minute)
	if n := a.nextDue(at); !n.Equal(start.AddDate(0, 0, 8).Add(PostingSettle)) {
		t.Errorf("next due at %s: %s; want Nov 9 00:15", at, n)
	}
}

// Run posts what is due at once and returns when its context ends.
func TestAllocator_Run_StopsOnCancel(t *testing.T) {
	db, cfg := allocMall(t)
	now := time.Date(2026, 11, 4, 1, 0, 0, 0, allocSH)
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, _ := db.LatestPosting("corridors"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run posted nothing at its start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// postDue runs a.PostDue at now, failing the test if it has not returned
// 10 seconds after its context was cancelled (a pass that never ends).
func postDue(t *testing.T, a *Allocator, now time.Time) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- a.PostDue(ctx, now) }()
	select {
	case n := <-done:
		if ctx.Err() != nil {
			t.Fatalf("PostDue at %s ran until its context was cancelled", now)
		}
		return n
	case <-time.After(15 * time.Second):
		t.Fatalf("PostDue at %s did not return", now)
		return 0
	}
}

// Where daylight saving starts at midnight (America/Santiago, 6 September
// 2026: 00:00 becomes 01:00), each day runs from its date's first
// instant to the next's — the 6th from 01:00, 23 hours — and is named by
// its date; the poster goes through it and stops, and the 6th posted by
// hand is the 6th. Months likewise.
func TestAllocator_PostDue_MidnightDST(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	yaml := strings.Replace(allocYAML, "Asia/Shanghai", "America/Santiago", 1) + "storage: {path: " + filepath.Join(dir, "m.db") + "}\n"
	cfg, err := config.Parse("m.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for d := 4; d <= 8; d++ {
		noon := time.Date(2026, 9, d, 12, 0, 0, 0, santiago)
		allocEnergy(t, db, store.IntervalEnergy{Meter: "M-HALL", Time: noon, Wh: 1000},
			store.IntervalEnergy{Meter: "M-PUB", Time: noon, Wh: 1000},
			store.IntervalEnergy{Meter: "M-1", Time: noon, Wh: 300})
	}
	var now time.Time
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop()}
	now = time.Date(2026, 9, 5, 12, 0, 0, 0, santiago)
	if n := postDue(t, a, now); n != 2 {
		t.Fatalf("at Sep 5 noon posted %d; want 2 (August, Sep 4)", n)
	}
	now = time.Date(2026, 9, 8, 12, 0, 0, 0, santiago)
	if n := postDue(t, a, now); n != 3 {
		t.Fatalf("at Sep 8 noon posted %d; want 3 (Sep 5, 6 and 7)", n)
	}
	six := time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC) // 01:00 -03, the 6th's first instant
	days := map[string][2]time.Time{}
	var sixth store.Posting
	if err := db.EachPosting(func(p store.Posting) error {
		if p.Rule == "daily" {
			days[p.Period] = [2]time.Time{p.From, p.To}
			if p.Period == "2026-09-06" {
				sixth = p
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]time.Time{
		"2026-09-04": {time.Date(2026, 9, 4, 4, 0, 0, 0, time.UTC), time.Date(2026, 9, 5, 4, 0, 0, 0, time.UTC)},
		"2026-09-05": {time.Date(2026, 9, 5, 4, 0, 0, 0, time.UTC), six},
		"2026-09-06": {six, time.Date(2026, 9, 7, 3, 0, 0, 0, time.UTC)},
		"2026-09-07": {time.Date(2026, 9, 7, 3, 0, 0, 0, time.UTC), time.Date(2026, 9, 8, 3, 0, 0, 0, time.UTC)},
	}
	if len(days) != len(want) {
		t.Errorf("daily postings %v; want %v", days, want)
	}
	for name, w := range want {
		if g, ok := days[name]; !ok || !g[0].Equal(w[0]) || !g[1].Equal(w[1]) {
			t.Errorf("%s: %v; want %v", name, g, w)
		}
	}
	// The 6th by hand: reversed, then posted again from its first instant;
	// the 23:00 of the 5th that time.Date gives for the missing midnight
	// is not a day's start.
	if _, err := a.Reverse(context.Background(), sixth.ID, "meter re-read", "token:books"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Post(context.Background(), "daily", time.Date(2026, 9, 6, 0, 0, 0, 0, santiago), "token:books"); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("the 6th from 23:00 of the 5th: got %v; want ErrInvalid", err)
	}
	v, existing, err := a.Post(context.Background(), "daily", six, "token:books")
	if err != nil || existing || v.Period != "2026-09-06" || !v.From.Equal(six) || !v.To.Equal(want["2026-09-06"][1]) {
		t.Errorf("the 6th by hand: %s %s to %s, existing %v, %v; want 2026-09-06 from 01:00 -03", v.Period, v.From, v.To, existing, err)
	}
	if n := postDue(t, a, now); n != 0 {
		t.Errorf("a second pass posted %d; want 0", n)
	}
	// September as a month: from the 1st's midnight (-04) to October's (-03).
	now = time.Date(2026, 10, 1, 0, 20, 0, 0, santiago)
	postDue(t, a, now)
	last, ok, err := db.LatestPosting("corridors")
	if err != nil || !ok || last.Period != "2026-09" || !last.From.Equal(time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)) ||
		!last.To.Equal(time.Date(2026, 10, 1, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("corridors' last posting: %s %s to %s, %v, %v; want 2026-09 from Sep 1 04:00Z to Oct 1 03:00Z", last.Period, last.From, last.To, ok, err)
	}
	if _, from, name := PeriodOf(config.PeriodMonth, six, santiago); name != "2026-09" || !from.Equal(last.To) {
		t.Errorf("PeriodOf(month, the 6th) = %s to %s; want 2026-09 to %s", name, from, last.To)
	}
}

// The poster resumes after the latest period of a rule's postings, not
// after the posting made last: daily's Nov 1 could not be shared (no
// consumption) and was skipped, Nov 3 was reversed, and finance then
// posted Nov 1 by hand — the next pass posts nothing of Nov 3 again.
func TestAllocator_PostDue_ResumesAfterLatestPeriod(t *testing.T) {
	db, cfg := allocMall(t)
	nov1 := time.Date(2026, 11, 1, 0, 0, 0, 0, allocSH)
	for d := 0; d < 3; d++ {
		day := nov1.AddDate(0, 0, d)
		allocEnergy(t, db, store.IntervalEnergy{Meter: "M-HALL", Time: day.Add(9 * time.Hour), Wh: 1000})
		if d > 0 {
			allocEnergy(t, db, store.IntervalEnergy{Meter: "M-1", Time: day.Add(10 * time.Hour), Wh: 300})
		}
	}
	var now time.Time
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop()}
	ctx := context.Background()
	now = nov1.Add(12 * time.Hour)
	a.PostDue(ctx, now) // Oct 31, and October
	now = nov1.AddDate(0, 0, 3).Add(time.Hour)
	if n := a.PostDue(ctx, now); n != 2 {
		t.Fatalf("at Nov 4 01:00 posted %d; want 2 (Nov 2 and 3; Nov 1 has no consumption)", n)
	}
	nov3, ok, err := db.LatestPosting("daily")
	if err != nil || !ok || nov3.Period != "2026-11-03" {
		t.Fatalf("daily's latest: %+v, %v, %v; want Nov 3", nov3, ok, err)
	}
	if _, err := a.Reverse(ctx, nov3.ID, "wrong meter", "token:books"); err != nil {
		t.Fatal(err)
	}
	// Nov 1's shop readings come in late; finance posts it by hand.
	allocEnergy(t, db, store.IntervalEnergy{Meter: "M-2", Time: nov1.Add(10 * time.Hour), Wh: 100})
	if _, existing, err := a.Post(ctx, "daily", nov1, "token:books"); err != nil || existing {
		t.Fatalf("Nov 1 by hand: existing %v, %v", existing, err)
	}
	before, err := db.Account("T-1")
	if err != nil {
		t.Fatal(err)
	}
	if n := a.PostDue(ctx, now); n != 0 {
		t.Errorf("the pass after the hand post posted %d; want 0 (Nov 3 stays reversed)", n)
	}
	live, err := db.LivePostings()
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := live["daily\x00"+nov3.From.UTC().Format(time.RFC3339)]; ok {
		t.Errorf("Nov 3 stands again, as posting %d", id)
	}
	if after, err := db.Account("T-1"); err != nil || after.Balance != before.Balance {
		t.Errorf("T-1's balance went from %s to %s (%v); want unchanged", before.Balance, after.Balance, err)
	}
}

// A period is posted by hand only once it has settled (its last quarter
// hour's readings in): before, 400 with when it can be.
func TestAllocator_Post_WaitsForSettle(t *testing.T) {
	db, cfg := allocMall(t)
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, allocSH)
	allocEnergy(t, db, store.IntervalEnergy{Meter: "M-PUB", Time: oct.Add(9 * time.Hour), Wh: 1000})
	now := time.Date(2026, 11, 1, 0, 14, 0, 0, allocSH)
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop()}
	_, _, err := a.Post(context.Background(), "corridors", oct, "token:books")
	if !errors.Is(err, web.ErrInvalid) || !strings.Contains(err.Error(), "2026-11-01T00:15:00+08:00") {
		t.Errorf("October at Nov 1 00:14: got %v; want ErrInvalid saying from 00:15", err)
	}
	if _, ok, _ := db.LatestPosting("corridors"); ok {
		t.Error("the refused post posted")
	}
	now = time.Date(2026, 11, 1, 0, 15, 0, 0, allocSH)
	if _, existing, err := a.Post(context.Background(), "corridors", oct, "token:books"); err != nil || existing {
		t.Errorf("October at Nov 1 00:15: existing %v, %v; want posted", existing, err)
	}
}

// PostDue checks its context before each period: cancelled, it posts
// nothing more and returns, however many periods are due.
func TestAllocator_PostDue_StopsOnCancel(t *testing.T) {
	db, cfg := allocMall(t)
	now := time.Date(2026, 11, 4, 1, 0, 0, 0, allocSH)
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := a.PostDue(ctx, now); n != 0 {
		t.Errorf("cancelled, PostDue posted %d; want 0", n)
	}
	if _, ok, err := db.LatestPosting("corridors"); ok || err != nil {
		t.Errorf("cancelled, corridors posted (%v, %v)", ok, err)
	}
	if n := a.PostDue(context.Background(), now); n != 2 {
		t.Errorf("then PostDue posted %d; want 2 (October, Nov 3)", n)
	}
}
