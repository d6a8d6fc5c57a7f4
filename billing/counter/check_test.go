package counter

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 12, 17, 0, 0, 0, time.UTC)

// at is t0 plus m minutes: gateway time in the tests.
func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// rd is a reading of wh at minute m, stamped by the meter with the same
// minute.
func rd(wh int64, m int) Reading { return Reading{Wh: wh, At: at(m), MeterTime: at(m)} }

// step is one reading of a sequence and what Check must make of it.
type step struct {
	r       Reading
	verdict Verdict
	wh      int64     // billed energy
	event   EventKind // "" for none
}

// lim60 is a three-phase 60 A circuit: 67.5 kWh an hour, 16.885 kWh in a
// quarter hour with the slack.
var lim60 = CircuitLimits(60, 3)

// run feeds steps to Check from st and returns the final State.
func run(t *testing.T, st State, lim Limits, steps []step) State {
	t.Helper()
	for i, s := range steps {
		o := Check(st, s.r, lim)
		var ev EventKind
		if o.Event != nil {
			ev = o.Event.Kind
		}
		if o.Verdict != s.verdict || o.Wh != s.wh || ev != s.event {
			t.Fatalf("step %d: Check(%d Wh at %s) = %s, %d Wh, event %q; want %s, %d Wh, event %q",
				i, s.r.Wh, s.r.At.Format("15:04"), o.Verdict, o.Wh, ev, s.verdict, s.wh, s.event)
		}
		if o.Verdict.Refused() && !reflect.DeepEqual(o.Next.Baseline, st.Baseline) {
			t.Fatalf("step %d: refused reading moved the baseline from %+v to %+v", i, st.Baseline, o.Next.Baseline)
		}
		if o.Wh > 0 && !o.From.Before(o.To) {
			t.Fatalf("step %d: %d Wh over [%s, %s); want From before To", i, o.Wh, o.From, o.To)
		}
		st = o.Next
	}
	return st
}

func TestCheck_Baseline(t *testing.T) {
	st := run(t, State{Remainder: 42}, lim60, []step{
		{r: Reading{ZeroFrame: true, At: at(0)}, verdict: ZeroFrame},
		{r: rd(56_331, 15), verdict: Baseline},
		{r: rd(57_799, 30), verdict: Accepted, wh: 1_468},
	})
	if !st.Known || st.Baseline.Wh != 57_799 || !st.Baseline.At.Equal(at(30)) || st.Remainder != 42 {
		t.Errorf("state = %+v; want known, baseline 57799 Wh at 17:30, remainder 42 kept", st)
	}
}

// A meter that sends all zeros between its real readings (the KPM33B of
// the captured logs: 31.057 → 0 → 31.057) is never reset by them, and
// one that sends only zeros never gets a baseline.
func TestCheck_ZeroFrame(t *testing.T) {
	zero := func(m int) Reading { return Reading{At: at(m), MeterTime: at(m), ZeroFrame: true} }
	for _, tt := range []struct {
		name  string
		steps []step
		known bool
	}{
		{"between real readings", []step{
			{r: rd(31_057, 0), verdict: Baseline},
			{r: zero(0), verdict: ZeroFrame},
			{r: Reading{Wh: 31_057, At: at(1), MeterTime: at(0)}, verdict: Duplicate},
			{r: zero(15), verdict: ZeroFrame},
			{r: zero(15), verdict: ZeroFrame},
			{r: rd(31_060, 15), verdict: Accepted, wh: 3},
		}, true},
		{"only zeros", []step{
			{r: zero(0), verdict: ZeroFrame}, {r: zero(0), verdict: ZeroFrame}, {r: zero(15), verdict: ZeroFrame},
		}, false},
		{"inside a lower run, not counted", []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(10, 15), verdict: LowerPending, event: EventCounterLower},
			{r: zero(20), verdict: ZeroFrame},
			{r: rd(20, 30), verdict: LowerPending},
			{r: zero(35), verdict: ZeroFrame},
			{r: rd(30, 45), verdict: Reset, wh: 20, event: EventReset},
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if st := run(t, State{}, lim60, tt.steps); st.Known != tt.known {
				t.Errorf("known = %v; want %v", st.Known, tt.known)
			}
		})
	}
}

