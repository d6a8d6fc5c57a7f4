package counter

import (
	"fmt"
	"time"
)

// Release bills a held jump at an operator's word: the rise from the
// baseline to the held reading, over [baseline At, held At). The held
// reading becomes the baseline. at is when the operator acted, for the
// event. It returns ErrNoQuarantine if no jump is held; st is not modified.
func Release(st State, at time.Time) (Outcome, error) {
	if !st.Known || st.Quarantine == nil {
		return Outcome{Next: st}, ErrNoQuarantine
	}
	held := st.Quarantine.Held
	out := Outcome{Verdict: Released, Wh: held.Wh - st.Baseline.Wh, From: st.Baseline.At, To: held.At,
		RatesWh: rateDeltas(st.Baseline, held), Next: st.clone()}
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
//     and the new one's up to the run's last reading (last − newStartWh)
//     are billed over [baseline At, last At), and the run's last reading
//     becomes the baseline;
//   - a reset was accepted on evidence and at is between the old counter's
//     last reading and the new counter's first: what that reset could not
//     bill is billed — oldFinalWh − the old baseline, plus the new counter's
//     first reading − newStartWh — over [old At, first At); the baseline
//     stays;
//   - otherwise, at is not before the baseline: the old meter's last
//     energy is billed over [baseline At, at) and newStartWh at at becomes
//     the baseline, for the new meter's readings to come.
//
// A held jump of the old meter is discarded in the first and last cases:
// the operator's final reading replaces it. Exchange returns ErrNoBaseline
// for a meter never read, and ErrExchange for a record that contradicts the
// readings; st is not modified.
func Exchange(st State, oldFinalWh, newStartWh int64, at time.Time) (Outcome, error) {
	fail := func(format string, args ...any) (Outcome, error) {
		return Outcome{Next: st}, fmt.Errorf("%w: "+format, append([]any{ErrExchange}, args...)...)
	}
	if !st.Known {
		return Outcome{Next: st}, ErrNoBaseline
	}
	if oldFinalWh < 0 || newStartWh < 0 {
		return fail("negative reading (old final %d Wh, new start %d Wh)", oldFinalWh, newStartWh)
	}
	out := Outcome{Verdict: Exchanged, Next: st.clone()}
	next := &out.Next
	ev := &Event{Kind: EventExchange, At: at, Wh: oldFinalWh, FirstWh: newStartWh}
	out.Event = ev
	base := st.Baseline

	switch ar := st.AutoReset; {
	case len(st.Lower) > 0 && !at.Before(base.At) && !at.After(st.Lower[0].At):
		last := st.Lower[len(st.Lower)-1]
		if oldFinalWh < base.Wh {
			return fail("old meter's final %s kWh is below its last accepted %s kWh", kwh(oldFinalWh), kwh(base.Wh))
		}
		if newStartWh > st.Lower[0].Wh {
			return fail("new meter's start %s kWh is above its first reading %s kWh", kwh(newStartWh), kwh(st.Lower[0].Wh))
		}
		out.Wh = (oldFinalWh - base.Wh) + (last.Wh - newStartWh)
		out.From, out.To = base.At, last.At
		next.Baseline, next.Lower, next.Quarantine, next.AutoReset = last, nil, nil, nil
		ev.BaselineWh, ev.Note = base.Wh, "new meter's readings were pending"
	case ar != nil && len(st.Lower) == 0 && !at.Before(ar.Old.At) && !at.After(ar.First.At):
		if oldFinalWh < ar.Old.Wh {
			return fail("old meter's final %s kWh is below its last accepted %s kWh", kwh(oldFinalWh), kwh(ar.Old.Wh))
		}
		if newStartWh > ar.First.Wh {
			return fail("new meter's start %s kWh is above its first reading %s kWh", kwh(newStartWh), kwh(ar.First.Wh))
		}
		out.Wh = (oldFinalWh - ar.Old.Wh) + (ar.First.Wh - newStartWh)
		out.From, out.To = ar.Old.At, ar.First.At
		next.AutoReset = nil
		ev.BaselineWh, ev.Note = ar.Old.Wh, "after the reset was accepted on evidence"
	case !at.Before(base.At) && len(st.Lower) == 0:
		if oldFinalWh < base.Wh {
			return fail("old meter's final %s kWh is below its last accepted %s kWh", kwh(oldFinalWh), kwh(base.Wh))
		}
		out.Wh = oldFinalWh - base.Wh
		out.From, out.To = base.At, at
		next.Baseline = Sample{Wh: newStartWh, At: at}
		next.Quarantine, next.AutoReset = nil, nil
		ev.BaselineWh, ev.Note = base.Wh, "before the new meter's first reading"
	default:
		return fail("exchange at %s fits neither the pending lower readings, the last reset, nor the time after the last accepted reading (%s)",
			at.Format(time.RFC3339), base.At.Format(time.RFC3339))
	}
	if out.Wh > 0 && !out.From.Before(out.To) {
		// Energy needs time to be drawn in, and the tariff a span to
		// price it over.
		return fail("%s kWh billed over no time (%s to %s)", kwh(out.Wh), out.From.Format(time.RFC3339), out.To.Format(time.RFC3339))
	}
	ev.BilledWh = out.Wh
	return out, nil
}
