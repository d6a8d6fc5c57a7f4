package counter

import (
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Release bills a held jump at an operator's word: the rise from the
// baseline to the held reading, over [baseline At, held At). The held
// reading becomes the baseline. at is when the operator acted, for the
// event. It returns ErrNoQuarantine if no jump is held, and ErrRelease if
// the jump is back at the level of the meter an exchange record said was
// taken out: the readings continue the old counter, so the exchange was
// wrong, and releasing would bill the old counter's energy a second time.
// st is not modified.
func Release(st State, at time.Time, lim Limits) (Outcome, error) {
	if !st.Known || st.Quarantine == nil {
		return Outcome{Next: st}, ErrNoQuarantine
	}
	held := st.Quarantine.Held
	// The sign of a wrong record: the held reading is where the old
	// counter could have got to since the record (it continues it), and
	// the jump covers most of the way from the new meter's start up to the
	// old meter's final reading. A new meter with a small counter that
	// draws a burst past a small old final reading makes a short jump, and
	// is released as any other.
	x := st.Exchange
	if x != nil && held.Wh >= x.OldFinalWh && held.Wh-x.OldFinalWh <= lim.MaxRise(held.At.Sub(x.At)) &&
		2*(held.Wh-st.Baseline.Wh) > x.OldFinalWh-x.NewStartWh {
		return Outcome{Next: st}, fmt.Errorf("%w: the held reading %s kWh continues the counter the exchange at %s recorded as taken out at %s kWh: "+
			"the meter was not exchanged; record a correcting exchange instead (old final %s kWh, new start %s kWh: the counter it showed then)",
			ErrRelease, kwh(held.Wh), x.At.Format(time.RFC3339), kwh(x.OldFinalWh), kwh(st.Baseline.Wh), kwh(x.OldFinalWh))
	}
	out := Outcome{Verdict: Released, Wh: held.Wh - st.Baseline.Wh, From: st.Baseline.At, To: held.At,
		RatesWh: rateDeltas(st.Baseline, held), Next: st.clone()}
	out.span(st.Chain, st.Baseline.Wh, held.Wh)
	out.Event = &Event{Kind: EventReleased, At: at, Wh: held.Wh, BaselineWh: st.Baseline.Wh, BilledWh: out.Wh}
	out.Next.Baseline, out.Next.Quarantine = held, nil
	return out, nil
}

// Exchange applies an operator's meter-exchange record: the old meter was
// taken out at time at reading oldFinalWh, and the new one put in reading
// newStartWh. The record may come before the new meter's first reading, or
// after its readings have started (as lower readings, or as a reset already
// accepted), and is applied to whichever fits at:
//
//   - a lower run is pending and at is between the baseline and the run's
//     first reading: the old meter's last energy (oldFinalWh − baseline)
//     is billed on the old chain over [baseline At, at), the new one's up
//     to the run's last reading (last − newStartWh) on a new chain over
//     [at, last At), and the run's last reading becomes the baseline;
//   - a reset was accepted on evidence and at is between the old counter's
//     last reading and the new counter's first: what that reset could not
//     bill is billed — oldFinalWh − the old baseline on the old chain, and
//     the new counter's first reading − newStartWh on the reset's chain,
//     whose break the record amends; the baseline stays;
//   - otherwise, at is not before the baseline: the old meter's last
//     energy is billed over [baseline At, at) and newStartWh at at becomes
//     the baseline of a new chain, for the new meter's readings to come.
//
// The record must fit the readings: the old meter cannot have risen from
// its last accepted reading to oldFinalWh, nor the new one from newStartWh
// to its first reading, faster than the circuit draws (lim). A held jump of
// the old meter is discarded in the first and last cases: the operator's
// final reading replaces it.
//
// A record entered after the new meter's readings began must say when the
// exchange was (ExchangeTime gives the time when it does not).
//
// Exchange returns ErrNoBaseline for a meter never read, ErrRepeated for
// the record last applied sent again (nothing is billed twice), and
// ErrExchange for a record that contradicts the readings; st is not
// modified.
func Exchange(st State, oldFinalWh, newStartWh int64, at time.Time, lim Limits) (Outcome, error) {
	fail := func(format string, args ...any) (Outcome, error) {
		return Outcome{Next: st}, fmt.Errorf("%w: "+format, append([]any{ErrExchange}, args...)...)
	}
	if !st.Known {
		return Outcome{Next: st}, ErrNoBaseline
	}
	if x := st.Exchange; x != nil && x.OldFinalWh == oldFinalWh && x.NewStartWh == newStartWh {
		return Outcome{Next: st}, fmt.Errorf("%w: old final %s kWh, new start %s kWh, applied at %s",
			ErrRepeated, kwh(oldFinalWh), kwh(newStartWh), x.At.Format(time.RFC3339))
	}
	if oldFinalWh < 0 || newStartWh < 0 {
		return fail("negative reading (old final %d Wh, new start %d Wh)", oldFinalWh, newStartWh)
	}
	out := Outcome{Verdict: Exchanged, Next: st.clone()}
	next := &out.Next
	ev := &Event{Kind: EventExchange, At: at, Wh: oldFinalWh, FirstWh: newStartWh}
	out.Event = ev
	base := st.Baseline
	// oldFits and newFits check the record against the readings on either
	// side of it.
	oldFits := func(last Sample) error {
		if oldFinalWh < last.Wh {
			return fmt.Errorf("old meter's final %s kWh is below its last accepted %s kWh", kwh(oldFinalWh), kwh(last.Wh))
		}
		if limit := lim.MaxRise(at.Sub(last.At)); oldFinalWh-last.Wh > limit {
			return fmt.Errorf("old meter's final %s kWh is %s kWh above its last accepted %s kWh at %s, more than the circuit can draw by %s (%s kWh)",
				kwh(oldFinalWh), kwh(oldFinalWh-last.Wh), kwh(last.Wh), last.At.Format(time.RFC3339), at.Format(time.RFC3339), kwh(limit))
		}
		return nil
	}
	newFits := func(first Sample) error {
		if newStartWh > first.Wh {
			return fmt.Errorf("new meter's start %s kWh is above its first reading %s kWh", kwh(newStartWh), kwh(first.Wh))
		}
		if limit := lim.MaxRise(first.At.Sub(at)); first.Wh-newStartWh > limit {
			return fmt.Errorf("new meter's first reading %s kWh is %s kWh above its start %s kWh, more than the circuit can draw by %s (%s kWh)",
				kwh(first.Wh), kwh(first.Wh-newStartWh), kwh(newStartWh), first.At.Format(time.RFC3339), kwh(limit))
		}
		return nil
	}

	c := st.Chain
	switch ar := st.AutoReset; {
	case len(st.Lower) > 0 && !at.Before(base.At) && !at.After(st.Lower[0].At):
		last := st.Lower[len(st.Lower)-1]
		if err := errors.Join(oldFits(base), newFits(st.Lower[0])); err != nil {
			return fail("%v", err)
		}
		out.Wh = (oldFinalWh - base.Wh) + (last.Wh - newStartWh)
		out.From, out.To = base.At, last.At
		out.Spans = spans(Span{Chain: c, FromWh: base.Wh, ToWh: oldFinalWh, From: base.At, To: at},
			Span{Chain: c + 1, FromWh: newStartWh, ToWh: last.Wh, From: at, To: last.At})
		out.Break = &Break{Chain: c + 1, Kind: Exchanged, At: at, OldEndWh: oldFinalWh, NewStartWh: newStartWh}
		next.Baseline, next.Lower, next.Quarantine, next.AutoReset, next.Chain = last, nil, nil, nil, c+1
		ev.BaselineWh, ev.Note, ev.Case = base.Wh, "new meter's readings were pending", "pending"
	case ar != nil && len(st.Lower) == 0 && !at.Before(ar.Old.At) && !at.After(ar.First.At):
		if err := errors.Join(oldFits(ar.Old), newFits(ar.First)); err != nil {
			return fail("%v", err)
		}
		out.Wh = (oldFinalWh - ar.Old.Wh) + (ar.First.Wh - newStartWh)
		out.From, out.To = ar.Old.At, ar.First.At
		out.Spans = spans(Span{Chain: c - 1, FromWh: ar.Old.Wh, ToWh: oldFinalWh, From: ar.Old.At, To: at},
			Span{Chain: c, FromWh: newStartWh, ToWh: ar.First.Wh, From: at, To: ar.First.At})
		out.Break = &Break{Chain: c, Kind: Exchanged, At: at, OldEndWh: oldFinalWh, NewStartWh: newStartWh, Amends: true}
		next.AutoReset = nil
		ev.BaselineWh, ev.Note, ev.Case = ar.Old.Wh, "after the reset was accepted on evidence", "after_reset"
	case ar != nil && len(st.Lower) == 0:
		// The new counter's readings were accepted as a reset: the record
		// belongs between them and the old counter's, or it would bill the
		// old counter's energy on the new one.
		return fail("the counter was reset (last old reading %s kWh at %s, first new %s kWh at %s): give the exchange's time between them, or leave it out",
			kwh(ar.Old.Wh), ar.Old.At.Format(time.RFC3339), kwh(ar.First.Wh), ar.First.At.Format(time.RFC3339))
	case !at.Before(base.At) && len(st.Lower) == 0:
		if err := oldFits(base); err != nil {
			return fail("%v", err)
		}
		out.Wh = oldFinalWh - base.Wh
		out.From, out.To = base.At, at
		out.Spans = spans(Span{Chain: c, FromWh: base.Wh, ToWh: oldFinalWh, From: base.At, To: at})
		out.Break = &Break{Chain: c + 1, Kind: Exchanged, At: at, OldEndWh: oldFinalWh, NewStartWh: newStartWh}
		next.Baseline = Sample{Wh: newStartWh, At: at}
		next.Quarantine, next.AutoReset, next.Chain = nil, nil, c+1
		ev.BaselineWh, ev.Note, ev.Case = base.Wh, "before the new meter's first reading", "before_first"
	default:
		return fail("exchange at %s fits neither the pending lower readings, the last reset, nor the time after the last accepted reading (%s)",
			at.Format(time.RFC3339), base.At.Format(time.RFC3339))
	}
	for _, sp := range out.Spans {
		if !sp.From.Before(sp.To) {
			// Energy needs time to be drawn in, and the tariff a span to
			// price it over.
			return fail("%s kWh billed over no time (%s to %s)", kwh(sp.Wh()), sp.From.Format(time.RFC3339), sp.To.Format(time.RFC3339))
		}
	}
	next.Exchange = &ExchangeMark{At: at, OldFinalWh: oldFinalWh, NewStartWh: newStartWh}
	ev.BilledWh = out.Wh
	return out, nil
}

// spans keeps the spans that bill energy.
func spans(all ...Span) []Span {
	out := all[:0]
	for _, sp := range all {
		if sp.Wh() != 0 {
			out = append(out, sp)
		}
	}
	return out
}

// ExchangeTime is when a meter exchange whose record gives no time is taken
// to have happened, when the new counter's readings have begun (pending
// below the baseline, or accepted as a reset): between the old counter's
// last accepted reading and the new counter's first, splitting that time
// in proportion to the energy each meter counted in it (the old meter's
// last, oldFinalWh − its last reading; the new one's first, its first
// reading − newStartWh), as a steady load would. ok is false when the new
// counter's readings have not begun: the exchange is now.
func ExchangeTime(st State, oldFinalWh, newStartWh int64) (at time.Time, ok bool) {
	var last, first Sample
	switch {
	case len(st.Lower) > 0:
		last, first = st.Baseline, st.Lower[0]
	case st.AutoReset != nil:
		last, first = st.AutoReset.Old, st.AutoReset.First
	default:
		return time.Time{}, false
	}
	oldWh, newWh := max(oldFinalWh-last.Wh, 0), max(first.Wh-newStartWh, 0)
	span := first.At.Sub(last.At)
	if oldWh+newWh == 0 || span <= 0 {
		return last.At.Add(span / 2), true
	}
	hi, lo := bits.Mul64(uint64(span), uint64(oldWh))
	q, _ := bits.Div64(hi, lo, uint64(oldWh+newWh)) // oldWh ≤ the sum: the quotient fits
	return last.At.Add(time.Duration(q)), true
}