func TestCheck_Duplicate(t *testing.T) {
	rates := func(a, b, c, d int64) *[4]int64 { return &[4]int64{a, b, c, d} }
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"same gateway time", []step{
			{r: rd(1_000, 0), verdict: Baseline},
			{r: rd(1_000, 0), verdict: Duplicate},
		}},
		{"delivered again later, same meter stamp", []step{
			{r: rd(1_000, 0), verdict: Baseline},
			{r: Reading{Wh: 1_000, At: at(3), MeterTime: at(0)}, verdict: Duplicate},
			{r: Reading{Wh: 1_000, At: at(7), MeterTime: at(0)}, verdict: Duplicate},
		}},
		{"meter stamp wrong by 21 years is still an identity", []step{
			{r: Reading{Wh: 117_607, At: at(0), MeterTime: at(0).AddDate(-21, 0, 1)}, verdict: Baseline},
			{r: Reading{Wh: 117_607, At: at(1), MeterTime: at(0).AddDate(-21, 0, 1)}, verdict: Duplicate},
		}},
		{"same counter, new stamp: no energy, but a reading", []step{
			{r: rd(1_000, 0), verdict: Baseline},
			{r: rd(1_000, 15), verdict: Accepted},
		}},
		{"same stamp, counter rose: a reading", []step{
			{r: rd(117_779, 0), verdict: Baseline},
			{r: Reading{Wh: 117_783, At: at(1), MeterTime: at(0)}, verdict: Accepted, wh: 4},
		}},
		{"same stamp, rates differ: a reading", []step{
			{r: Reading{Wh: 1_000, At: at(0), MeterTime: at(0), RatesWh: rates(1, 2, 3, 4)}, verdict: Baseline},
			{r: Reading{Wh: 1_000, At: at(1), MeterTime: at(0), RatesWh: rates(1, 2, 3, 5)}, verdict: Accepted},
		}},
		{"same stamp, one delivery lacks rates", []step{
			{r: Reading{Wh: 1_000, At: at(0), MeterTime: at(0), RatesWh: rates(1, 2, 3, 4)}, verdict: Baseline},
			{r: Reading{Wh: 1_000, At: at(1), MeterTime: at(0)}, verdict: Duplicate},
		}},
		{"no meter clock, later gateway time: a reading", []step{
			{r: Reading{Wh: 1_000, At: at(0)}, verdict: Baseline},
			{r: Reading{Wh: 1_000, At: at(1)}, verdict: Accepted},
		}},
		{"of the last lower reading: not evidence", []step{
			{r: rd(5_000, 0), verdict: Baseline},
			{r: rd(10, 15), verdict: LowerPending, event: EventCounterLower},
			{r: Reading{Wh: 10, At: at(16), MeterTime: at(15)}, verdict: Duplicate},
			{r: Reading{Wh: 10, At: at(17), MeterTime: at(15)}, verdict: Duplicate},
			{r: rd(12, 30), verdict: LowerPending},
			{r: rd(15, 45), verdict: Reset, wh: 5, event: EventReset},
		}},
		{"of the held jump", []step{
			{r: rd(5_000, 0), verdict: Baseline},
			{r: rd(900_000, 15), verdict: Quarantined, event: EventSpike},
			{r: Reading{Wh: 900_000, At: at(16), MeterTime: at(15)}, verdict: Duplicate},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { run(t, State{}, lim60, tt.steps) })
	}
}

