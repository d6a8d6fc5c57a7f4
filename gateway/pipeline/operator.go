package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"mallgrid/billing/counter"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/web"
)

// exchangeNote starts the note of a charge an operator's meter-exchange
// record made: the meter's counter restarts there, which verify allows.
const exchangeNote = "exchange"

// Release bills a meter's quarantined jump: an operator has checked that
// the energy is real. The charge is posted at once, with who and why.
// heldWh, if not nil, is the held counter the operator checked: a release
// of it sent again returns the first one's result and bills nothing, and a
// different jump held since is not released by it (409). Without it, a
// release sent again while nothing is held returns the last one's result.
func (p *Pipeline) Release(meterID string, heldWh *int64, actor, reason string, at time.Time) (web.OperatorResult, error) {
	return p.operate(meterID, actor, "release: "+reason, at, func(mb *MeterState) (counter.Outcome, *web.OperatorResult, error) {
		q := mb.Counter.Quarantine
		if heldWh != nil {
			if last := mb.Released; last != nil && last.HeldKWh == meter.FormatKWh(*heldWh) && (q == nil || q.Held.Wh != *heldWh) {
				return counter.Outcome{}, last, nil
			}
			if q != nil && q.Held.Wh != *heldWh {
				return counter.Outcome{}, nil, fmt.Errorf("%w: the held reading is %s kWh, not the %s kWh given: check the jump again",
					counter.ErrRelease, meter.FormatKWh(q.Held.Wh), meter.FormatKWh(*heldWh))
			}
		}
		out, err := counter.Release(mb.Counter, at, p.limits[meterID])
		if errors.Is(err, counter.ErrNoQuarantine) && mb.Released != nil && heldWh == nil {
			return out, mb.Released, nil
		}
		return out, nil, err
	})
}

// Exchange applies an operator's meter-exchange record (the old meter's
// final counter and the new one's start), so that the energy across the
// exchange is billed once and the new counter is not taken for a reset.
// The same record sent again returns the first one's result and bills
// nothing. at is when the meter was exchanged; zero when the record does
// not say, and then it is taken to be between the old counter's last
// reading and the new one's first if the new one's readings have begun
// (counter.ExchangeTime, as a steady load would share it), else now.
func (p *Pipeline) Exchange(meterID string, oldFinalWh, newStartWh int64, actor, reason string, at, now time.Time) (web.OperatorResult, error) {
	return p.operate(meterID, actor, exchangeNote+": "+reason, now, func(mb *MeterState) (counter.Outcome, *web.OperatorResult, error) {
		if at.IsZero() {
			var ok bool
			if at, ok = counter.ExchangeTime(mb.Counter, oldFinalWh, newStartWh); !ok {
				at = now
			}
		}
		out, err := counter.Exchange(mb.Counter, oldFinalWh, newStartWh, at, p.limits[meterID])
		if errors.Is(err, counter.ErrRepeated) && mb.Exchanged != nil {
			return out, mb.Exchanged, nil
		}
		return out, nil, err
	})
}

// operate runs an operator's action on a meter's counter state and commits
// its charges, chain break and the new state in one transaction, under the
// pipeline's lock, so that no bus cycle interleaves with it. act returns
// the action's outcome, or the result of the same action applied before
// (nothing is done again).
func (p *Pipeline) operate(meterID, actor, note string, at time.Time,
	act func(*MeterState) (counter.Outcome, *web.OperatorResult, error)) (web.OperatorResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.meterCfg[meterID]; !ok {
		return web.OperatorResult{}, fmt.Errorf("%w: no meter %q", web.ErrNotFound, meterID)
	}
	w := newCycleWork()
	mb := p.state(w, meterID)
	out, repeat, err := act(mb)
	switch {
	case repeat != nil:
		res := *repeat
		res.Repeated = true
		return res, nil
	case errors.Is(err, counter.ErrNoBaseline), errors.Is(err, counter.ErrNoQuarantine),
		errors.Is(err, counter.ErrExchange), errors.Is(err, counter.ErrRelease), errors.Is(err, counter.ErrRepeated):
		// The request is well formed; the meter's history contradicts it.
		return web.OperatorResult{}, fmt.Errorf("%w: %w", web.ErrConflict, err)
	case err != nil:
		return web.OperatorResult{}, err
	}
	// Whatever the meter had accrued is posted first, so the action's own
	// charge is an entry of its own, carrying who and why.
	if mb.Open != nil {
		p.post(w, meterID, mb)
	}
	posted := len(w.sc.Charges)
	if err := p.apply(w, meterID, mb, out, actor, note); err != nil {
		return web.OperatorResult{}, err
	}
	if mb.Open != nil {
		p.post(w, meterID, mb)
	}
	for i := posted; i < len(w.sc.Charges); i++ {
		w.sc.Charges[i].Actor, w.sc.Charges[i].Note = actor, note
	}
	res := web.OperatorResult{Meter: meterID, Verdict: string(out.Verdict), BilledKWh: meter.FormatKWh(out.Wh)}
	if out.Verdict == counter.Released {
		res.HeldKWh = meter.FormatKWh(out.Next.Baseline.Wh)
	}
	if out.Event != nil {
		res.Event = out.Event.String()
		ev := p.counterEvent(meterID, out.Event)
		ev.Text += " (" + actor + ": " + note + ")"
		w.sc.Events = append(w.sc.Events, ev)
	}
	if out.Verdict == counter.Exchanged {
		mb.Exchanged = &res
	} else {
		mb.Released = &res
	}
	w.sc.MeterState = map[string][]byte{meterID: EncodeState(mb)}
	for id, tm := range w.tenants {
		raw, err := json.Marshal(tm)
		if err != nil {
			return web.OperatorResult{}, err
		}
		w.sc.MeterState[TenantKeyPrefix+id] = raw
	}
	events, err := p.db.CommitCycle(w.sc)
	if err != nil {
		return web.OperatorResult{}, fmt.Errorf("%s of meter %s: %w", out.Verdict, meterID, err)
	}
	p.publish(events)
	p.log.Info().Str("meter", meterID).Str("tenant", p.meterCfg[meterID].Tenant).Str("actor", actor).Str("note", note).
		Str("verdict", res.Verdict).Str("billed_kwh", res.BilledKWh).Msg("operator's counter record applied")
	p.meters[meterID] = mb
	for id, tm := range w.tenants {
		p.tenants[id] = tm
	}
	if p.afterCommit != nil {
		p.afterCommit() // the charge changed a balance: enforcement hears of it now
	}
	return res, nil
}
