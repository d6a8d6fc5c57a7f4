package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// pipeline turns each bus cycle into one store transaction: the readings,
// their interval energy and the new counter baselines commit together.
//
// The counter rule here is deliberately small, and is where billing's
// counter validation (zero frames, resets and exchanges with evidence,
// quarantine, gaps) plugs in: energy is the rise of the billing counter
// since the last accepted reading; a counter that went down, or rose more
// than the circuit can draw in the time, is not accepted and leaves the
// baseline where it was, so one bad value never moves it.
type pipeline struct {
	db   *store.DB
	live *live
	log  zerolog.Logger

	mu        sync.Mutex // buses commit from their own goroutines
	baseline  map[string]baseline
	maxWhPerH map[string]int64  // meter id → what its circuit can draw in an hour, with margin
	rejecting map[string]string // meter id → why its counter is being refused, while it is
}

// baseline is a meter's last accepted billing counter.
type baseline struct {
	wh int64
	at time.Time
}

// Plausibility of a counter's rise: every phase at rated current and at
// most 250 V, with half again as margin, plus a few Wh for the rounding of a
// float32 counter.
const (
	maxPhaseVolts = 250
	phases        = 3
	riseMarginPct = 150
	riseSlackWh   = 10
)

func newPipeline(db *store.DB, cfg *config.Config, lv *live, log zerolog.Logger) (*pipeline, error) {
	latest, err := db.LatestReadings()
	if err != nil {
		return nil, err
	}
	p := &pipeline{db: db, live: lv, log: log,
		baseline: make(map[string]baseline), maxWhPerH: make(map[string]int64), rejecting: make(map[string]string)}
	for _, m := range cfg.Meters {
		p.maxWhPerH[m.ID] = int64(m.RatedCurrent) * maxPhaseVolts * phases * riseMarginPct / 100
	}
	for id, r := range latest {
		p.baseline[id] = baseline{wh: r.ImportWh, at: r.Time}
		lv.update(r)
	}
	return p, nil
}

// Cycle implements poll.Sink.
func (p *pipeline) Cycle(_ context.Context, c poll.Cycle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sc store.Cycle
	accepted := make(map[string]baseline)
	for _, res := range c.Results {
		if res.Err != nil {
			p.log.Debug().Str("bus", c.Bus).Str("meter", res.Meter).Err(res.Err).Msg("read failed")
			continue
		}
		wh, _ := res.Reading.ImportWh() // meter.Read fails when a model's register is missing
		energy, reason := p.judge(res.Meter, wh, res.Reading.Time)
		p.noteRejection(c.Bus, res.Meter, wh, reason)
		if reason != "" {
			continue
		}
		accepted[res.Meter] = baseline{wh: wh, at: res.Reading.Time}
		if energy > 0 {
			sc.Energy = append(sc.Energy, store.IntervalEnergy{Meter: res.Meter, Time: res.Reading.Time, Wh: energy})
		}
		sc.Readings = append(sc.Readings, toStore(res.Reading))
	}
	if len(sc.Readings) == 0 {
		return
	}
	if err := p.db.CommitCycle(sc); err != nil {
		// Baselines stay where they were, so the next cycle's delta still
		// covers this cycle's energy: nothing is lost, nothing counted twice.
		p.log.Error().Str("bus", c.Bus).Err(err).Msg("commit cycle")
		return
	}
	for id, b := range accepted {
		p.baseline[id] = b
	}
	for _, r := range sc.Readings {
		p.live.update(r)
	}
}

// judge returns the energy a new counter reading adds, or why it is refused.
func (p *pipeline) judge(meterID string, wh int64, at time.Time) (energy int64, refused string) {
	prev, known := p.baseline[meterID]
	switch {
	case !known:
		return 0, "" // first reading: a baseline, no energy
	case wh < prev.wh:
		return 0, "counter went down"
	}
	// A clock that stepped back must not make every rise look impossible.
	elapsed := max(at.Sub(prev.at), time.Minute)
	limit := p.maxWhPerH[meterID]*int64(elapsed/time.Second)/3600 + riseSlackWh
	if wh-prev.wh > limit {
		return 0, "counter rose more than the circuit can draw"
	}
	return wh - prev.wh, ""
}

// noteRejection logs when a meter's counter starts and stops being refused,
// not at every cycle in between.
func (p *pipeline) noteRejection(bus, meterID string, wh int64, reason string) {
	was := p.rejecting[meterID]
	switch {
	case reason == was:
	case reason == "":
		delete(p.rejecting, meterID)
		p.log.Info().Str("bus", bus).Str("meter", meterID).Int64("counter_wh", wh).Msg("counter accepted again")
	default:
		p.rejecting[meterID] = reason
		p.log.Warn().Str("bus", bus).Str("meter", meterID).Int64("counter_wh", wh).
			Int64("baseline_wh", p.baseline[meterID].wh).Str("reason", reason).Msg("reading not accepted")
	}
}

func toStore(rd meter.Reading) store.Reading {
	r := store.Reading{Meter: rd.Meter, Time: rd.Time, Relay: rd.Relay.String()}
	r.ImportWh, _ = rd.ImportWh()
	qs := rd.Quantities()
	r.Values = make([]store.Value, 0, len(qs))
	for _, q := range qs {
		switch {
		case q == meter.Import:
		case q.IsEnergy():
			wh, _ := rd.EnergyWh(q)
			r.Counters = append(r.Counters, store.Counter{Name: string(q), Wh: wh})
		default:
			v, _ := rd.Value(q)
			r.Values = append(r.Values, store.Value{Name: string(q), Value: v})
		}
	}
	return r
}
