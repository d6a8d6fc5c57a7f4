package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/verify"
	"mallgrid/store"
)

// billFixture is a pipeline for tenant meter M-1 (tenant T-1, 60 A) on a
// real database, with tariff spec (YAML lines) as T-1's "t".
type billFixture struct {
	t    *testing.T
	path string
	cfg  *config.Config
	db   *store.DB
	pipe *pipeline.Pipeline
}

func newBillFixture(t *testing.T, tariffYAML string) *billFixture {
	t.Helper()
	src := "site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1, rated_current: 60}]\n" +
		"tenants: [{id: T-1, name: Shop, tariff: t}]\ntariffs:\n" + tariffYAML
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &billFixture{t: t, path: filepath.Join(t.TempDir(), "b.db"), cfg: cfg}
	// Cleanups run last first: the events are read once the database is closed.
	t.Cleanup(func() { checkEventTexts(t, f.path, cfg.Location) })
	f.open()
	t.Cleanup(func() { f.db.Close() })
	return f
}

func (f *billFixture) open() {
	f.t.Helper()
	db, err := store.Open(f.path, store.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.db = db
	f.pipe, err = pipeline.New(db, f.cfg, live.New(f.cfg, "test", f.path, time.Now), nil, zerolog.Nop())
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *billFixture) restart() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

// feed commits a cycle with M-1 at wh at time at; wh < 0 feeds a zero frame.
func (f *billFixture) feed(at time.Time, wh int64) {
	var rd meter.Reading
	if wh < 0 {
		rd.Set(meter.Import, 0)
		rd.Set(meter.VoltageA, 0)
	} else {
		rd.Set(meter.Import, float64(wh)/1000)
		rd.Set(meter.VoltageA, 230)
	}
	rd.Meter, rd.Time = "M-1", at
	f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Start: at, End: at, Results: []poll.Result{{Meter: "M-1", Start: at, Reading: rd}}})
}

// charges returns M-1's posted charges, oldest first.
func (f *billFixture) charges() []store.Entry {
	f.t.Helper()
	var out []store.Entry
	err := f.db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.Charge {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *billFixture) verify() {
	f.t.Helper()
	v, err := verify.Check(f.db)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, x := range v {
		f.t.Errorf("verify: %s", x)
	}
}

var sh = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

func TestBilling_FlatChargePostedPerSlot(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.05'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 100_000)        // baseline
	for i := 1; i <= 90; i++ { // 15 minutes at 10 s, 5 Wh a reading
		f.feed(t0.Add(time.Duration(i)*10*time.Second), 100_000+int64(i)*5)
		if i == 60 {
			// Mid-slot: charged, not yet posted. 300 Wh × 1.05 = 0.315.
			if got := f.pipe.Accrued()["T-1"]; got != 31*billing.Fen || len(f.charges()) != 0 {
				t.Errorf("mid-slot: accrued %s, %d charges posted; want 0.31 accrued and none posted", got, len(f.charges()))
			}
		}
	}
	if got := f.pipe.Accrued()["T-1"]; got != 0 {
		t.Errorf("after the slot: accrued %s; want 0 (all posted)", got)
	}
	got := f.charges()
	if len(got) != 1 {
		t.Fatalf("%d charges after the first slot; want 1: %+v", len(got), got)
	}
	c := got[0]
	// 10:00:00–10:15:00 is 90 rises of 5 Wh, the last ending at 10:15:00,
	// which closes the slot: 450 Wh × 1.05 = 0.4725 → 0.47 posted, 0.0025 carried.
	if c.Wh != 450 || c.FromWh != 100_000 || c.ToWh != 100_450 || c.Amount != -47*billing.Fen || c.Window != "flat" || c.Account != "T-1" {
		t.Errorf("charge = %+v; want 450 Wh, 100000→100450, -0.47, flat, T-1", c)
	}
	if rem := f.pipe.State("M-1").Counter.Remainder; rem != 25*100_000 { // 0.0025 yuan in nano-yuan
		t.Errorf("remainder %d n¥; want 2500000 (0.0025 yuan carried)", rem)
	}
	f.verify()
}

func TestBilling_TOUWindowsPriceTheirOwnEnergy(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, `  - name: t
    kind: tou
    rates: {valley: "0.40", peak: "1.20"}
    days: [{days: all, windows: [{from: "00:00", to: "08:00", rate: valley}, {from: "08:00", to: "24:00", rate: peak}]}]
`)
	// Offline across 08:00: one reading at 07:30, the next at 08:30 with
	// 1,000 Wh in between, split 500/500 by time.
	f.feed(time.Date(2026, 11, 27, 7, 30, 0, 0, sh), 50_000)
	f.feed(time.Date(2026, 11, 27, 8, 30, 0, 0, sh), 51_000)
	f.feed(time.Date(2026, 11, 27, 9, 0, 0, 0, sh), 51_000) // closes the open slot
	var valley, peak int64
	var money billing.Money
	for _, c := range f.charges() {
		switch c.Window {
		case "valley":
			valley += c.Wh
		case "peak":
			peak += c.Wh
		}
		money += c.Amount
	}
	if valley != 500 || peak != 500 {
		t.Errorf("valley %d Wh, peak %d Wh; want 500 and 500", valley, peak)
	}
	// 0.5 × 0.40 + 0.5 × 1.20 = 0.80, posted slot by slot in whole fen.
	if money != -80*billing.Fen {
		t.Errorf("charged %s; want -0.80", money)
	}
	f.verify()
}

