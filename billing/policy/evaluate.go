package policy

import (
	"math"
	"time"

	"mallgrid/billing"
)

// Input is what the policy needs to know about an account at one
// evaluation.
type Input struct {
	// Balance is the ledger balance less charges accrued but not posted.
	Balance billing.Money
	// Rating is the tenant's credit rating.
	Rating Rating
	// Protected is the site's protected hours.
	Protected Protected
	// Flag is the operator's protection flag on the account; nil: none.
	Flag *Protection
	// Now is the gateway's time of the evaluation.
	Now time.Time
}

// Decision is the policy's answer for one account.
type Decision struct {
	// Next is the Status to store and pass as prev next time.
	Next Status
	// Closed is the desired relay state for all the tenant's meters: true
	// is power on. (The gateway never opens public or main meters.)
	Closed bool
	// Events is what happened, in order; nil when nothing did.
	Events []Event
}

// Evaluate applies the rules of the package doc to an account whose last
// stored Status is prev. It reads no clock and keeps nothing: the same
// prev and in always give the same Decision, and evaluating Decision.Next
// again with the same in gives the same Next, the same relay state and no
// events. A prev.State that is not a State (a damaged record) is read as
// the zero Status, so that the account is rebuilt from its balance, with a
// new grace time if it is exhausted, rather than cut on a guess.
func Evaluate(prev Status, in Input) Decision {
	if prev.State == "" || prev.State.rank() < 0 {
		prev = Status{State: StateNormal}
	}
	e := evaluation{in: in, next: prev}
	e.run(prev)
	return Decision{Next: e.next, Closed: e.next.Closed(), Events: e.events}
}

// evaluation is the working state of one Evaluate.
type evaluation struct {
	in     Input
	next   Status
	events []Event
}

func (e *evaluation) emit(kind EventKind, at time.Time, hold Hold, reason string) {
	e.events = append(e.events, Event{Kind: kind, At: at, Balance: e.in.Balance, Hold: hold, Reason: reason})
}

func (e *evaluation) run(prev Status) {
	r, b, now := e.in.Rating, e.in.Balance, e.in.Now
	switch prev.State {
	case StateCutOff:
		// Only the restore level brings power back once it has been cut:
		// a balance just above the overdraft limit would be cut again at
		// the next charge.
		if b >= r.restore {
			e.next = Status{State: r.band(b)}
			e.emit(EventRestored, now, "", "")
			return
		}
	case StateExhausted:
		if b >= r.cancelLevel() {
			e.next = Status{State: r.leave(b)}
			e.emit(EventCutOffCancelled, now, "", "")
			return
		}
	default:
		// Short of exhaustion a Status is its State alone; times left in
		// a damaged record are dropped rather than acted on.
		e.next = Status{State: prev.State}
		down := r.band(b)
		if down.rank() > prev.State.rank() {
			e.next.State = down
			if down != StateExhausted {
				e.emit(warningEvent(down), now, "", "")
				return
			}
			e.next.ExhaustedAt = now
			break
		}
		if up := r.band(lessHysteresis(b)); up.rank() < prev.State.rank() {
			e.next.State = up
		}
		return
	}
	e.schedule()
	e.relay(prev)
}

// schedule sets the cut-off time of an exhausted account from its stored
// ExhaustedAt, never earlier than the time already stored: the tenant was
// told that time, and a clock stepped back or a config reloaded must not
// bring it forward.
func (e *evaluation) schedule() {
	if e.next.State != StateExhausted {
		return
	}
	if e.next.ExhaustedAt.IsZero() { // a damaged record: the grace starts now
		e.next.ExhaustedAt = e.in.Now
	}
	graceEnd := e.next.ExhaustedAt.Add(e.in.Rating.grace)
	due := e.in.Protected.EndOf(graceEnd)
	if !due.After(e.next.CutOffAt) && !e.next.CutOffAt.IsZero() {
		return
	}
	e.next.CutOffAt = due
	var hold Hold
	if !due.Equal(graceEnd) {
		hold = HoldHours
	}
	e.emit(EventCutOffScheduled, due, hold, "")
}

// relay decides whether an exhausted or cut-off account's relays open now.
// They open only at or after CutOffAt, outside protected hours and with no
// active flag; a flag closes them again, and when it ends they reopen by
// the same rules as a first cut-off.
func (e *evaluation) relay(prev Status) {
	now, flag := e.in.Now, e.in.Flag
	if e.next.State == StateExhausted && now.Before(e.next.CutOffAt) {
		if e.next.Hold == HoldFlag { // a later CutOffAt; a new hold is announced anew
			e.next.Hold = ""
		}
		return
	}
	if flag.Active(now) {
		if e.next.Hold != HoldFlag {
			e.next.Hold = HoldFlag
			e.emit(EventProtectedHold, flag.Until, HoldFlag, flag.Reason)
		}
		return
	}
	if !prev.Closed() {
		return // cut off and open; only the restore level closes it
	}
	if now.Before(e.next.CutOffAt) {
		// Held by protected hours until CutOffAt, or a flag ended on a
		// clock stepped back before it: never open before CutOffAt.
		return
	}
	if e.in.Protected.Contains(now) {
		end := e.in.Protected.EndOf(now)
		e.next.CutOffAt = end
		e.next.Hold = HoldHours
		e.emit(EventProtectedHold, end, HoldHours, "")
		return
	}
	e.next.State = StateCutOff
	e.next.CutSince = now
	e.next.Hold = ""
	e.emit(EventCutOff, now, "", "")
}

// NextChange returns the earliest time after in.Now at which Evaluate's
// answer for this account could change with no new balance, flag or
// config: when a pending cut-off falls due, when a protected window that
// holds one ends, or when a flag that holds one expires. The gateway can
// sleep until then (or until a balance changes). It is the zero time when
// nothing is pending. NextChange evaluates prev first, so it gives the
// same answer for prev as for Evaluate(prev, in).Next.
func NextChange(prev Status, in Input) time.Time {
	s := Evaluate(prev, in).Next
	if s.State != StateExhausted && !(s.State == StateCutOff && s.Hold != "") {
		return time.Time{}
	}
	if s.Hold == HoldFlag && in.Flag.Active(in.Now) {
		return in.Flag.Until // zero for a flag without expiry: nothing pending
	}
	if s.CutOffAt.After(in.Now) {
		return s.CutOffAt
	}
	return time.Time{}
}

// warningEvent is the event of entering a state short of exhaustion.
func warningEvent(s State) EventKind {
	switch s {
	case StateWarning1:
		return EventWarning1
	case StateWarning2:
		return EventWarning2
	}
	return EventOverdraft
}

// lessHysteresis is b − Hysteresis, held at the bottom of Money's range
// rather than wrapping round to a large balance.
func lessHysteresis(b billing.Money) billing.Money {
	if b < math.MinInt64+Hysteresis {
		return math.MinInt64
	}
	return b - Hysteresis
}

// leave is the state of an account whose pending cut-off a top-up
// cancelled: the best state the balance clears by Hysteresis, or, when it
// was cancelled by reaching the restore level inside the hysteresis band
// (only with an overdraft below Hysteresis), the state at face value.
func (r Rating) leave(b billing.Money) State {
	if s := r.band(lessHysteresis(b)); s != StateExhausted {
		return s
	}
	return r.band(b)
}