func TestCheck_Lower(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lim   Limits
		steps []step
		want  int64 // baseline at the end
	}{
		{"reset after three readings", lim60, []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(0, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(400, 30), verdict: LowerPending},
			{r: rd(900, 45), verdict: Reset, wh: 900, event: EventReset},
			{r: rd(1_000, 60), verdict: Accepted, wh: 100},
		}, 1_000},
		{"glitch, then back", lim60, []step{
			{r: rd(31_057, 0), verdict: Baseline},
			{r: rd(31_000, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(31_000, 30), verdict: LowerPending},
			{r: rd(31_070, 45), verdict: Accepted, wh: 13, event: EventLowerCleared},
		}, 31_070},
		{"run that falls starts again", lim60, []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(500, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(600, 30), verdict: LowerPending},
			{r: rd(0, 45), verdict: LowerPending},
			{r: rd(10, 60), verdict: LowerPending},
			{r: rd(20, 75), verdict: Reset, wh: 20, event: EventReset},
		}, 20},
		{"run that rises faster than the circuit starts again", lim60, []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(0, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(50_000, 30), verdict: LowerPending},
			{r: rd(50_010, 45), verdict: LowerPending},
			{r: rd(50_020, 60), verdict: Reset, wh: 20, event: EventReset},
		}, 50_020},
		{"sustained level with no load is evidence", lim60, []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(7, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(7, 30), verdict: LowerPending},
			{r: rd(7, 45), verdict: Reset, event: EventReset},
		}, 7},
		{"ResetAfter 2", Limits{MaxWhPerHour: 67_500, ResetAfter: 2}, []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(0, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(5, 30), verdict: Reset, wh: 5, event: EventReset},
		}, 5},
		{"a spike during the run keeps the evidence", lim60, []step{
			{r: rd(100_000, 0), verdict: Baseline},
			{r: rd(0, 15), verdict: LowerPending, event: EventCounterLower},
			{r: rd(9_000_000, 20), verdict: Quarantined, event: EventSpike},
			{r: rd(5, 30), verdict: LowerPending},
			{r: rd(9, 45), verdict: Reset, wh: 9, event: EventReset},
		}, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, State{}, tt.lim, tt.steps)
			if st.Baseline.Wh != tt.want || len(st.Lower) != 0 {
				t.Errorf("baseline %d Wh, %d lower pending; want %d Wh, none", st.Baseline.Wh, len(st.Lower), tt.want)
			}
		})
	}
}

func TestCheck_ResetRemembersTheOldCounter(t *testing.T) {
	st := run(t, State{}, lim60, []step{
		{r: rd(100_000, 0), verdict: Baseline},
		{r: rd(900_000, 5), verdict: Quarantined, event: EventSpike},
		{r: rd(3, 15), verdict: LowerPending, event: EventCounterLower},
		{r: rd(4, 30), verdict: LowerPending},
	})
	o := Check(st, rd(6, 45), lim60)
	if o.Verdict != Reset || o.Wh != 3 || !o.From.Equal(at(15)) || !o.To.Equal(at(45)) {
		t.Fatalf("Check = %s, %d Wh over [%s, %s); want reset, 3 Wh over [17:15, 17:45)", o.Verdict, o.Wh, o.From, o.To)
	}
	if o.Event.DroppedWh != 900_000 || o.Next.Quarantine != nil {
		t.Errorf("held jump: event dropped %d Wh, quarantine %v; want 900000 Wh dropped, none held", o.Event.DroppedWh, o.Next.Quarantine)
	}
	want := &AutoReset{Old: Sample{Wh: 100_000, At: at(0), MeterTime: at(0)}, First: Sample{Wh: 3, At: at(15), MeterTime: at(15)}}
	if !reflect.DeepEqual(o.Next.AutoReset, want) {
		t.Errorf("AutoReset = %+v; want %+v", o.Next.AutoReset, want)
	}
}

