package counter

import (
	"errors"
	"reflect"
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
	o, err := Release(st, at(120), lim60)
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
		if _, err := Release(st, at(0), lim60); !errors.Is(err, ErrNoQuarantine) {
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
			o, err := Exchange(st, tt.oldFinal, tt.newSt, tt.at, lim60)
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
	o, err := Exchange(st, 100_300, 7, at(10), lim60)
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

// Each case of an exchange bills the old meter's last energy on the old
// chain and the new one's first on the new chain, and says where the chain
// broke.
func TestExchange_Spans(t *testing.T) {
	old := []step{{r: rd(100_000, 0), verdict: Baseline}, {r: rd(101_000, 15), verdict: Accepted, wh: 1_000}}
	pending := append(old[:2:2],
		step{r: rd(50, 45), verdict: LowerPending, event: EventCounterLower},
		step{r: rd(80, 60), verdict: LowerPending})
	reset := append(pending[:4:4], step{r: rd(120, 75), verdict: Reset, wh: 70, event: EventReset})
	sp := func(chain int, from, to int64, a, b int) Span {
		return Span{Chain: chain, FromWh: from, ToWh: to, From: at(a), To: at(b)}
	}
	for _, tt := range []struct {
		name      string
		steps     []step
		wantSpans []Span
		wantBreak Break
		wantChain int
	}{
		{"before the new meter reports", old, []Span{sp(0, 101_000, 101_400, 15, 30)},
			Break{Chain: 1, Kind: Exchanged, At: at(30), OldEndWh: 101_400, NewStartWh: 20}, 1},
		{"new meter's readings pending", pending, []Span{sp(0, 101_000, 101_400, 15, 30), sp(1, 20, 80, 30, 60)},
			Break{Chain: 1, Kind: Exchanged, At: at(30), OldEndWh: 101_400, NewStartWh: 20}, 1},
		{"after the reset was accepted", reset, []Span{sp(0, 101_000, 101_400, 15, 30), sp(1, 20, 50, 30, 45)},
			Break{Chain: 1, Kind: Exchanged, At: at(30), OldEndWh: 101_400, NewStartWh: 20, Amends: true}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, State{}, lim60, tt.steps)
			o, err := Exchange(st, 101_400, 20, at(30), lim60)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Spans, tt.wantSpans) {
				t.Errorf("spans = %+v; want %+v", o.Spans, tt.wantSpans)
			}
			if o.Break == nil || *o.Break != tt.wantBreak {
				t.Errorf("break = %+v; want %+v", o.Break, tt.wantBreak)
			}
			if o.Next.Chain != tt.wantChain {
				t.Errorf("chain = %d; want %d", o.Next.Chain, tt.wantChain)
			}
		})
	}
}

// An exchange sent twice is applied once: the second is ErrRepeated and
// bills nothing, whatever the new meter has read since.
func TestExchange_Repeated(t *testing.T) {
	st := run(t, State{}, lim60, []step{{r: rd(5_000_000, 0), verdict: Baseline}})
	o, err := Exchange(st, 5_000_000, 0, at(10), lim60)
	if err != nil {
		t.Fatal(err)
	}
	st = run(t, o.Next, lim60, []step{{r: rd(350, 20), verdict: Accepted, wh: 350}})
	if _, err := Exchange(st, 5_000_000, 0, at(30), lim60); !errors.Is(err, ErrRepeated) {
		t.Errorf("the same exchange again: error = %v; want ErrRepeated", err)
	}
	// Another record claiming the meter now at 0.35 kWh ended at 5,000 kWh
	// does not fit its readings.
	if _, err := Exchange(st, 5_000_001, 0, at(30), lim60); !errors.Is(err, ErrExchange) {
		t.Errorf("an exchange 5,000 kWh above the readings: error = %v; want ErrExchange", err)
	}
}

// The record must fit the readings on both sides of it.
func TestExchange_DoesNotFit(t *testing.T) {
	old := run(t, State{}, lim60, []step{{r: rd(100_000, 0), verdict: Baseline}})
	pending := run(t, old, lim60, []step{{r: rd(50_000, 20), verdict: LowerPending, event: EventCounterLower}})
	for _, tt := range []struct {
		name            string
		st              State
		oldFinal, newSt int64
		at              time.Time
	}{
		{"old meter rose faster than the circuit", old, 100_000 + 17_000, 0, at(15)},
		{"new meter rose faster than the circuit to its first reading", pending, 100_100, 0, at(10)},
	} {
		if _, err := Exchange(tt.st, tt.oldFinal, tt.newSt, tt.at, lim60); !errors.Is(err, ErrExchange) {
			t.Errorf("%s: error = %v; want ErrExchange", tt.name, err)
		}
	}
}

