package enforce

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"mallgrid/billing/policy"
	"mallgrid/store"
)

// Keys of the control bucket for accounts.
const (
	ControlTenantPrefix  = "tenant/"  // policy.Status
	controlProtectPrefix = "protect/" // policy.Protection, while set
)

// tenantControl is an account's stored enforcement state.
type tenantControl struct {
	Status policy.Status      `json:"status"`
	Flag   *policy.Protection `json:"flag,omitempty"`
}

// loadTenants reads the accounts' stored policy states; e.mu not needed
// (called before anything runs).
func (e *Enforcer) loadTenants(stored map[string][]byte) error {
	e.tenants = make(map[string]*tenantControl)
	for key, raw := range stored {
		id, ok := strings.CutPrefix(key, ControlTenantPrefix)
		if !ok {
			continue
		}
		var tc tenantControl
		if err := json.Unmarshal(raw, &tc); err != nil {
			return fmt.Errorf("account control of %s: %w: %v", id, store.ErrCorrupt, err)
		}
		e.tenants[id] = &tc
	}
	return nil
}

// evaluateAccounts runs the account policy for every tenant with a credit
// rating, stores what changed (the status, the tenant's relays' desired
// state and the events) in one durable transaction each, and only then
// lets the relays be driven.
func (e *Enforcer) evaluateAccounts(now time.Time) {
	if e.available == nil {
		return
	}
	available, err := e.available()
	if err != nil {
		e.log.Error().Err(err).Msg("read balances")
		return
	}
	for _, t := range e.cfg.Tenants {
		rating, ok := e.cfg.RatingOf(t.ID)
		if !ok {
			e.releaseUnrated(t.ID)
			continue
		}
		e.mu.Lock()
		tc := e.tenants[t.ID]
		if tc == nil {
			tc = &tenantControl{}
			e.tenants[t.ID] = tc
		}
		in := policy.Input{Balance: available[t.ID], Rating: rating, Protected: e.cfg.Protected(), Flag: tc.Flag, Now: now}
		dec := policy.Evaluate(tc.Status, in)
		changed := !sameStatus(dec.Next, tc.Status)
		values := map[string][]byte{}
		var relayChanges map[string]*relayControl
		for _, id := range e.tenantMeters[t.ID] {
			rc := e.control(id)
			if rc.PolicyOpen != !dec.Closed {
				next := *rc
				next.PolicyOpen = !dec.Closed
				if relayChanges == nil {
					relayChanges = map[string]*relayControl{}
				}
				relayChanges[id] = &next
				raw, _ := json.Marshal(&next)
				values[ControlMeterPrefix+id] = raw
			}
		}
		if !changed && len(values) == 0 && len(dec.Events) == 0 {
			e.mu.Unlock()
			continue
		}
		next := *tc
		next.Status = dec.Next
		raw, _ := json.Marshal(&next)
		values[ControlTenantPrefix+t.ID] = raw
		var events []store.Event
		for _, ev := range dec.Events {
			at := ev.At
			if at.IsZero() { // held by a protection flag without an end: no due time
				at = now
			}
			events = append(events, store.Event{Time: at, Kind: string(ev.Kind), Tenant: t.ID, Text: policyText(t.Name, ev, e.cfg.HumanTime),
				Args: policyArgs(t.Name, ev, e.cfg.SiteTime)})
		}
		evs, err := e.db.PutControl(values, events...)
		if err == nil {
			*tc = next
			for id, rc := range relayChanges {
				*e.relays[id] = *rc
			}
		}
		e.mu.Unlock()
		if err != nil {
			e.log.Error().Str("tenant", t.ID).Err(err).Msg("store account state")
			continue
		}
		for _, ev := range evs {
			e.log.Warn().Str("tenant", t.ID).Str("event", ev.Kind).Msg(ev.Text)
		}
		e.hub.Publish(evs)
	}
}

// sameStatus compares statuses by meaning: times by the instant, since a
// status read back from the store carries another location.
func sameStatus(a, b policy.Status) bool {
	return a.State == b.State && a.Hold == b.Hold && a.ExhaustedAt.Equal(b.ExhaustedAt) &&
		a.CutOffAt.Equal(b.CutOffAt) && a.CutSince.Equal(b.CutSince)
}

