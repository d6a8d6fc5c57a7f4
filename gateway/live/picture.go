package live

import (
	"sync"
	"time"

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
	// uplink gives the uplink's state for the status; nil: none configured.
	uplink func() *web.UplinkView

	mu     sync.Mutex
	latest map[string]store.Reading
	// confirmed holds a relay state read back after a command, until a
	// reading begun after it replaces it.
	confirmed map[string]confirmedRelay
	monotonic func() time.Time // time.Now; tests step it
	buses     map[string]*busState
	// carry is what Carry took over from the picture before a reload.
	carry carried

	// seq numbers the picture's changes: each change of a meter (a
	// reading, a read-back, its polling state or desired relay state)
	// takes the next number as the meter's version (changes.go).
	seq    uint64
	base   uint64 // seq at New: numbers below it are another run's
	meters map[string]*meterState
	// refreshMu makes one refresh at a time: two that read the
	// schedulers at different moments must not apply them out of order.
	refreshMu sync.Mutex
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
	sched     poll.Bus // nil while the port cannot be opened
	status    func() []poll.MeterStatus
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
	lv.base = newBase()
	lv.seq = lv.base
	lv.meters = make(map[string]*meterState, len(cfg.Meters))
	for _, m := range cfg.Meters {
		lv.meters[m.ID] = &meterState{ver: lv.seq, desired: "closed"}
	}
	return lv
}

// SetDesired sets where a meter's desired relay state comes from
// (enforcement); call it before the picture is served.
func (lv *Picture) SetDesired(desired func(id string) string) { lv.desired = desired }

// SetUplink sets where the status's uplink comes from (the root's view of
// uplink.Service); call it before the picture is served.
func (lv *Picture) SetUplink(uplink func() *web.UplinkView) { lv.uplink = uplink }

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
	lv.update(r, start)
}

// update is Update with lv.mu held.
func (lv *Picture) update(r store.Reading, start time.Time) {
	if c, ok := lv.current(r.Meter); ok {
		if start.Before(c.at) {
			r.Relay = c.state
		} else {
			delete(lv.confirmed, r.Meter)
		}
	}
	if last, ok := lv.latest[r.Meter]; ok && len(r.Values) == 0 {
		// Counters alone (an MQTT meter's MQTT_ENY_NOW): the values shown
		// stay those of its last values.
		r.Values = last.Values
	}
	lv.latest[r.Meter] = r
	lv.changed(r.Meter)
}

// UpdateValues records a reading of instantaneous values alone (a meter
// that sends its counters apart, over MQTT): its values, time and relay
// replace the last reading's, whose counters stay.
func (lv *Picture) UpdateValues(r store.Reading, start time.Time) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if last, ok := lv.latest[r.Meter]; ok {
		r.ImportWh, r.Counters = last.ImportWh, last.Counters
		if r.Relay == "" || r.Relay == "unknown" {
			r.Relay = last.Relay
		}
	}
	lv.update(r, start)
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
	lv.changed(id)
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

// Scheduler returns the running bus of that name, or nil.
func (lv *Picture) Scheduler(bus string) poll.Bus {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if b := lv.buses[bus]; b != nil {
		return b.sched
	}
	return nil
}

// SetScheduler records the running bus of that name: a Modbus
// scheduler, or a bus of MQTT meters.
func (lv *Picture) SetScheduler(bus string, s poll.Bus) {
	lv.mu.Lock()
	lv.buses[bus].sched = s
	lv.buses[bus].status = s.Status
	lv.mu.Unlock()
}

// SetStatus makes status the source of bus's per-meter polling state
// where no scheduler polls it (a benchmark's recorded statistics).
func (lv *Picture) SetStatus(bus string, status func() []poll.MeterStatus) {
	lv.mu.Lock()
	lv.buses[bus].status = status
	lv.mu.Unlock()
}

// CycleDone records when a cycle of bus ran, for the status page.
func (lv *Picture) CycleDone(bus string, start, end time.Time) {
	lv.mu.Lock()
	b := lv.buses[bus]
	b.lastCycle, b.cycleDur = end, end.Sub(start)
	lv.mu.Unlock()
}

// CycledSince says whether every bus has run a whole cycle that ended at
// or after t (its charges committed): the statements wait for it after a
// start, as a meter's charge held over a stop is posted at its first cycle.
func (lv *Picture) CycledSince(t time.Time) bool {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for _, b := range lv.buses {
		if b.lastCycle.Before(t) {
			return false
		}
	}
	return true
}

// PollStatus returns every polled meter's state by meter id, as each
// bus's poller gives it now: what the meters' views are built from,
// without building them (a scrape of /metrics reads it every 15 s). A
// meter on a bus without a running poller is not in it, unless its state
// was carried over a reload (Carry).
func (lv *Picture) PollStatus() map[string]poll.MeterStatus { return lv.pollStatus() }

// pollStatus gathers every scheduler's per-meter state, with what was
// carried over a reload.
func (lv *Picture) pollStatus() map[string]poll.MeterStatus {
	out, c, now := lv.polled()
	c.withCarried(out, now)
	return out
}

// polled gathers every scheduler's own per-meter state, and returns it
// with what was carried over a reload and the time (lv.monotonic) to
// judge that by.
func (lv *Picture) polled() (map[string]poll.MeterStatus, carried, time.Time) {
	lv.mu.Lock()
	sources := make([]func() []poll.MeterStatus, 0, len(lv.buses))
	for _, b := range lv.buses {
		if b.status != nil {
			sources = append(sources, b.status)
		}
	}
	c, now := lv.carry, lv.monotonic()
	lv.mu.Unlock()
	out := make(map[string]poll.MeterStatus, len(lv.cfg.Meters))
	for _, status := range sources {
		for _, st := range status() {
			out[st.ID] = st
		}
	}
	return out, c, now
}

// Meters implements web.Source. The views are shared with other callers
// until their meter changes: they are read, never modified.
func (lv *Picture) Meters() []web.MeterView {
	lv.refresh()
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.views(nil)
}

// Status implements web.Source.
func (lv *Picture) Status() web.StatusView {
	lv.refresh()
	lv.mu.Lock()
	meters := lv.views(nil)
	next := make(map[string]time.Time)
	for id, st := range lv.meters {
		if !st.status.NextProbe.IsZero() {
			next[id] = st.status.NextProbe
		}
	}
	lv.mu.Unlock()
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
		if at, ok := next[m.ID]; ok {
			at = lv.cfg.SiteTime(at)
			pv.NextProbe = &at
		}
		s.Polling = append(s.Polling, pv)
	}
	s.Counts.Offline = s.Counts.Meters - s.Counts.Online
	// Outside the lock: it reads the database.
	if lv.uplink != nil {
		s.Uplink = lv.uplink()
	}
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
