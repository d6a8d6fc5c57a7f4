package live

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
)

// meterState is what the picture knows of one meter besides its latest
// reading, and the view last built from it.
type meterState struct {
	ver     uint64 // the sequence number of its last change
	status  poll.MeterStatus
	polled  polledKey // status in comparable form, to notice a change
	desired string
	view    web.MeterView // built at version built; 0: never
	built   uint64
}

// polledKey is what the view shows of a meter's polling state. Every
// request counts in requests and every failure in the errors' sum (counts
// only grow), so comparing the sum notices a new error of any kind.
type polledKey struct {
	online    bool
	nextProbe time.Time
	requests  int64
	errors    int64
	lastSeen  time.Time
	lastError string
	p50, p99  time.Duration
}

func keyOf(st poll.MeterStatus) polledKey {
	k := polledKey{online: st.Online, nextProbe: st.NextProbe, requests: st.Stats.Requests, lastSeen: st.Stats.LastSeen,
		lastError: st.Stats.LastError, p50: st.Stats.P50, p99: st.Stats.P99}
	for _, n := range st.Stats.Errors {
		k.errors += n
	}
	return k
}

// newBase is where a picture's sequence starts: a random multiple of 2^40,
// so that an id a client kept from an earlier run of the gateway is, but
// for a 1 in 4,096 chance, outside this run's numbers and gets everything
// (MetersSince). 2^40 changes are 17 years of 2,000 meters changing every
// second, and the numbers stay below 2^53, exact in JavaScript.
func newBase() uint64 { return (rand.Uint64N(1<<12) + 1) << 40 }

// changed gives meter id the next sequence number; lv.mu held.
func (lv *Picture) changed(id string) {
	if st, ok := lv.meters[id]; ok {
		lv.seq++
		st.ver = lv.seq
	}
}

// refresh reads every bus's polling state and the desired relay states
// and numbers each meter whose part of them changed. The desired states
// are asked for before lv.mu is taken: the enforcer takes its own lock
// and then lv.mu, so calling it under lv.mu would deadlock.
func (lv *Picture) refresh() {
	lv.refreshMu.Lock()
	defer lv.refreshMu.Unlock()
	ps := lv.pollStatus()
	var desired map[string]string
	if lv.desired != nil {
		desired = make(map[string]string, len(lv.cfg.Meters))
		for _, m := range lv.cfg.Meters {
			desired[m.ID] = lv.desired(m.ID)
		}
	}
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for _, m := range lv.cfg.Meters {
		st := lv.meters[m.ID]
		k, d := keyOf(ps[m.ID]), "closed"
		if desired != nil {
			d = desired[m.ID]
		}
		if k != st.polled || d != st.desired {
			st.status, st.polled, st.desired = ps[m.ID], k, d
			lv.changed(m.ID)
		}
	}
}

// views returns the views of the configured meters, in configuration
// order, that keep(version) accepts (all for a nil keep), building only
// those changed since they were last built; lv.mu held.
func (lv *Picture) views(keep func(ver uint64) bool) []web.MeterView {
	out := make([]web.MeterView, 0, len(lv.cfg.Meters))
	for _, m := range lv.cfg.Meters {
		st := lv.meters[m.ID]
		if keep != nil && !keep(st.ver) {
			continue
		}
		if st.built != st.ver {
			st.view = lv.build(m, st)
			st.built = st.ver
		}
		out = append(out, st.view)
	}
	return out
}

// MetersSince implements web.MeterChanges: the views of the meters
// changed after sequence number after, in configuration order, and the
// number of the latest change. A number this picture did not give (0, one
// ahead of it, or one from an earlier run of the gateway) gets every meter.
func (lv *Picture) MetersSince(after uint64) ([]web.MeterView, uint64) {
	lv.refresh()
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if after < lv.base || after > lv.seq {
		return lv.views(nil), lv.seq
	}
	return lv.views(func(ver uint64) bool { return ver > after }), lv.seq
}

// build makes meter m's view from what the picture holds; lv.mu held.
func (lv *Picture) build(m config.Meter, st *meterState) web.MeterView {
	ps := st.status
	v := web.MeterView{
		ID: m.ID, Bus: m.Bus, Address: m.Address, Model: m.Model, Role: m.Role, Tenant: m.Tenant,
		Online: ps.Online,
		Values: map[string]web.Value{},
		Energy: map[string]string{},
		Relay:  web.RelayView{Desired: st.desired, Actual: meter.RelayUnknown.String()},
		Stats: web.StatsView{
			Requests: ps.Stats.Requests, Errors: ps.Stats.Errors, LastError: ps.Stats.LastError,
			P50MS: float64(ps.Stats.P50.Microseconds()) / 1000, P99MS: float64(ps.Stats.P99.Microseconds()) / 1000,
		},
	}
	if t, ok := lv.cfg.Tenant(m.Tenant); ok {
		v.TenantName = t.Name
	}
	if v.Stats.Errors == nil {
		v.Stats.Errors = map[string]int64{}
	}
	if !ps.Stats.LastSeen.IsZero() {
		t := lv.cfg.SiteTime(ps.Stats.LastSeen)
		v.Stats.LastSeen = &t
	}
	if r, ok := lv.latest[m.ID]; ok {
		t := lv.cfg.SiteTime(r.Time)
		v.ReadingTime = &t
		v.ImportKWh = meter.FormatKWh(r.ImportWh)
		v.Relay.Actual = r.Relay
		for _, x := range r.Values {
			unit := meter.Quantity(x.Name).Unit()
			v.Values[x.Name] = web.Value{Value: rounded(x.Value, unit), Unit: unit}
		}
		for _, c := range r.Counters {
			v.Energy[c.Name] = meter.FormatKWh(c.Wh)
		}
		if v.Stats.LastSeen == nil { // restored from the database, not yet polled
			v.Stats.LastSeen = &t
		}
	}
	v.LastSeen = v.Stats.LastSeen
	// Encoded once per change, for every list and stream that sends it;
	// the view's plain fields cannot fail to encode.
	v.Encoded, _ = json.Marshal(v.ListView())
	return v
}

// rounded rounds an instantaneous value to a step finer than any meter's
// accuracy (class 0.5 is 1.1 V at 230 V): 0.1 V, 1 mA, 1 W, a thousandth
// of power factor, 0.01 Hz. A float32 register's further digits are noise,
// and at 2,000 meters they were most of the list's compressed size.
func rounded(v float64, unit string) float64 {
	step := 0.0
	switch unit {
	case "V":
		step = 10
	case "A", "":
		step = 1000
	case "W":
		step = 1
	case "Hz":
		step = 100
	default:
		return v
	}
	return math.Round(v*step) / step
}
