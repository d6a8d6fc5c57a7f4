package counter

import (
	"math"
	"time"
)

// Reading is one new value of a meter's counters.
type Reading struct {
	Wh        int64     // import total active energy counter
	At        time.Time // gateway time of the reading
	MeterTime time.Time // the meter's own clock; zero if it has none
	// RatesWh are the meter's sharp, peak, flat and valley counters, or
	// nil if it has none.
	RatesWh *[4]int64
	// ZeroFrame is set when every value of the message was zero: a
	// meter's glitch, never a reading of 0.
	ZeroFrame bool
}

// Limits are the rules' parameters for one meter.
type Limits struct {
	// MaxWhPerHour is the most the circuit can draw in an hour: rated
	// current × highest phase voltage × phases × margin (CircuitLimits).
	// Zero or less turns the spike rule off.
	MaxWhPerHour int64
	// SlackWh is added to every limit: the counter's own rounding.
	SlackWh int64
	// ResetAfter is how many consecutive lower readings make a reset:
	// DefaultResetAfter if zero or less, at most MaxResetAfter.
	ResetAfter int
}

// Defaults and bounds of Limits.
const (
	DefaultResetAfter = 3
	MaxResetAfter     = 100 // keeps State.Lower small
)

// Circuit parameters of CircuitLimits: the highest phase voltage a
// 220/380 V mall supply reaches, and half again as margin, since a circuit
// can be overloaded for a while before its breaker trips.
const (
	MaxPhaseVolts = 250
	MarginPct     = 150
	// SlackWh covers a float32 counter's rounding (tens of Wh at MWh).
	SlackWh = 10
)

// CircuitLimits are the Limits of a circuit with the rated current in
// amperes and the number of phases, with MaxPhaseVolts, MarginPct, SlackWh
// and DefaultResetAfter.
func CircuitLimits(ratedAmps int64, phases int64) Limits {
	return Limits{
		MaxWhPerHour: ratedAmps * MaxPhaseVolts * phases * MarginPct / 100,
		SlackWh:      SlackWh,
		ResetAfter:   DefaultResetAfter,
	}
}

func (l Limits) resetAfter() int {
	switch {
	case l.ResetAfter <= 0:
		return DefaultResetAfter
	case l.ResetAfter > MaxResetAfter:
		return MaxResetAfter
	}
	return l.ResetAfter
}

// MaxRise is the largest plausible rise of the counter over elapsed: see
// the package documentation. It saturates at math.MaxInt64 rather than
// overflow.
func (l Limits) MaxRise(elapsed time.Duration) int64 {
	if l.MaxWhPerHour <= 0 {
		return math.MaxInt64
	}
	elapsed = max(elapsed, time.Minute)
	secs := int64(elapsed / time.Second)
	slack := max(l.SlackWh, 0)
	if secs > (math.MaxInt64-slack)/l.MaxWhPerHour {
		return math.MaxInt64
	}
	return l.MaxWhPerHour*secs/3600 + slack
}

// Verdict is what Check made of a reading; the package documentation
// gives the rules.
type Verdict string

// Verdicts.
const (
	Invalid      Verdict = "invalid"
	ZeroFrame    Verdict = "zero_frame"
	Baseline     Verdict = "baseline"
	ClockBack    Verdict = "clock_back"
	Duplicate    Verdict = "duplicate"
	LowerPending Verdict = "lower_pending"
	Reset        Verdict = "reset"
	Quarantined  Verdict = "quarantined"
	Accepted     Verdict = "accepted"
	Released     Verdict = "released"  // Release
	Exchanged    Verdict = "exchanged" // Exchange
)

// Refused reports whether the verdict leaves the reading unbilled and the
// baseline where it was.
func (v Verdict) Refused() bool {
	switch v {
	case Invalid, ZeroFrame, ClockBack, Duplicate, LowerPending, Quarantined:
		return true
	}
	return false
}

// Outcome is the result of Check, Exchange or Release.
type Outcome struct {
	Verdict Verdict
	// Wh is the energy to bill, over [From, To); 0 unless the verdict is
	// Accepted, Reset, Released or Exchanged.
	Wh       int64
	From, To time.Time
	// RatesWh is the rise of the meter's own rate counters over the same
	// span, when both ends carry them and none went down; nil otherwise.
	RatesWh *[4]int64
	// Spans lay Wh out on the counter chains it was drawn on, in counter
	// order: one span, except for an exchange that bills the old meter's
	// last energy and the new one's first, which are on two chains. Each
	// span's energy is its counter rise, never negative.
	Spans []Span
	// Break is set when the outcome starts a counter chain (the first
	// reading, a reset, an exchange) or amends one (an exchange after its
	// reset): the caller records it where a ledger check can see it.
	Break *Break
	// Event is what an operator must hear about, or nil.
	Event *Event
	// Next is the meter's State after the reading, to be stored with the
	// charge.
	Next State
}

