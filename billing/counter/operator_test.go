package counter

import (
	"errors"
	"testing"
	"time"
)

func TestRelease(t *testing.T) {
	rates := func(a, b, c, d int64) *[4]int64 { return &[4]int64{a, b, c, d} }
	st := run(t, State{}, lim60, []step{
		{r: Reading{Wh: 1_000, At: at(0), RatesWh: rates(0, 0, 1_000, 0)}, verdict: Baseline},
		{r: Reading{Wh: 41_000, At: at(15), RatesWh: rates(0, 0, 41_000, 0)}, verdict: Quarantined, event: EventSpike},
		{r: Reading{Wh: 41_500, At: at(30), RatesWh: rates(0, 0, 41_000, 500)}, verdict: Quarantined},
	})
	o, err := Release(st, at(120))
	if err != nil {
		t.Fatal(err)
	}
	if o.Verdict != Released || o.Wh != 40_500 || !o.From.Equal(at(0)) || !o.To.Equal(at(30)) {
		t.Errorf("Release = %s, %d Wh over [%s, %s); want released, 40500 Wh over [17:00, 17:30)", o.Verdict, o.Wh, o.From, o.To)
	}
	if o.RatesWh == nil || *o.RatesWh != [4]int64{0, 0, 40_000, 500} {
		t.Errorf("RatesWh = %v; want [0 0 40000 500]", o.RatesWh)
	}
	if o.Event == nil || o.Event.Kind != EventReleased || !o.Event.At.Equal(at(120)) || o.Event.BilledWh != 40_500 {
		t.Errorf("event = %+v; want spike_released at 19:00 billing 40500 Wh", o.Event)
	}
	if o.Next.Quarantine != nil || o.Next.Baseline.Wh != 41_500 {
		t.Errorf("next = %+v; want baseline 41500, nothing held", o.Next)
	}
	// The counter goes on from the released level.
	if o := Check(o.Next, rd(42_000, 45), lim60); o.Verdict != Accepted || o.Wh != 500 {
		t.Errorf("after release: %s, %d Wh; want accepted, 500", o.Verdict, o.Wh)
	}
	for _, st := range []State{{}, {Known: true, Baseline: Sample{Wh: 5}}} {
		if _, err := Release(st, at(0)); !errors.Is(err, ErrNoQuarantine) {
			t.Errorf("Release(%+v) error = %v; want ErrNoQuarantine", st, err)
		}
	}
}

