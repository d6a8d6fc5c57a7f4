package pipeline

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"mallgrid/billing"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// Drift is a difference between the configuration and what the database
// remembers: a meter or a tenant taken out of (or renamed in) the
// configuration while its state or ledger stays. Nothing is lost to it — a
// removed meter's accrued charge is posted at start-up, an account without
// a tenant stays readable (archived) — but the technician must hear of it.
type Drift struct {
	Meter  string // the meter concerned, or ""
	Tenant string // the account concerned, or ""
	Text   string
}

// String is the drift as a sentence for a technician.
func (d Drift) String() string { return d.Text }

// FindDriftFile opens the database at path read-only and compares the
// configuration with it.
func FindDriftFile(path string, cfg *config.Config) ([]Drift, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return FindDrift(db, cfg)
}

// FindDrift compares the configuration with the database.
func FindDrift(db *store.DB, cfg *config.Config) ([]Drift, error) {
	var out []Drift
	configured := make(map[string]config.Meter, len(cfg.Meters))
	for _, m := range cfg.Meters {
		configured[m.ID] = m
	}
	states, err := db.MeterStates()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(states))
	for id := range states {
		if _, tenant := strings.CutPrefix(id, TenantKeyPrefix); !tenant {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		mb, err := DecodeState(states[id])
		if err != nil {
			return nil, fmt.Errorf("state of meter %s: %w", id, err)
		}
		m, ok := configured[id]
		switch {
		case !ok && mb.Open != nil:
			out = append(out, Drift{Meter: id, Tenant: mb.Open.Account, Text: fmt.Sprintf(
				"meter %s is not in the configuration; its accrued charge of %s to %s is posted at start-up", id, mb.Open.Amount, mb.Open.Account)})
		case !ok:
			out = append(out, Drift{Meter: id, Text: fmt.Sprintf(
				"meter %s is not in the configuration; its counter state is kept (at %s) in case it comes back", id, kwhOf(mb.Counter.Baseline.Wh))})
		case mb.Open != nil && mb.Open.Account != m.Tenant:
			out = append(out, Drift{Meter: id, Tenant: mb.Open.Account, Text: fmt.Sprintf(
				"meter %s's accrued charge of %s belongs to %s; the configuration now gives the meter to %q: it is posted to %s first",
				id, mb.Open.Amount, mb.Open.Account, m.Tenant, mb.Open.Account)})
		}
	}
	accounts, err := db.Accounts()
	if err != nil {
		return nil, err
	}
	for _, a := range accounts {
		if _, ok := cfg.Tenant(a.ID); !ok {
			out = append(out, Drift{Tenant: a.ID, Text: fmt.Sprintf(
				"account %s (balance %s, %d entries) has no tenant in the configuration: it is archived, readable but closed to top-ups", a.ID, a.Balance, a.Entries)})
		}
	}
	return out, nil
}

func kwhOf(wh int64) string { return fmt.Sprintf("%d.%03d kWh", wh/1000, wh%1000) }

// SettleRemoved posts the accrued charge of every meter no longer in the
// configuration, with a meter_removed event, in one transaction: no bus
// cycle will ever close it. The meter's counter state stays, so that a
// meter put back bills from where it was.
func (p *Pipeline) SettleRemoved(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := newCycleWork()
	var total billing.Money
	for id, old := range p.meters {
		if _, ok := p.meterCfg[id]; ok || old.Open == nil {
			continue
		}
		mb := p.state(w, id)
		o := *mb.Open
		p.post(w, id, mb)
		total += o.Amount
		text := fmt.Sprintf("meter %s is no longer in the configuration: its accrued charge of %s (%s → %s) is posted to %s",
			id, o.Amount, kwhOf(o.FromWh), kwhOf(o.ToWh), o.Account)
		p.log.Warn().Str("meter", id).Str("tenant", o.Account).Msg(text)
		w.sc.Events = append(w.sc.Events, store.Event{Time: now, Kind: "meter_removed", Meter: id, Tenant: o.Account, Text: text,
			Args: map[string]string{"meter": id, "tenant": o.Account, "amount": o.Amount.String(),
				"from_kwh": meter.FormatKWh(o.FromWh), "to_kwh": meter.FormatKWh(o.ToWh)}})
	}
	if len(w.meters) == 0 {
		return nil
	}
	w.sc.MeterState = make(map[string][]byte, len(w.meters))
	for id, mb := range w.meters {
		w.sc.MeterState[id] = EncodeState(mb)
	}
	events, err := p.db.CommitCycle(w.sc)
	if err != nil {
		return fmt.Errorf("post the accrued charges of removed meters (%s): %w", total, err)
	}
	p.publish(events)
	for id, mb := range w.meters {
		p.meters[id] = mb
	}
	return nil
}
