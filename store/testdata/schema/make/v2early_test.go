package store

// Schema 2's early fixture (v2-early.db): made as v2_test.go, in a worktree
// of the commit that made schema 2, b8e6518 (see ../README): readings kept
// as JSON, interval energy in a bucket per meter. From v2_test.go by hand.

import (
	"os"
	"testing"
	"time"

	"mallgrid/billing"
)

var fixtureT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func TestMakeFixture(t *testing.T) {
	out := os.Getenv("FIXTURE_OUT")
	if out == "" {
		t.Skip("FIXTURE_OUT not set")
	}
	db, err := Open(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Two tenants' top-ups: T-1 twice, T-2 once.
	for i, p := range []struct {
		acct, ref string
		amount    billing.Money
	}{{"T-1", "PAY-1", 100 * billing.Yuan}, {"T-2", "PAY-2", 50 * billing.Yuan}, {"T-1", "PAY-3", 20 * billing.Yuan}} {
		_, _, err := db.PostTopUp(Entry{Account: p.acct, Amount: p.amount, Ref: p.ref, Channel: "cash", Actor: "ann",
			Time: fixtureT0.Add(time.Duration(i) * time.Minute)})
		must(err)
	}
	// Four bus cycles: readings of two meters, their 15-minute energy, and
	// M-1's charges to T-1 at 1 yuan/kWh over contiguous counter spans.
	for i := range 4 {
		at := fixtureT0.Add(time.Duration(i+1) * 15 * time.Minute)
		from, to := 1000+int64(i)*250, 1250+int64(i)*250
		span0, span1 := at.Add(-15*time.Minute), at
		c := Cycle{
			Readings: []Reading{
				{Meter: "M-1", Time: at, ImportWh: to, EnergyWh: map[string]int64{"export_kwh": 7}, Values: map[string]float64{"voltage_a": 229.5, "power": 1000}, Relay: "closed"},
				{Meter: "M-2", Time: at, ImportWh: 5000 + int64(i)*100, Values: map[string]float64{"power": 400}, Relay: "open"},
			},
			Energy: []IntervalEnergy{{Meter: "M-1", Time: at, Wh: 250}, {Meter: "M-2", Time: at, Wh: 100}},
			Charges: []Entry{{Account: "T-1", Kind: Charge, Amount: -billing.Money(to-from) * billing.Fen / 10, Time: at,
				Meter: "M-1", FromWh: from, ToWh: to, Wh: to - from, From: &span0, To: &span1, Window: "flat", UnitPrice: billing.Price(billing.Yuan)}},
		}
		must(db.CommitCycle(c))
	}
	// An operator's adjustment.
	_, err = db.PostEntry(Entry{Account: "T-2", Kind: Adjustment, Amount: -5 * billing.Yuan, Actor: "ann", Note: "meter seal replaced", Time: fixtureT0.Add(2 * time.Hour)})
	must(err)
}