// TestBilling_Property feeds a tenant meter a noisy life — zero frames,
// redelivered readings, single lower glitches, spikes, restarts in
// mid-slot, top-ups — and checks the ledger's invariants: verify finds
// nothing; the energy charged is exactly the true meter's rise since its
// first reading, less only what is still open; the money charged is the
// exact price of that energy to the fen, the rest in the remainder.
func TestBilling_Property(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			priceFen := 50 + rng.IntN(150) // 0.50..2.00
			price := billing.Price(int64(priceFen) * int64(billing.Fen))
			f := newBillFixture(t, fmt.Sprintf("  - {name: t, kind: flat, price: '%s'}\n", price))
			at := time.Date(2026, 11, 30, 23, 0, 0, 0, sh) // across a month end
			trueWh := int64(1_000_000)
			f.feed(at, trueWh)
			first := trueWh
			lastTrue := trueWh
			topups := 0
			for step := 0; step < 400; step++ {
				at = at.Add(time.Duration(5+rng.IntN(55)) * time.Second)
				trueWh += rng.Int64N(40)
				switch r := rng.IntN(100); {
				case r < 3:
					f.feed(at, -1) // zero frame
				case r < 6:
					f.feed(at, lastTrue) // redelivered: an older value again
				case r < 8:
					f.feed(at, trueWh-5_000) // one lower glitch
				case r < 9:
					f.feed(at, trueWh+50_000_000) // a spike
				default:
					f.feed(at, trueWh)
					lastTrue = trueWh
				}
				if rng.IntN(100) < 3 {
					f.restart()
				}
				if rng.IntN(100) < 3 {
					topups++
					if _, _, err := f.db.PostTopUp(store.Entry{Account: "T-1", Amount: 50 * billing.Yuan, Ref: fmt.Sprintf("P-%d", topups), Channel: "cash", Time: at}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A true reading after the last slot closes every open charge.
			at = at.Add(time.Hour)
			f.feed(at, trueWh)
			f.feed(at.Add(time.Second), trueWh)
			var chargedWh int64
			var charged billing.Money
			for _, c := range f.charges() {
				chargedWh += c.Wh
				charged -= c.Amount
			}
			if chargedWh != trueWh-first {
				t.Errorf("charged %d Wh; the meter rose %d Wh", chargedWh, trueWh-first)
			}
			rem := f.pipe.State("M-1").Counter.Remainder
			exactNano := int64(price) * chargedWh
			if got := int64(charged)*1000 + int64(rem); got != exactNano {
				t.Errorf("charged %s + remainder %d n¥ = %d n¥; want exactly %d", charged, rem, got, exactNano)
			}
			f.verify()
		})
	}
}