func TestCheck_Spike(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{"within the limit", lim60, []step{
			{r: rd(0, 0), verdict: Baseline},
			{r: rd(16_885, 15), verdict: Accepted, wh: 16_885},
		}},
		{"just above", lim60, []step{
			{r: rd(0, 0), verdict: Baseline},
			{r: rd(16_886, 15), verdict: Quarantined, event: EventSpike},
		}},
		{"a glitch: the meter comes back", lim60, []step{
			{r: rd(1_000, 0), verdict: Baseline},
			{r: rd(999_999_000, 15), verdict: Quarantined, event: EventSpike},
			{r: rd(999_999_000, 30), verdict: Quarantined},
			{r: rd(2_000, 45), verdict: Accepted, wh: 1_000, event: EventSpikeDropped},
		}},
		{"the jumped level persists: held, not billed, however long", lim60, []step{
			{r: rd(1_000, 0), verdict: Baseline},
			{r: rd(41_000, 15), verdict: Quarantined, event: EventSpike},
			{r: rd(41_500, 60), verdict: Quarantined},
			{r: rd(42_000, 24*60), verdict: Quarantined},
		}},
		{"readings less than a minute apart get a minute's limit", lim60, []step{
			{r: Reading{Wh: 0, At: t0}, verdict: Baseline},
			{r: Reading{Wh: 1_135, At: t0.Add(time.Second)}, verdict: Accepted, wh: 1_135},
			{r: Reading{Wh: 2_271, At: t0.Add(2 * time.Second)}, verdict: Quarantined, event: EventSpike},
		}},
		{"a long gap allows what the circuit could draw in it", lim60, []step{
			{r: rd(0, 0), verdict: Baseline},
			{r: rd(67_500*24, 24*60), verdict: Accepted, wh: 67_500 * 24},
		}},
		{"no limit configured", Limits{}, []step{
			{r: rd(0, 0), verdict: Baseline},
			{r: rd(1_000_000_000_000, 1), verdict: Accepted, wh: 1_000_000_000_000},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { run(t, State{}, tt.lim, tt.steps) })
	}
}

func TestCheck_QuarantineKeepsItsStart(t *testing.T) {
	st := run(t, State{}, lim60, []step{
		{r: rd(1_000, 0), verdict: Baseline},
		{r: rd(41_000, 15), verdict: Quarantined, event: EventSpike},
		{r: rd(41_500, 60), verdict: Quarantined},
	})
	if q := st.Quarantine; q == nil || q.Held.Wh != 41_500 || !q.Since.Equal(at(15)) || st.Baseline.Wh != 1_000 {
		t.Errorf("quarantine %+v, baseline %d; want held 41500 since 17:15, baseline 1000", q, st.Baseline.Wh)
	}
}

func TestCheck_ClockBack(t *testing.T) {
	run(t, State{}, lim60, []step{
		{r: rd(1_000, 30), verdict: Baseline},
		{r: rd(1_200, 15), verdict: ClockBack, event: EventClockBack},
		{r: Reading{Wh: 1_200, At: at(30)}, verdict: ClockBack, event: EventClockBack}, // stood still
		{r: rd(1_300, 45), verdict: Accepted, wh: 300},
		{r: rd(10, 60), verdict: LowerPending, event: EventCounterLower},
		{r: rd(11, 50), verdict: ClockBack, event: EventClockBack}, // older than the lower reading
	})
}

func TestCheck_Invalid(t *testing.T) {
	run(t, State{}, lim60, []step{
		{r: rd(-1, 0), verdict: Invalid},
		{r: rd(1_000, 15), verdict: Baseline},
		{r: Reading{Wh: 1_100, At: at(30), RatesWh: &[4]int64{0, -1, 0, 0}}, verdict: Invalid},
		{r: rd(math.MinInt64, 45), verdict: Invalid},
	})
}

func TestCheck_RatesWh(t *testing.T) {
	st := Check(State{}, Reading{Wh: 10_000, At: at(0), RatesWh: &[4]int64{1_000, 2_000, 3_000, 4_000}}, lim60).Next
	for _, tt := range []struct {
		name  string
		rates *[4]int64
		want  *[4]int64
	}{
		{"rises", &[4]int64{1_000, 2_100, 3_050, 4_000}, &[4]int64{0, 100, 50, 0}},
		{"no rates", nil, nil},
		{"a rate counter went down", &[4]int64{0, 2_100, 3_050, 4_000}, nil},
	} {
		o := Check(st, Reading{Wh: 10_150, At: at(15), RatesWh: tt.rates}, lim60)
		if !reflect.DeepEqual(o.RatesWh, tt.want) {
			t.Errorf("%s: RatesWh = %v; want %v", tt.name, o.RatesWh, tt.want)
		}
	}
}

