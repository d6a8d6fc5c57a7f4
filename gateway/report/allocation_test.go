package report

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// allocYAML is a mall with a public meter priced by time of use (peak
// 1.00 from 08:00, valley 0.40 before) and two tenants; rule corridors
// shares it by area, rule daily by consumption every day.
const allocYAML = `site: {name: M, timezone: Asia/Shanghai}
buses: [{name: b, port: /dev/ttyUSB0}]
meters:
  - {id: M-PUB, bus: b, address: 1, model: kpm33b, role: public}
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
  - {name: daily, meters: [M-PUB], basis: consumption, period: day}
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
		store.IntervalEnergy{Meter: "M-PUB", Time: day.Add(8 * time.Hour), Wh: 10_000})
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
// rule at the period that ended last; a second call posts nothing.
func TestAllocator_PostDue(t *testing.T) {
	db, cfg := allocMall(t)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, allocSH)
	for d := 0; d < 10; d++ {
		day := start.AddDate(0, 0, d)
		allocEnergy(t, db, store.IntervalEnergy{Meter: "M-PUB", Time: day.Add(9 * time.Hour), Wh: 1000})
		if d != 4 { // on Nov 5 the corridors were lit and no shop drew anything
			allocEnergy(t, db, store.IntervalEnergy{Meter: "M-1", Time: day.Add(10 * time.Hour), Wh: 300},
				store.IntervalEnergy{Meter: "M-2", Time: day.Add(10 * time.Hour), Wh: 100})
		}
	}
	now := start.AddDate(0, 0, 3).Add(10 * time.Minute) // Nov 4 00:10: Nov 3 not yet settled
	woken := 0
	a := &Allocator{DB: db, Config: cfg, Now: func() time.Time { return now }, Log: zerolog.Nop(), Posted: func() { woken++ }}
	if n := a.PostDue(now); n != 2 {
		t.Fatalf("first pass posted %d; want 2 (October for corridors, Nov 2 for daily)", n)
	}
	if woken != 2 {
		t.Errorf("enforcement woken %d times; want once a posting", woken)
	}
	postings, err := a.Postings()
	if err != nil {
		t.Fatal(err)
	}
	if len(postings) != 2 || postings[0].Period != "2026-11-02" || postings[0].Cost != "1.00" || postings[1].Period != "2026-10" || postings[1].Cost != "0.00" {
		t.Fatalf("postings %+v", postings)
	}
	// Down until Nov 8 08:00: Nov 3 to Nov 7 are posted, in order, but for
	// Nov 5, which has no consumption to share by: it is left for finance,
	// and the days after it go on.
	now = start.AddDate(0, 0, 7).Add(8 * time.Hour)
	if n := a.PostDue(now); n != 4 {
		t.Errorf("after the downtime posted %d; want 4", n)
	}
	if _, _, err := a.Post(context.Background(), "daily", start.AddDate(0, 0, 4), "token:books"); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("Nov 5 by hand: got %v; want ErrInvalid with the reason", err)
	}
	if n := a.PostDue(now); n != 0 {
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
	if n := a.PostDue(now); n != 0 {
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
