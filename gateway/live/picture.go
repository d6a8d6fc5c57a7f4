package live

import (
	"sync"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Picture is the gateway's in-memory picture for the web layer: the latest
// committed reading of every meter plus each bus's polling state. It
// implements web.Source. Its methods are safe for concurrent use.
type Picture struct {
	cfg     *config.Config
	version string
	dbPath  string
	started time.Time
	now     func() time.Time

	// desired gives a meter's desired relay state (enforcement); nil: closed.
	desired func(id string) string

	mu     sync.Mutex
	latest map[string]store.Reading
	// confirmed holds a relay state read back after a command, until a
	// reading begun after it replaces it.
	confirmed map[string]confirmedRelay
	monotonic func() time.Time // time.Now; tests step it
	buses     map[string]*busState
}

// confirmedRelay is a relay state read back after a command, and when:
// at on the gateway's clock, set by the machine's monotonic clock.
type confirmedRelay struct {
	state string
	at    time.Time
	set   time.Time // time.Now() with its monotonic reading
}

// confirmedFor bounds how long a read-back outranks readings. Readings are
// ordered against it by the wall clock (the gateway's times are in the
// site's zone, which strips Go's monotonic reading): were the clock stepped
// back after a command, every reading would seem to have begun before it,
// and the read-back would stand for as long as the step. Any bus cycle is
// far shorter than this.
const confirmedFor = 2 * time.Minute

// current returns meter id's confirmation while it stands; lv.mu held.
func (lv *Picture) current(id string) (confirmedRelay, bool) {
	c, ok := lv.confirmed[id]
	if ok && lv.monotonic().Sub(c.set) > confirmedFor {
		delete(lv.confirmed, id)
		return confirmedRelay{}, false
	}
	return c, ok
}

type busState struct {
	cfg       config.Bus
	sched     *poll.Scheduler // nil while the port cannot be opened
	lastCycle time.Time
	cycleDur  time.Duration
}

// New returns the picture of the configured meters and buses, before any
// reading; now is the clock (the status page's "ago").
func New(cfg *config.Config, version, dbPath string, now func() time.Time) *Picture {
	lv := &Picture{cfg: cfg, version: version, dbPath: dbPath, started: now(), now: now,
		latest: make(map[string]store.Reading), confirmed: make(map[string]confirmedRelay), monotonic: time.Now, buses: make(map[string]*busState)}
	for _, b := range cfg.Buses {
		lv.buses[b.Name] = &busState{cfg: b}
	}
	return lv
}

// SetDesired sets where a meter's desired relay state comes from
// (enforcement); call it before the picture is served.
func (lv *Picture) SetDesired(desired func(id string) string) { lv.desired = desired }

// Relay returns the relay state of meter id as last read ("" if never).
func (lv *Picture) Relay(id string) string {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.latest[id].Relay
}

// Update records a committed reading whose read began at start. A reading
// begun before a relay command was read back may have read the relay
// before the command (a bus reads a meter in several transactions, and a
// command is served between them): its relay state does not replace the
// confirmed one, or the page would show the old state again for a cycle
// and enforcement would command the relay a second time.
func (lv *Picture) Update(r store.Reading, start time.Time) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if c, ok := lv.current(r.Meter); ok {
		if start.Before(c.at) {
			r.Relay = c.state
		} else {
			delete(lv.confirmed, r.Meter)
		}
	}
	lv.latest[r.Meter] = r
}

// SetRelay records a relay state read back after a command at at: fresher
// than the meter's last reading, which may predate the command by a whole
// bus cycle, and than any reading begun before at.
func (lv *Picture) SetRelay(id string, state string, at time.Time) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.confirmed[id] = confirmedRelay{state: state, at: at, set: lv.monotonic()}
	if r, ok := lv.latest[id]; ok {
		r.Relay = state
		lv.latest[id] = r
	}
}

// RelayConfirmed returns the relay state of meter id read back after a
// command, and when, while no reading begun after it has been recorded;
// ok is false otherwise.
func (lv *Picture) RelayConfirmed(id string) (state string, at time.Time, ok bool) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	c, ok := lv.current(id)
	return c.state, c.at, ok
}

// Scheduler returns the running scheduler of bus, or nil.
func (lv *Picture) Scheduler(bus string) *poll.Scheduler {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if b := lv.buses[bus]; b != nil {
		return b.sched
	}
	return nil
}

// SetScheduler records the running scheduler of bus.
func (lv *Picture) SetScheduler(bus string, s *poll.Scheduler) {
	lv.mu.Lock()
	lv.buses[bus].sched = s
	lv.mu.Unlock()
}

// CycleDone records when a cycle of bus ran, for the status page.
func (lv *Picture) CycleDone(bus string, start, end time.Time) {
	lv.mu.Lock()
	b := lv.buses[bus]
	b.lastCycle, b.cycleDur = end, end.Sub(start)
	lv.mu.Unlock()
}

