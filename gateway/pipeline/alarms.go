package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mallgrid/billing/counter"
	"mallgrid/gateway/alarm"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// The rule alarms (gateway/alarm) are judged on every reading the cycle
// keeps; what they raise and clear are events of the cycle, stored in its
// one transaction with the reading, so that an alarm and the reading that
// raised it are kept together or not at all.

// resumeAlarms tells the evaluator which rule alarms the database has
// open, with the facts they were raised with, so that readings showing
// their condition over clear them after a restart. Those no reading would
// judge any more are left to ClearUnwatched.
func (p *Pipeline) resumeAlarms() error {
	open, err := p.db.OpenAlarmIndex()
	if err != nil {
		return fmt.Errorf("open alarms: %w", err)
	}
	for key, id := range open {
		if !slices.Contains(alarm.Kinds(), key.Kind) || !p.alarms.Watched(key.Subject, key.Kind) {
			continue
		}
		a, err := p.db.Alarm(id)
		if err != nil {
			return fmt.Errorf("open alarm %d: %w", id, err)
		}
		p.alarms.Resume(key.Subject, key.Kind, a.Args)
	}
	return nil
}

// ClearUnwatched clears, at at, the open rule alarms no reading will judge
// any more — their rule turned off, or their meter no longer configured —
// each by its clearing event saying so; the gateway calls it at start.
func (p *Pipeline) ClearUnwatched(at time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	open, err := p.db.OpenAlarmIndex()
	if err != nil {
		return fmt.Errorf("open alarms: %w", err)
	}
	var evs []store.Event
	for key, id := range open {
		if !slices.Contains(alarm.Kinds(), key.Kind) || p.alarms.Watched(key.Subject, key.Kind) {
			continue
		}
		a, err := p.db.Alarm(id)
		if err != nil {
			return fmt.Errorf("open alarm %d: %w", id, err)
		}
		evs = append(evs, store.Event{Time: at, Kind: ruleEventKind(key.Kind, false), Meter: key.Subject, Tenant: a.Tenant,
			Text: fmt.Sprintf("%s alarm of %s cleared: no longer watched (its rule is off, or the meter is no longer configured)", key.Kind, key.Subject),
			Args: map[string]string{"meter": key.Subject, "kind": key.Kind, "form": "unwatched"}})
	}
	if len(evs) == 0 {
		return nil
	}
	slices.SortFunc(evs, func(a, b store.Event) int { return strings.Compare(a.Kind+"\x00"+a.Meter, b.Kind+"\x00"+b.Meter) })
	stored, err := p.db.PostEvents(evs...)
	if err != nil {
		return fmt.Errorf("clear the alarms no longer watched: %w", err)
	}
	p.publish(stored)
	return nil
}

// unjudged are the verdicts of readings whose values say nothing of the
// load now: an all-zero frame, a reading older than the last, the same
// reading again, a reading that does not decode.
var unjudged = []counter.Verdict{counter.ZeroFrame, counter.ClockBack, counter.Duplicate, counter.Invalid}

// watch judges a reading by the meter's alarm rules and adds the alarms
// it raises or clears to the cycle's events.
func (p *Pipeline) watch(w *cycleWork, r store.Reading) {
	if slices.Contains(unjudged, w.verdict[r.Meter]) {
		return
	}
	p.watchValues(w, r)
}

// watchValues judges r's values by its meter's rules, whatever the
// cycle's verdict on its counter: a reading of values alone (an MQTT
// meter's) is judged though a counter message of the same meter in the
// same cycle was refused.
func (p *Pipeline) watchValues(w *cycleWork, r store.Reading) {
	if len(r.Values) == 0 {
		return
	}
	for _, c := range p.observe(r) {
		if ruleEventKind(c.Alarm, c.Raised) == "" { // an alarm kind this table lacks: TestRuleEventKind
			p.log.Error().Str("meter", r.Meter).Str("alarm", c.Alarm).Msg("an alarm of an unknown kind, not stored")
			continue
		}
		if c.Raised {
			c.Args["severity"] = c.Severity
		}
		w.sc.Events = append(w.sc.Events, store.Event{Time: r.Time, Kind: ruleEventKind(c.Alarm, c.Raised), Meter: r.Meter,
			Tenant: p.meterCfg[r.Meter].Tenant, Text: c.Text, Args: c.Args})
	}
}

// observe judges reading r by its meter's alarm rules; what it changes is
// pending until the cycle commits or discards.
func (p *Pipeline) observe(r store.Reading) []alarm.Change {
	if p.values == nil {
		p.values = make(alarm.Values, 32)
	}
	clear(p.values) // one map for every reading: Observe keeps none of it
	for _, x := range r.Values {
		p.values[x.Name] = x.Value
	}
	// A relay not closed (cut off, or opened by hand): no appliance was
	// switched on when the tenant's load comes back.
	return p.alarms.Observe(r.Meter, r.Time, p.values, r.Relay != "open")
}

// Hurry implements poll.Hurrier: a reading that raises a rule alarm is
// committed before the rest of its cycle is read, so that the alarm
// reaches open pages milliseconds after the reading, not at the end of a
// cycle that may last seconds. It judges the reading and forgets the
// judgement (Cycle judges it again, with its counter's verdict): a wrong
// guess costs a transaction or some delay, never an alarm or a reading.
func (p *Pipeline) Hurry(r poll.Result) bool {
	if r.Err != nil {
		return false
	}
	sr := toStore(r.Reading)
	if len(sr.Values) == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Between cycles nothing is pending (Cycle commits or discards under
	// this lock): this discards the judgement alone.
	defer p.alarms.Discard()
	for _, c := range p.observe(sr) {
		if c.Raised {
			return true
		}
	}
	return false
}

// ruleEventKind is the event kind that raises (or clears) a rule alarm,
// written out so that every kind the gateway stores is a literal the
// catalogs' tests can find.
func ruleEventKind(kind string, raised bool) string {
	if !raised {
		kind += "_cleared"
	}
	switch kind {
	case "overload":
		return "overload"
	case "overload_cleared":
		return "overload_cleared"
	case "appliance":
		return "appliance"
	case "appliance_cleared":
		return "appliance_cleared"
	case "fluctuation":
		return "fluctuation"
	case "fluctuation_cleared":
		return "fluctuation_cleared"
	case "voltage":
		return "voltage"
	case "voltage_cleared":
		return "voltage_cleared"
	case "phase_loss":
		return "phase_loss"
	case "phase_loss_cleared":
		return "phase_loss_cleared"
	case "low_power_factor":
		return "low_power_factor"
	case "low_power_factor_cleared":
		return "low_power_factor_cleared"
	case "residual_current":
		return "residual_current"
	case "residual_current_cleared":
		return "residual_current_cleared"
	case "overtemperature":
		return "overtemperature"
	case "overtemperature_cleared":
		return "overtemperature_cleared"
	}
	return ""
}