// A wrongly recorded exchange (the meter was not replaced) makes the
// meter's next readings a jump back at the old level: releasing it would
// bill the old counter's energy again, so it is refused.
func TestRelease_AfterAWrongExchange(t *testing.T) {
	st := run(t, State{}, lim60, []step{{r: rd(1_000_000, 0), verdict: Baseline}})
	o, err := Exchange(st, 1_000_000, 0, at(10), lim60)
	if err != nil {
		t.Fatal(err)
	}
	st = run(t, o.Next, lim60, []step{{r: rd(1_005_000, 20), verdict: Quarantined, event: EventSpike}})
	if _, err := Release(st, at(30), lim60); !errors.Is(err, ErrRelease) {
		t.Fatalf("release after a wrong exchange: error = %v; want ErrRelease", err)
	}
	// The correction: an exchange from the recorded start back to the
	// counter the meter showed then bills nothing, and the meter's energy
	// since is billed once, from there.
	o, err = Exchange(st, 0, 1_000_000, at(30), lim60)
	if err != nil {
		t.Fatal(err)
	}
	if o.Wh != 0 || o.Next.Quarantine != nil || o.Next.Baseline.Wh != 1_000_000 {
		t.Errorf("correcting exchange: %d Wh, baseline %d, held %v; want 0 Wh, baseline 1000000, nothing held", o.Wh, o.Next.Baseline.Wh, o.Next.Quarantine)
	}
	run(t, o.Next, lim60, []step{{r: rd(1_006_000, 40), verdict: Accepted, wh: 6_000}})
}

// A new meter that was read after its exchange and later jumps past the
// old meter's final reading is an ordinary jump: released as usual.
func TestRelease_JumpOnARealNewMeter(t *testing.T) {
	st := run(t, State{}, lim60, []step{{r: rd(24_000, 0), verdict: Baseline}})
	o, err := Exchange(st, 24_500, 0, at(5), lim60)
	if err != nil {
		t.Fatal(err)
	}
	st = run(t, o.Next, lim60, []step{
		{r: rd(23_000, 40), verdict: Accepted, wh: 23_000},
		{r: rd(26_000, 41), verdict: Quarantined, event: EventSpike}, // 3 kWh in a minute, past 24.5
	})
	if o, err := Release(st, at(45), lim60); err != nil || o.Wh != 3_000 {
		t.Errorf("Release = %d Wh, %v; want 3000 Wh released", o.Wh, err)
	}
}

// The reviewer's case: a wrong exchange applied to glitch readings that
// looked like a new meter's (pending below the baseline); the old counter
// comes back and is held. Releasing it would bill the old counter again.
func TestRelease_AfterAWrongExchangeOnPendingReadings(t *testing.T) {
	st := run(t, State{}, lim60, []step{
		{r: rd(100_000, 0), verdict: Baseline},
		{r: rd(101_000, 15), verdict: Accepted, wh: 1_000},
		{r: rd(50, 45), verdict: LowerPending, event: EventCounterLower},
		{r: rd(80, 60), verdict: LowerPending},
	})
	o, err := Exchange(st, 101_400, 20, at(30), lim60)
	if err != nil {
		t.Fatal(err)
	}
	st = run(t, o.Next, lim60, []step{{r: rd(101_500, 70), verdict: Quarantined, event: EventSpike}})
	if _, err := Release(st, at(75), lim60); !errors.Is(err, ErrRelease) {
		t.Errorf("release of the old counter's level after the exchange: %v; want ErrRelease", err)
	}
}

// After a reset accepted on evidence, an exchange record must sit between
// the two counters: one dated later is refused rather than billing the old
// counter on the new one, and ExchangeTime gives a time that fits.
func TestExchange_AfterAResetNeedsItsTime(t *testing.T) {
	st := run(t, State{}, lim60, []step{
		{r: rd(100_000, 0), verdict: Baseline},
		{r: rd(101_000, 15), verdict: Accepted, wh: 1_000},
		{r: rd(50, 45), verdict: LowerPending, event: EventCounterLower},
		{r: rd(80, 60), verdict: LowerPending},
		{r: rd(120, 75), verdict: Reset, wh: 70, event: EventReset},
		{r: rd(150, 90), verdict: Accepted, wh: 30},
	})
	if _, err := Exchange(st, 101_400, 20, at(210), lim60); !errors.Is(err, ErrExchange) {
		t.Errorf("exchange dated after the new counter's readings: %v; want ErrExchange", err)
	}
	when, ok := ExchangeTime(st, 101_400, 20)
	// 400 Wh on the old meter and 30 on the new over the 30 minutes
	// between their readings: 400/430 of the way.
	if want := at(15).Add(30 * time.Minute * 400 / 430); !ok || !when.Equal(want) {
		t.Fatalf("ExchangeTime = %s, %v; want %s", when.Format("15:04:05"), ok, want.Format("15:04:05"))
	}
	o, err := Exchange(st, 101_400, 20, when, lim60)
	if err != nil || o.Wh != 400+30 {
		t.Errorf("exchange at ExchangeTime = %d Wh, %v; want 430", o.Wh, err)
	}
}