// pollStatus gathers every scheduler's per-meter state.
func (lv *Picture) pollStatus() map[string]poll.MeterStatus {
	lv.mu.Lock()
	scheds := make([]*poll.Scheduler, 0, len(lv.buses))
	for _, b := range lv.buses {
		if b.sched != nil {
			scheds = append(scheds, b.sched)
		}
	}
	lv.mu.Unlock()
	out := make(map[string]poll.MeterStatus)
	for _, s := range scheds {
		for _, st := range s.Status() {
			out[st.ID] = st
		}
	}
	return out
}

// Meters implements web.Source.
func (lv *Picture) Meters() []web.MeterView { return lv.meters(lv.pollStatus()) }

// meters builds the meter views from one snapshot of the polling state.
// The desired relay states are asked for after lv.mu is released: the
// enforcer takes its own lock and then lv.mu, so calling it under lv.mu
// would deadlock.
func (lv *Picture) meters(ps map[string]poll.MeterStatus) []web.MeterView {
	out := lv.meterViews(ps)
	if lv.desired != nil {
		for i := range out {
			out[i].Relay.Desired = lv.desired(out[i].ID)
		}
	}
	return out
}

func (lv *Picture) meterViews(ps map[string]poll.MeterStatus) []web.MeterView {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	out := make([]web.MeterView, 0, len(lv.cfg.Meters))
	for _, m := range lv.cfg.Meters {
		st := ps[m.ID]
		v := web.MeterView{
			ID: m.ID, Bus: m.Bus, Address: m.Address, Model: m.Model, Role: m.Role, Tenant: m.Tenant,
			Online: st.Online,
			Values: map[string]web.Value{},
			Energy: map[string]string{},
			Relay:  web.RelayView{Desired: "closed", Actual: meter.RelayUnknown.String()},
			Stats: web.StatsView{
				Requests: st.Stats.Requests, Errors: st.Stats.Errors, LastError: st.Stats.LastError,
				P50MS: float64(st.Stats.P50.Microseconds()) / 1000, P99MS: float64(st.Stats.P99.Microseconds()) / 1000,
			},
		}
		if t, ok := lv.cfg.Tenant(m.Tenant); ok {
			v.TenantName = t.Name
		}
		if v.Stats.Errors == nil {
			v.Stats.Errors = map[string]int64{}
		}
		if !st.Stats.LastSeen.IsZero() {
			t := lv.cfg.SiteTime(st.Stats.LastSeen)
			v.Stats.LastSeen = &t
		}
		if r, ok := lv.latest[m.ID]; ok {
			t := lv.cfg.SiteTime(r.Time)
			v.ReadingTime = &t
			v.ImportKWh = meter.FormatKWh(r.ImportWh)
			v.Relay.Actual = r.Relay
			for _, x := range r.Values {
				v.Values[x.Name] = web.Value{Value: x.Value, Unit: meter.Quantity(x.Name).Unit()}
			}
			for _, c := range r.Counters {
				v.Energy[c.Name] = meter.FormatKWh(c.Wh)
			}
			if v.Stats.LastSeen == nil { // restored from the database, not yet polled
				v.Stats.LastSeen = &t
			}
		}
		out = append(out, v)
	}
	return out
}

// Status implements web.Source.
func (lv *Picture) Status() web.StatusView {
	ps := lv.pollStatus()
	meters := lv.meters(ps)
	online := make(map[string]int)
	s := web.StatusView{Site: lv.cfg.Site.Name, Timezone: lv.cfg.Site.Timezone, Version: lv.version,
		Started: lv.cfg.SiteTime(lv.started), Now: lv.cfg.SiteTime(lv.now()), Database: lv.dbPath}
	for _, m := range meters {
		if m.Online {
			online[m.Bus]++
			s.Counts.Online++
		}
	}
	s.Counts.Meters = len(meters)
	for _, m := range meters {
		pv := pollingViewOf(m)
		if next := ps[m.ID].NextProbe; !next.IsZero() {
			next = lv.cfg.SiteTime(next)
			pv.NextProbe = &next
		}
		s.Polling = append(s.Polling, pv)
	}
	s.Counts.Offline = s.Counts.Meters - s.Counts.Online
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for _, b := range lv.cfg.Buses {
		bs := lv.buses[b.Name]
		s.Buses = append(s.Buses, web.BusView{
			Name: b.Name, Type: b.Type, Port: b.Port, Meters: len(lv.cfg.MetersOn(b.Name)), Online: online[b.Name],
			LastCycle: lv.cfg.SiteTime(bs.lastCycle), CycleMS: bs.cycleDur.Milliseconds(),
		})
	}
	return s
}

// pollingViewOf is the polling part of a meter's view.
func pollingViewOf(m web.MeterView) web.PollingView {
	return web.PollingView{Meter: m.ID, Bus: m.Bus, Address: m.Address, Online: m.Online, StatsView: m.Stats}
}
