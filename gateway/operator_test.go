package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/web"
)

func TestOperator_ReleaseBillsTheHeldJump(t *testing.T) {
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 100_000)
	f.feed(t0.Add(time.Minute), 900_000) // 800 kWh in a minute on a 60 A circuit: held
	if n := len(f.charges()); n != 0 {
		t.Fatalf("%d charges for a quarantined jump; want none", n)
	}
	if _, err := f.pipe.Release("M-1", "token:till", "no charge yet", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Release: %v", err)
	}
	cs := f.charges()
	if len(cs) != 1 || cs[0].Wh != 800_000 || cs[0].Amount != -800*billing.Yuan || cs[0].Actor != "token:till" || !strings.HasPrefix(cs[0].Note, "release: ") {
		t.Fatalf("charges after release = %+v; want one of 800 kWh, -800.00, by token:till with the reason", cs)
	}
	f.feed(t0.Add(3*time.Minute), 900_100) // the counter goes on from the released level
	f.feed(t0.Add(20*time.Minute), 900_100)
	f.verify()
	if _, err := f.pipe.Release("M-1", "token:till", "again", t0.Add(30*time.Minute)); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("Release with nothing held: err = %v; want ErrInvalid", err)
	}
}

func TestOperator_ExchangeBillsAcrossTheNewMeter(t *testing.T) {
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 500_000)
	// The old meter is taken out at 500.300 kWh; the new one starts at 0.
	res, err := f.pipe.Exchange("M-1", 500_300, 0, "token:till", "meter burnt out, replaced by S/N 33B123", t0.Add(time.Minute))
	if err != nil || res.Verdict != "exchanged" || res.BilledKWh != "0.300" {
		t.Fatalf("Exchange = %+v, %v; want exchanged, 0.300 kWh billed", res, err)
	}
	f.feed(t0.Add(2*time.Minute), 250) // the new meter: accepted at once, no reset wait
	f.feed(t0.Add(20*time.Minute), 400)
	var wh int64
	for _, c := range f.charges() {
		wh += c.Wh
	}
	if wh != 300+400 {
		t.Errorf("charged %d Wh across the exchange; want 700 (300 on the old meter, 400 on the new)", wh)
	}
	f.verify()
	if _, err := f.pipe.Exchange("M-9", 1, 0, "x", "y", t0); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("Exchange of an unknown meter: err = %v; want ErrNotFound", err)
	}
}
