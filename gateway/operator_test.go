package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/accounts"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

func TestOperator_ReleaseBillsTheHeldJump(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 100_000)
	f.feed(t0.Add(time.Minute), 900_000) // 800 kWh in a minute on a 60 A circuit: held
	if n := len(f.charges()); n != 0 {
		t.Fatalf("%d charges for a quarantined jump; want none", n)
	}
	if _, err := f.pipe.Release("M-1", nil, "token:till", "no charge yet", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Release: %v", err)
	}
	cs := f.charges()
	if len(cs) != 1 || cs[0].Wh != 800_000 || cs[0].Amount != -800*billing.Yuan || cs[0].Actor != "token:till" || !strings.HasPrefix(cs[0].Note, "release: ") {
		t.Fatalf("charges after release = %+v; want one of 800 kWh, -800.00, by token:till with the reason", cs)
	}
	f.feed(t0.Add(3*time.Minute), 900_100) // the counter goes on from the released level
	f.feed(t0.Add(20*time.Minute), 900_100)
	f.verify()
	// The same release again (a retry after a lost answer): the first
	// result, nothing billed.
	again, err := f.pipe.Release("M-1", nil, "token:till", "again", t0.Add(30*time.Minute))
	if err != nil || !again.Repeated || again.BilledKWh != "800.000" {
		t.Errorf("Release again = %+v, %v; want the first result (800.000 kWh), marked repeated", again, err)
	}
	if n := len(f.charges()); n != 2 {
		t.Errorf("%d charges after the repeated release; want 2", n)
	}
	f.verify()
}

// A meter that was never released from anything has nothing to release.
func TestOperator_ReleaseNothingHeld(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 100_000)
	if _, err := f.pipe.Release("M-1", nil, "token:till", "x", t0.Add(time.Minute)); !errors.Is(err, web.ErrConflict) {
		t.Errorf("Release with nothing held: err = %v; want ErrConflict", err)
	}
}

// The repro: a meter at 5,000 kWh goes offline, a new one at 0
// answers, and the same exchange is sent twice. The second returns the
// first's result and bills nothing; an exchange that does not fit the
// readings is a conflict; verify agrees with the ledger throughout.
func TestOperator_ExchangeSentTwice(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 5_000_000)
	f.feed(t0.Add(10*time.Minute), 100) // the new meter answers: lower, pending
	f.feed(t0.Add(11*time.Minute), 200)
	first, err := f.pipe.Exchange("M-1", 5_000_000, 0, "token:till", "meter replaced", t0.Add(5*time.Minute), t0.Add(5*time.Minute))
	if err != nil || first.BilledKWh != "0.200" || first.Repeated {
		t.Fatalf("Exchange = %+v, %v; want 0.200 kWh billed (the new meter's first)", first, err)
	}
	f.feed(t0.Add(12*time.Minute), 350)
	second, err := f.pipe.Exchange("M-1", 5_000_000, 0, "token:till", "meter replaced", t0.Add(13*time.Minute), t0.Add(13*time.Minute))
	if err != nil || !second.Repeated || second.BilledKWh != first.BilledKWh {
		t.Fatalf("the same exchange again = %+v, %v; want the first result, marked repeated", second, err)
	}
	if _, err := f.pipe.Exchange("M-1", 5_000_500, 0, "token:till", "typo", t0.Add(13*time.Minute), t0.Add(13*time.Minute)); !errors.Is(err, web.ErrConflict) {
		t.Errorf("an exchange that does not fit: err = %v; want ErrConflict", err)
	}
	f.feed(t0.Add(20*time.Minute), 400)
	var wh int64
	for _, c := range f.charges() {
		if c.Wh < 0 {
			t.Errorf("charge %+v: negative energy", c)
		}
		wh += c.Wh
	}
	if wh != 400 {
		t.Errorf("charged %d Wh; want 400 (the new meter's energy; the old one was billed to its final reading before)", wh)
	}
	f.verify()
}

// A reset that lands in the slot of a pending charge closes that charge at
// the old counter's last reading and opens a new one on the new counter: no
// charge with negative energy, and verify accepts the reset.
func TestOperator_ResetInAnOpenSlot(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 4_999_000)
	f.feed(t0.Add(time.Minute), 4_999_744) // open charge 4999.000 → 4999.744
	f.feed(t0.Add(2*time.Minute), 100)     // reset evidence, same slot
	f.feed(t0.Add(3*time.Minute), 200)
	f.feed(t0.Add(4*time.Minute), 350) // the third: reset accepted, 250 Wh billed
	f.verify()
	f.feed(t0.Add(20*time.Minute), 350) // the slot closes; nothing new
	for _, c := range f.charges() {
		if c.Wh < 0 || c.ToWh < c.FromWh {
			t.Errorf("charge %d→%d Wh (%d Wh): negative", c.FromWh, c.ToWh, c.Wh)
		}
	}
	f.verify()
	f.restart()
	f.verify()
}

func TestOperator_ExchangeBillsAcrossTheNewMeter(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 500_000)
	// The old meter is taken out at 500.300 kWh; the new one starts at 0.
	res, err := f.pipe.Exchange("M-1", 500_300, 0, "token:till", "meter burnt out, replaced by S/N 33B123", t0.Add(time.Minute), t0.Add(time.Minute))
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
	if _, err := f.pipe.Exchange("M-9", 1, 0, "x", "y", t0, t0); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("Exchange of an unknown meter: err = %v; want ErrNotFound", err)
	}
}