// A meter configured with apportion: rates has its gap priced by its own
// sharp/peak/flat/valley counters, not spread over time.
func TestBilling_GapByTheMetersOwnRates(t *testing.T) {
	t.Parallel()
	src := "site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1, apportion: rates}]\n" +
		"tenants: [{id: T-1, name: Shop, tariff: t}]\ntariffs:\n" +
		"  - name: t\n    kind: tou\n    rates: {sharp: '1.45', peak: '1.20', flat: '0.85', valley: '0.40'}\n" +
		"    days: [{days: all, windows: [{from: '00:00', to: '06:00', rate: valley}, {from: '06:00', to: '12:00', rate: flat}, {from: '12:00', to: '18:00', rate: peak}, {from: '18:00', to: '24:00', rate: sharp}]}]\n"
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &billFixture{t: t, path: filepath.Join(t.TempDir(), "r.db"), cfg: cfg}
	f.open()
	defer f.db.Close()
	feed := func(at time.Time, wh int64, rates [4]int64) {
		var rd meter.Reading
		rd.Set(meter.Import, float64(wh)/1000)
		for i, q := range []meter.Quantity{meter.Sharp, meter.Peak, meter.Flat, meter.Valley} {
			rd.Set(q, float64(rates[i])/1000)
		}
		rd.Meter, rd.Time = "M-1", at
		f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: rd}}})
	}
	t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, sh) // the gap lies in the valley window by the clock
	feed(t0, 1_000, [4]int64{0, 0, 0, 0})
	feed(t0.Add(time.Hour), 1_600, [4]int64{100, 200, 300, 0})
	feed(t0.Add(2*time.Hour), 1_600, [4]int64{100, 200, 300, 0}) // closes the slot
	byWindow := map[string]int64{}
	var money billing.Money
	for _, c := range f.charges() {
		byWindow[c.Window] += c.Wh
		money += c.Amount
	}
	if byWindow["sharp"] != 100 || byWindow["peak"] != 200 || byWindow["flat"] != 300 || byWindow["valley"] != 0 {
		t.Errorf("charged by window %v; want sharp 100, peak 200, flat 300 (the meter's own counters)", byWindow)
	}
	// 0.1 × 1.45 + 0.2 × 1.20 + 0.3 × 0.85 = 0.64, posted rate by rate in
	// whole fen: 0.14 + 0.24 + 0.25 (+ remainder carried).
	if money > -63*billing.Fen || money < -64*billing.Fen {
		t.Errorf("charged %s; want 0.63–0.64 (0.64 exact, the rest carried)", money)
	}
	f.verify()
}

// A relay that reads open while the counter rises raises bypass_suspected,
// once, and the energy is still billed.
func TestBilling_BypassSuspected(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	feed := func(at time.Time, wh int64, relay meter.RelayState) {
		var rd meter.Reading
		rd.Set(meter.Import, float64(wh)/1000)
		rd.Set(meter.VoltageA, 230)
		rd.Meter, rd.Time, rd.Relay = "M-1", at, relay
		f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Start: at.Add(-time.Second), Reading: rd}}})
	}
	feed(t0, 10_000, meter.RelayOpen)                    // may hold energy from before it opened
	feed(t0.Add(time.Minute), 10_005, meter.RelayOpen)   // a few Wh: below the counter's resolution
	feed(t0.Add(2*time.Minute), 10_100, meter.RelayOpen) // 95 Wh behind an open relay
	feed(t0.Add(3*time.Minute), 10_200, meter.RelayOpen) // still: no second event
	evs, err := f.db.LastEvents(10)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == "bypass_suspected" {
			n++
			if e.Meter != "M-1" || e.Tenant != "T-1" || !strings.Contains(e.Text, "reads open") {
				t.Errorf("event = %+v", e)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d bypass_suspected events; want exactly 1 for the episode", n)
	}
	feed(t0.Add(4*time.Minute), 10_300, meter.RelayClosed) // closed: the episode ends
	feed(t0.Add(5*time.Minute), 10_300, meter.RelayOpen)
	feed(t0.Add(6*time.Minute), 10_300, meter.RelayOpen)
	feed(t0.Add(7*time.Minute), 10_400, meter.RelayOpen) // a new episode
	evs, _ = f.db.LastEvents(10)
	n = 0
	for _, e := range evs {
		if e.Kind == "bypass_suspected" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d bypass_suspected events after a second episode; want 2", n)
	}
}