func TestExchange(t *testing.T) {
	old := []step{{r: rd(100_000, 0), verdict: Baseline}, {r: rd(101_000, 15), verdict: Accepted, wh: 1_000}}
	pending := append(old[:2:2],
		step{r: rd(50, 45), verdict: LowerPending, event: EventCounterLower},
		step{r: rd(80, 60), verdict: LowerPending})
	reset := append(pending[:4:4], step{r: rd(120, 75), verdict: Reset, wh: 70, event: EventReset},
		step{r: rd(150, 90), verdict: Accepted, wh: 30})
	spiked := append(old[:2:2], step{r: rd(900_000, 20), verdict: Quarantined, event: EventSpike})

	for _, tt := range []struct {
		name             string
		steps            []step
		oldFinal, newSt  int64
		at               time.Time
		wantWh, wantBase int64
		from, to         time.Time
		err              error
	}{
		{"before the new meter reports", old, 101_400, 0, at(30), 400, 0, at(15), at(30), nil},
		{"before, a held jump is replaced by the record", spiked, 101_400, 0, at(30), 400, 0, at(15), at(30), nil},
		{"new meter's readings pending", pending, 101_400, 20, at(30), 400 + 60, 80, at(15), at(60), nil},
		{"after the reset was accepted", reset, 101_400, 20, at(30), 400 + 30, 150, at(15), at(45), nil},
		{"old final below its baseline", old, 100_999, 0, at(30), 0, 0, time.Time{}, time.Time{}, ErrExchange},
		{"new start above its first reading", pending, 101_400, 51, at(30), 0, 0, time.Time{}, time.Time{}, ErrExchange},
		{"negative", old, -1, 0, at(30), 0, 0, time.Time{}, time.Time{}, ErrExchange},
		{"before the last accepted reading", old, 101_400, 0, at(10), 0, 0, time.Time{}, time.Time{}, ErrExchange},
		{"pending, but after the new meter's first reading", pending, 101_400, 0, at(50), 0, 0, time.Time{}, time.Time{}, ErrExchange},
		{"energy over no time", old, 101_400, 0, at(15), 0, 0, time.Time{}, time.Time{}, ErrExchange},
		{"never read", nil, 1, 0, at(30), 0, 0, time.Time{}, time.Time{}, ErrNoBaseline},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, State{}, lim60, tt.steps)
			o, err := Exchange(st, tt.oldFinal, tt.newSt, tt.at)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Exchange error = %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Verdict != Exchanged || o.Wh != tt.wantWh || o.Next.Baseline.Wh != tt.wantBase ||
				!o.From.Equal(tt.from) || !o.To.Equal(tt.to) {
				t.Errorf("Exchange = %s, %d Wh over [%s, %s), baseline %d; want exchanged, %d Wh over [%s, %s), baseline %d",
					o.Verdict, o.Wh, o.From.Format("15:04"), o.To.Format("15:04"), o.Next.Baseline.Wh,
					tt.wantWh, tt.from.Format("15:04"), tt.to.Format("15:04"), tt.wantBase)
			}
			if o.Next.Quarantine != nil || len(o.Next.Lower) != 0 || o.Next.AutoReset != nil {
				t.Errorf("next = %+v; want nothing held, pending or remembered", o.Next)
			}
			if o.Event == nil || o.Event.Kind != EventExchange || o.Event.BilledWh != tt.wantWh {
				t.Errorf("event = %+v; want exchange billing %d Wh", o.Event, tt.wantWh)
			}
		})
	}
}

// After an exchange recorded ahead of the new meter, its readings are
// measured from the recorded start.
func TestExchange_ThenNewMeter(t *testing.T) {
	st := run(t, State{}, lim60, []step{{r: rd(100_000, 0), verdict: Baseline}})
	o, err := Exchange(st, 100_300, 7, at(10))
	if err != nil {
		t.Fatal(err)
	}
	run(t, o.Next, lim60, []step{
		{r: rd(57, 15), verdict: Accepted, wh: 50},
		{r: rd(57, 15), verdict: Duplicate},
	})
}

func TestOutcome_RateParts(t *testing.T) {
	for _, tt := range []struct {
		name  string
		wh    int64
		rates *[4]int64
		want  [4]int64
		ok    bool
	}{
		{"exact", 100, &[4]int64{10, 20, 30, 40}, [4]int64{10, 20, 30, 40}, true},
		{"rate counters rounded apart", 3, &[4]int64{1, 1, 1, 1}, [4]int64{1, 1, 1, 0}, true},
		{"largest remainder", 10, &[4]int64{1, 2, 0, 4}, [4]int64{1, 3, 0, 6}, true},
		{"huge values", 1_000_000_000_000, &[4]int64{999_999_999_999, 1, 0, 0}, [4]int64{999_999_999_999, 1, 0, 0}, true},
		{"no rates", 10, nil, [4]int64{}, false},
		{"rates did not move", 10, &[4]int64{}, [4]int64{}, false},
		{"nothing to lay out", 0, nil, [4]int64{}, true},
	} {
		got, ok := Outcome{Wh: tt.wh, RatesWh: tt.rates}.RateParts()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: RateParts(%d Wh, %v) = %v, %v; want %v, %v", tt.name, tt.wh, tt.rates, got, ok, tt.want, tt.ok)
		}
		if ok {
			var sum int64
			for _, p := range got {
				sum += p
			}
			if sum != tt.wh {
				t.Errorf("%s: parts add up to %d; want %d", tt.name, sum, tt.wh)
			}
		}
	}
}
