package gateway

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// pipeline turns each bus cycle into one store transaction: the readings,
// their interval energy and the new counter baselines commit together.
//
// The counter rule here is deliberately minimal — energy is the rise of the
// billing counter since the last accepted reading; a fall is not accepted —
// and is where billing's counter validation (zero frames, resets, spikes,
// gaps) plugs in.
type pipeline struct {
	db   *store.DB
	live *live
	log  zerolog.Logger

	mu       sync.Mutex       // buses commit from their own goroutines
	baseline map[string]int64 // meter id → last accepted import counter, Wh
}

func newPipeline(db *store.DB, lv *live, log zerolog.Logger) (*pipeline, error) {
	latest, err := db.LatestReadings()
	if err != nil {
		return nil, err
	}
	p := &pipeline{db: db, live: lv, log: log, baseline: make(map[string]int64)}
	for id, r := range latest {
		p.baseline[id] = r.ImportWh
		lv.update(r)
	}
	return p, nil
}

// Cycle implements poll.Sink.
func (p *pipeline) Cycle(_ context.Context, c poll.Cycle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sc store.Cycle
	accepted := make(map[string]int64)
	for _, res := range c.Results {
		if res.Err != nil {
			p.log.Debug().Str("bus", c.Bus).Str("meter", res.Meter).Err(res.Err).Msg("read failed")
			continue
		}
		wh, _ := res.Reading.ImportWh() // meter.Read fails when a model's register is missing
		prev, known := p.baseline[res.Meter]
		switch {
		case !known:
			accepted[res.Meter] = wh // first reading: a baseline, no energy
		case wh >= prev:
			accepted[res.Meter] = wh
			if wh > prev {
				sc.Energy = append(sc.Energy, store.IntervalEnergy{Meter: res.Meter, Time: res.Reading.Time, Wh: wh - prev})
			}
		default:
			p.log.Warn().Str("bus", c.Bus).Str("meter", res.Meter).Int64("counter_wh", wh).Int64("baseline_wh", prev).
				Msg("import counter went down; reading not accepted")
			continue
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
	for id, wh := range accepted {
		p.baseline[id] = wh
	}
	for _, r := range sc.Readings {
		p.live.update(r)
	}
}

func toStore(rd meter.Reading) store.Reading {
	r := store.Reading{Meter: rd.Meter, Time: rd.Time, Relay: rd.Relay.String(), Values: make(map[string]float64)}
	r.ImportWh, _ = rd.ImportWh()
	for _, q := range rd.Quantities() {
		if q == meter.Import {
			continue
		}
		v, _ := rd.Value(q)
		r.Values[string(q)] = v
	}
	return r
}