// A release that names the held counter it was checked against: sent again
// it answers with the first result; a different jump held since is not
// released by it.
func TestOperator_ReleaseNamesTheHeldCounter(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 100_000)
	f.feed(t0.Add(time.Minute), 900_000) // held
	held := int64(900_000)
	first, err := f.pipe.Release("M-1", &held, "token:till", "checked", t0.Add(2*time.Minute))
	if err != nil || first.HeldKWh != "900.000" {
		t.Fatalf("Release = %+v, %v; want 900.000 released", first, err)
	}
	f.feed(t0.Add(3*time.Minute), 900_100)
	f.feed(t0.Add(4*time.Minute), 1_700_000) // a new jump, not checked by anyone
	again, err := f.pipe.Release("M-1", &held, "token:till", "checked", t0.Add(5*time.Minute))
	if err != nil || !again.Repeated {
		t.Errorf("the same release again = %+v, %v; want the first result, repeated", again, err)
	}
	other := int64(1_600_000)
	if _, err := f.pipe.Release("M-1", &other, "token:till", "checked", t0.Add(5*time.Minute)); !errors.Is(err, web.ErrConflict) {
		t.Errorf("release naming another counter: %v; want ErrConflict", err)
	}
	if n := len(f.charges()); n != 1 {
		t.Errorf("%d charges; want the first release's only", n)
	}
	f.verify()
}

// An exchange entered through the API without its time, after the new
// meter's readings were accepted as a reset, is placed between the two
// counters: the old meter's last energy and the new one's first are billed
// once, nothing on the wrong counter.
func TestOperator_UndatedExchangeAfterAReset(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 5_000_000)
	for i, wh := range []int64{100, 200, 300, 400} { // the new meter: a reset after the third
		f.feed(t0.Add(time.Duration(10+i)*time.Minute), wh)
	}
	now := t0.Add(3 * time.Hour)
	op := &accounts.Operator{Pipeline: f.pipe, Now: func() time.Time { return now }}
	res, err := op.Exchange(context.Background(), "M-1", web.ExchangeRequest{OldFinalKWh: "5000.200", NewStartKWh: "0.000", Reason: "replaced"}, "token:till")
	if err != nil || res.BilledKWh != "0.300" {
		t.Fatalf("Exchange = %+v, %v; want 0.300 kWh (0.200 on the old meter, 0.100 on the new)", res, err)
	}
	var wh int64
	for _, c := range f.charges() {
		wh += c.Wh
	}
	if wh != 200+400 {
		t.Errorf("charged %d Wh; want 600 (0.2 kWh on the old meter, 0.4 on the new)", wh)
	}
	f.verify()
}

// A public meter exchanged, then made a tenant's meter before the exchange
// is recorded: the old meter's last energy is charged on the old chain, and
// the mark of where charging starts goes with that chain, before the new
// one — verify agrees, whichever way the record fits the readings.
func TestOperator_ExchangeWhenBillingStarts(t *testing.T) {
	t.Parallel()
	tf := "  - {name: t, kind: flat, price: '1.00'}\n"
	for _, pending := range []bool{false, true} {
		t.Run(fmt.Sprint("pending=", pending), func(t *testing.T) {
			g := &diffGateway{t: t, path: filepath.Join(t.TempDir(), "d.db"),
				full: diffConfig(t, tf, true, false), public: diffConfig(t, tf, true, true)}
			g.cfg = g.public
			t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, sh)
			g.open(t0)
			defer func() { g.db.Close() }()
			at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
			g.cycle(at(0), []meter.Reading{diffReading("M-2", at(0), 500_000, false)})
			g.cycle(at(1), []meter.Reading{diffReading("M-2", at(1), 500_400, false)}) // public: not charged
			if pending {
				g.cycle(at(3), []meter.Reading{diffReading("M-2", at(3), 100, false)}) // the new meter, lower
			}
			g.cfg = g.full // M-2 is T-2's from now on
			g.restart(at(4))
			res, err := g.pipe.Exchange("M-2", 500_700, 0, "token:till", "replaced", at(2), at(4))
			if err != nil || res.Verdict != "exchanged" {
				t.Fatalf("Exchange = %+v, %v", res, err)
			}
			g.cycle(at(5), []meter.Reading{diffReading("M-2", at(5), 600, false)})
			if v, err := verify.Check(g.db); err != nil || len(v) != 0 {
				t.Errorf("verify = %v, %v; want clean", v, err)
			}
			var wh int64
			if err := g.db.EachEntry(func(e store.Entry) error {
				wh += e.Wh
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			st, _ := g.db.MeterStates()
			mb, _ := pipeline.DecodeState(st["M-2"])
			if mb.Open != nil {
				wh += mb.Open.ToWh - mb.Open.FromWh
			}
			if wh != 300+600 {
				t.Errorf("charged %d Wh; want 900 (the old meter's last 0.3 kWh, the new one's 0.6)", wh)
			}
		})
	}
}