// Check judges reading r against the meter's State st. It never fails:
// whatever the reading, the Outcome says what to bill (perhaps nothing) and
// what to remember. st is not modified.
func Check(st State, r Reading, lim Limits) Outcome {
	out := Outcome{Next: st.clone()}
	next := &out.Next
	switch {
	case r.Wh < 0 || negativeRate(r.RatesWh):
		out.Verdict = Invalid
		return out
	case r.ZeroFrame:
		out.Verdict = ZeroFrame
		return out
	case !st.Known:
		out.Verdict = Baseline
		*next = State{Known: true, Baseline: sampleOf(r), Remainder: st.Remainder}
		out.Break = &Break{Chain: 0, Kind: Baseline, At: r.At, NewStartWh: r.Wh}
		return out
	case st.isDuplicate(r):
		out.Verdict = Duplicate
		return out
	case !r.At.After(st.latest()):
		out.Verdict = ClockBack
		out.Event = &Event{Kind: EventClockBack, At: r.At, Wh: r.Wh, BaselineWh: st.Baseline.Wh, Latest: st.latest()}
		return out
	case r.Wh < st.Baseline.Wh:
		return checkLower(st, r, lim, out)
	}

	rise := r.Wh - st.Baseline.Wh
	held := st.Quarantine != nil && r.Wh >= st.Quarantine.Held.Wh
	if held || rise > lim.MaxRise(r.At.Sub(st.Baseline.At)) {
		out.Verdict = Quarantined
		q := Quarantine{Held: sampleOf(r), Since: r.At}
		if st.Quarantine != nil {
			q.Since = st.Quarantine.Since
		} else {
			elapsed := r.At.Sub(st.Baseline.At)
			out.Event = &Event{Kind: EventSpike, At: r.At, Wh: r.Wh, BaselineWh: st.Baseline.Wh,
				Limit: lim.MaxRise(elapsed), Elapsed: elapsed}
		}
		// A pending lower run stays: a spike on top of a reset is noise
		// and must not throw away the reset's evidence.
		next.Quarantine = &q
		return out
	}

	out.Verdict = Accepted
	out.Wh, out.From, out.To = rise, st.Baseline.At, r.At
	s := sampleOf(r)
	out.RatesWh = rateDeltas(st.Baseline, s)
	out.span(st.Chain, st.Baseline.Wh, r.Wh)
	next.Baseline, next.Lower, next.Quarantine = s, nil, nil
	switch {
	case st.Quarantine != nil:
		out.Event = &Event{Kind: EventSpikeDropped, At: r.At, Wh: st.Quarantine.Held.Wh, BaselineWh: st.Baseline.Wh}
	case len(st.Lower) > 0:
		out.Event = &Event{Kind: EventLowerCleared, At: r.At, Wh: r.Wh, BaselineWh: st.Baseline.Wh, Readings: len(st.Lower)}
	}
	return out
}

// checkLower handles a reading below the baseline: evidence of a reset,
// until there is enough of it.
func checkLower(st State, r Reading, lim Limits, out Outcome) Outcome {
	next := &out.Next
	s := sampleOf(r)
	run := next.Lower
	if n := len(run); n > 0 {
		last := run[n-1]
		// A new counter counts up, and no faster than the circuit draws:
		// a run that does anything else is not one counter.
		if r.Wh < last.Wh || r.Wh-last.Wh > lim.MaxRise(r.At.Sub(last.At)) {
			run = run[:0]
		}
	}
	run = append(run, s)
	if len(st.Lower) == 0 {
		out.Event = &Event{Kind: EventCounterLower, At: r.At, Wh: r.Wh, BaselineWh: st.Baseline.Wh,
			Readings: 1, Needed: lim.resetAfter()}
	}
	if len(run) < lim.resetAfter() {
		out.Verdict = LowerPending
		next.Lower = run
		return out
	}
	first := run[0]
	out.Verdict = Reset
	out.Wh, out.From, out.To = s.Wh-first.Wh, first.At, s.At
	out.RatesWh = rateDeltas(first, s)
	out.Event = &Event{Kind: EventReset, At: r.At, Wh: r.Wh, BaselineWh: st.Baseline.Wh,
		FirstWh: first.Wh, Readings: len(run)}
	if st.Quarantine != nil {
		// The held jump was measured on the old counter; the operator
		// hears of it in the reset event.
		out.Event.DroppedWh = st.Quarantine.Held.Wh
	}
	*next = State{Known: true, Baseline: s, AutoReset: &AutoReset{Old: st.Baseline, First: first}, Remainder: st.Remainder,
		Chain: st.Chain + 1}
	out.Break = &Break{Chain: next.Chain, Kind: Reset, At: first.At, OldEndWh: st.Baseline.Wh, NewStartWh: first.Wh}
	out.span(next.Chain, first.Wh, s.Wh)
	return out
}

// span adds the energy from fromWh to toWh on chain, over the outcome's
// time span and with its rate counters' rises, as the outcome's only span.
func (o *Outcome) span(chain int, fromWh, toWh int64) {
	if toWh == fromWh {
		return
	}
	o.Spans = append(o.Spans, Span{Chain: chain, FromWh: fromWh, ToWh: toWh, From: o.From, To: o.To, RatesWh: o.RatesWh})
}

// isDuplicate reports whether r is the baseline, the last lower reading or
// the held jump delivered again.
func (st State) isDuplicate(r Reading) bool {
	if sameReading(st.Baseline, r) {
		return true
	}
	if n := len(st.Lower); n > 0 && sameReading(st.Lower[n-1], r) {
		return true
	}
	return st.Quarantine != nil && sameReading(st.Quarantine.Held, r)
}

// sameReading: the same counters, stamped with the same time by the
// gateway or by the meter. Rate counters are compared when both have them,
// since one delivery may lack a tag the other has.
func sameReading(s Sample, r Reading) bool {
	if s.Wh != r.Wh {
		return false
	}
	if s.HasRates && r.RatesWh != nil && s.RatesWh != *r.RatesWh {
		return false
	}
	return s.At.Equal(r.At) || (!r.MeterTime.IsZero() && s.MeterTime.Equal(r.MeterTime))
}

func negativeRate(r *[4]int64) bool {
	if r == nil {
		return false
	}
	for _, v := range r {
		if v < 0 {
			return true
		}
	}
	return false
}