// SetProtection sets (flag not nil) or lifts (nil) an operator's
// protection flag on an account: no cut-off while it stands (and power
// back on if it was cut). reason says why either way; it is kept in the
// stored event with actor, as a lifted flag leaves no control record.
func (e *Enforcer) SetProtection(id string, flag *policy.Protection, reason, actor string) error {
	t, ok := e.cfg.Tenant(id)
	if !ok {
		return fmt.Errorf("no tenant %q", id)
	}
	if reason == "" {
		return fmt.Errorf("protection of %s: no reason given", id)
	}
	now := e.now()
	e.mu.Lock()
	tc := e.tenants[id]
	if tc == nil {
		tc = &tenantControl{Status: policy.Status{State: policy.StateNormal}}
		e.tenants[id] = tc
	}
	next := *tc
	next.Flag = flag
	raw, _ := json.Marshal(&next)
	text := fmt.Sprintf("%s: protection lifted by %s: %s", t.Name, actor, reason)
	args := map[string]string{"form": "lifted", "tenant_name": t.Name, "actor": actor, "reason": reason}
	if flag != nil {
		text = fmt.Sprintf("%s: protected from cut-off by %s: %s", t.Name, actor, reason)
		delete(args, "form")
		if !flag.Until.IsZero() {
			text += " (until " + e.cfg.HumanTime(flag.Until) + ")"
			args["form"], args["until_at"] = "until", e.cfg.SiteTime(flag.Until).Format(time.RFC3339)
		}
	}
	evs, err := e.db.PutControl(map[string][]byte{ControlTenantPrefix + id: raw},
		store.Event{Time: now, Kind: "protection", Tenant: id, Text: text, Args: args})
	if err == nil {
		*tc = next
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	e.hub.Publish(evs)
	l := e.log.Info().Str("tenant", id).Str("actor", actor).Str("reason", reason)
	if flag != nil && !flag.Until.IsZero() {
		l = l.Time("until", e.cfg.SiteTime(flag.Until))
	}
	if flag != nil {
		l.Msg("account protected from cut-off")
	} else {
		l.Msg("account protection lifted")
	}
	e.Wake()
	return nil
}

// releaseUnrated clears a stored policy cut-off from the meters of a tenant
// that no longer has a credit rating (moved to postpaid in the
// configuration): no policy decides about it any more, so none may keep
// its power off.
func (e *Enforcer) releaseUnrated(tenant string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.tenantMeters[tenant] {
		rc := e.relays[id]
		if rc == nil || !rc.PolicyOpen {
			continue
		}
		next := *rc
		next.PolicyOpen = false
		evs, err := e.save(id, &next, store.Event{Time: e.now(), Kind: "cutoff_cancelled", Meter: id, Tenant: tenant,
			Text: fmt.Sprintf("cut-off of %s lifted: tenant %s has no credit rating any more", id, tenant),
			Args: map[string]string{"form": "unrated", "meter": id, "tenant": tenant}})
		if err != nil {
			e.log.Error().Str("meter", id).Err(err).Msg("store relay control")
			continue
		}
		*rc = next
		e.hub.Publish(evs)
	}
}

// policyText is an account event as a sentence for the control room and
// the tenant; clock formats its times (in the site's zone, with the offset:
// "power will be cut at 10:04" once meant 18:04 in Shanghai).
func policyText(name string, ev policy.Event, clock func(time.Time) string) string {
	b := ev.Balance.String()
	switch ev.Kind {
	case policy.EventWarning1:
		return fmt.Sprintf("%s: balance %s, credit running low (warning 1)", name, b)
	case policy.EventWarning2:
		return fmt.Sprintf("%s: balance %s, please top up (warning 2)", name, b)
	case policy.EventOverdraft:
		return fmt.Sprintf("%s: balance %s, now using credit", name, b)
	case policy.EventCutOffScheduled:
		return fmt.Sprintf("%s: credit used up (balance %s); power will be cut at %s unless topped up", name, b, clock(ev.At))
	case policy.EventCutOffCancelled:
		return fmt.Sprintf("%s: cut-off cancelled, balance %s", name, b)
	case policy.EventCutOff:
		return fmt.Sprintf("%s: power cut off, balance %s", name, b)
	case policy.EventRestored:
		return fmt.Sprintf("%s: power restored, balance %s", name, b)
	case policy.EventProtectedHold:
		if ev.At.IsZero() { // a protection flag without an end
			if ev.Reason == "" {
				return fmt.Sprintf("%s: cut-off held while the account is protected", name)
			}
			return fmt.Sprintf("%s: cut-off held while the account is protected (%s)", name, ev.Reason)
		}
		if ev.Reason != "" {
			return fmt.Sprintf("%s: cut-off held until %s (%s: %s)", name, clock(ev.At), ev.Hold, ev.Reason)
		}
		return fmt.Sprintf("%s: cut-off held until %s (%s)", name, clock(ev.At), ev.Hold)
	}
	return fmt.Sprintf("%s: %s, balance %s", name, ev.Kind, b)
}

// policyArgs are the facts policyText tells, by gateway/i18n's names: the
// tenant's name, the balance, and for a held or scheduled cut-off its
// time in the site's zone (siteTime), its hold and reason. The form names
// which of the kind's sentences tells them.
func policyArgs(name string, ev policy.Event, siteTime func(time.Time) time.Time) map[string]string {
	args := map[string]string{"tenant_name": name, "balance": ev.Balance.String()}
	switch ev.Kind {
	case policy.EventCutOffScheduled:
		args["cut_at"] = siteTime(ev.At).Format(time.RFC3339)
	case policy.EventProtectedHold:
		delete(args, "balance") // the sentences of a hold do not tell it
		// The kind's own sentence is a hold until a time; "flag" one
		// without an end; "reason" and "flag_reason" the same with why.
		form := "flag"
		if !ev.At.IsZero() {
			form = ""
			args["until_at"], args["hold"] = siteTime(ev.At).Format(time.RFC3339), string(ev.Hold)
		}
		if ev.Reason != "" {
			form = strings.TrimPrefix(form+"_reason", "_")
			args["reason"] = ev.Reason
		}
		if form != "" {
			args["form"] = form
		}
	}
	return args
}

// AccountState returns a tenant's policy status for the API.
func (e *Enforcer) AccountState(id string) (policy.Status, *policy.Protection) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if tc := e.tenants[id]; tc != nil {
		return tc.Status, tc.Flag
	}
	return policy.Status{State: policy.StateNormal}, nil
}