// Check must leave the caller's State alone: the pipeline keeps it if the
// cycle's transaction fails.
func TestCheck_DoesNotModifyState(t *testing.T) {
	lower := make([]Sample, 2, 10)
	lower[0], lower[1] = Sample{Wh: 10, At: at(15)}, Sample{Wh: 20, At: at(30)}
	st := State{Known: true, Baseline: Sample{Wh: 100_000, At: at(0)}, Lower: lower,
		Quarantine: &Quarantine{Held: Sample{Wh: 900_000, At: at(5)}, Since: at(5)},
		AutoReset:  &AutoReset{Old: Sample{Wh: 1}, First: Sample{Wh: 0}}}
	before := st.clone()
	for _, r := range []Reading{rd(30, 45), rd(5, 45), rd(100_100, 45), rd(990_000, 45), {ZeroFrame: true, At: at(45)}} {
		Check(st, r, Limits{MaxWhPerHour: 67_500, ResetAfter: 5})
		Check(st, r, lim60)
		if !reflect.DeepEqual(st, before) || lower[:3][2] != (Sample{}) {
			t.Fatalf("Check(%d Wh) changed its input: %+v; want %+v", r.Wh, st, before)
		}
	}
	if _, err := Release(st, at(50), lim60); err != nil {
		t.Fatal(err)
	}
	if _, err := Exchange(st, 100_500, 0, at(10), lim60); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, before) {
		t.Fatalf("Release or Exchange changed its input")
	}
}

func TestLimits_MaxRise(t *testing.T) {
	for _, tt := range []struct {
		lim     Limits
		elapsed time.Duration
		want    int64
	}{
		{lim60, 15 * time.Minute, 16_885},
		{lim60, time.Hour, 67_510},
		{lim60, 0, 1_135},          // a minute's worth: 67500/60 + 10
		{lim60, -time.Hour, 1_135}, // clock stepped back
		{lim60, 500 * time.Millisecond, 1_135},
		{CircuitLimits(60, 1), time.Hour, 22_510},
		{Limits{MaxWhPerHour: 1 << 62}, 100 * 365 * 24 * time.Hour, math.MaxInt64}, // saturates
		{Limits{}, time.Hour, math.MaxInt64},
		{Limits{MaxWhPerHour: 3_600, SlackWh: -5}, time.Hour, 3_600},
	} {
		if got := tt.lim.MaxRise(tt.elapsed); got != tt.want {
			t.Errorf("%+v.MaxRise(%s) = %d; want %d", tt.lim, tt.elapsed, got, tt.want)
		}
	}
}

func TestLimits_ResetAfterBounds(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 3}, {-1, 3}, {1, 1}, {7, 7}, {1_000_000, MaxResetAfter}} {
		if got := (Limits{ResetAfter: tt.in}).resetAfter(); got != tt.want {
			t.Errorf("ResetAfter %d: got %d; want %d", tt.in, got, tt.want)
		}
	}
}

// The pipeline persists State; every field must survive JSON.
func TestState_JSONRoundTrip(t *testing.T) {
	st := State{
		Known:      true,
		Baseline:   Sample{Wh: 100_000, At: at(0), MeterTime: at(0).AddDate(-21, 0, 1), RatesWh: [4]int64{1, 2, 3, 4}, HasRates: true},
		Lower:      []Sample{{Wh: 10, At: at(15)}, {Wh: 20, At: at(30)}},
		Quarantine: &Quarantine{Held: Sample{Wh: 900_000, At: at(5)}, Since: at(5)},
		AutoReset:  &AutoReset{Old: Sample{Wh: 50, At: at(-60)}, First: Sample{Wh: 1, At: at(-45)}},
		Remainder:  9_999_999,
	}
	for _, in := range []State{st, {}} {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out State
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out, in) {
			t.Errorf("round trip of %s = %+v; want %+v", b, out, in)
		}
	}
}
