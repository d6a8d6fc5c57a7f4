package health

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// Defaults for an Options' zero values, and the event window Restore is
// meant to be given.
const (
	DefaultOfflineAfter = 30 * time.Second
	DefaultFailedReads  = 3
	// CheckEvery is how often Run applies the debounce.
	CheckEvery = time.Second
	// RestoreWindow is how many of the newest stored events the gateway
	// passes to Restore: enough for months of a mall's events, read at start
	// in a few milliseconds.
	RestoreWindow = 5000
)

// Event kinds the Tracker raises.
const (
	KindMeterOffline = "meter_offline"
	KindMeterOnline  = "meter_online"
	KindBusDown      = "bus_down"
	KindBusUp        = "bus_up"
)

// Bus is a bus the Tracker watches.
type Bus struct {
	Name   string
	Port   string // as configured: a device path or tcp://host:port
	Meters []Meter
}

// Meter is a meter on a watched bus.
type Meter struct {
	ID      string
	Tenant  string // "" for a meter without a tenant
	Address int
}

// Recorder stores events and returns them with their ids; *store.DB
// implements it.
type Recorder interface {
	PostEvents(events ...store.Event) ([]store.Event, error)
}

// Publisher hands stored events to live subscribers; *live.Hub implements
// it.
type Publisher interface {
	Publish(evs []store.Event)
}

// Options configure a Tracker.
type Options struct {
	Buses []Bus
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Location is the zone of the clock times in Problems; nil means UTC.
	Location *time.Location
	Log      zerolog.Logger
	// Recorder and Publisher receive the events; either may be nil
	// (then events are only logged, or only stored).
	Recorder  Recorder
	Publisher Publisher
	// OfflineAfter is the least time without a good reading before a meter
	// is offline; 0 means DefaultOfflineAfter.
	OfflineAfter time.Duration
	// FailedReads is how many reads in a row must fail before a meter is
	// offline; 0 means DefaultFailedReads.
	FailedReads int
}

// Tracker follows meters and buses; its methods are safe for concurrent use.
type Tracker struct {
	o       Options
	started time.Time

	// emit makes computing transitions and recording them one step, so two
	// goroutines cannot store a meter's events out of order.
	emit sync.Mutex
	mu   sync.Mutex // guards the state below; held without emit by Problems
	bus  map[string]*busState
	byID map[string]*meterState
	// order keeps buses in configuration order for Problems and events.
	order []*busState
}

type busState struct {
	Bus
	// watched is when the bus began to be watched: the start, or the
	// start of the Tracker it was carried from over reloads (Carry).
	watched time.Time
	meters  []*meterState
	down    bool      // as last reported
	portErr error     // the last open failure, until an open works
	portAt  time.Time // when the port first failed to open, in this run of failures
	lastErr error     // the last failed read of any meter on it
	// The bus's own evidence: its last good reading from any meter, and
	// the reads failed on it since. The poller backs off absent meters and
	// probes one of them a cycle, so a dead converter would bring each
	// meter to FailedReads one interval after the last: judged meter by
	// meter, a bus of thirty would be down only after thirty intervals.
	lastGood time.Time
	failures int
}

type meterState struct {
	Meter
	watched  time.Time // as the bus's
	bus      *busState
	offline  bool      // as last reported
	lastGood time.Time // zero: none since the start
	ok       bool      // its last read gave a good reading
	failures int       // reads failed since lastGood
	lastErr  error
}

// New returns a Tracker of the buses in o, every meter and bus taken for
// online until the debounce says otherwise.
func New(o Options) *Tracker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.OfflineAfter <= 0 {
		o.OfflineAfter = DefaultOfflineAfter
	}
	if o.FailedReads <= 0 {
		o.FailedReads = DefaultFailedReads
	}
	t := &Tracker{o: o, started: o.Now(), bus: make(map[string]*busState), byID: make(map[string]*meterState)}
	for _, b := range o.Buses {
		if len(b.Meters) == 0 {
			continue // nothing on it can answer: not watched
		}
		bs := &busState{Bus: b, watched: t.started}
		for _, m := range b.Meters {
			ms := &meterState{Meter: m, bus: bs, watched: t.started}
			bs.meters = append(bs.meters, ms)
			t.byID[m.ID] = ms
		}
		t.bus[b.Name] = bs
		t.order = append(t.order, bs)
	}
	return t
}

// Restore takes stored events, oldest first, and keeps the last state each
// reported for a watched meter or bus, so that a restart reports only what
// changed since. Call it before the first Cycle.
func (t *Tracker) Restore(evs []store.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		switch e.Kind {
		case KindMeterOffline, KindMeterOnline:
			if m := t.byID[e.Meter]; m != nil {
				m.offline = e.Kind == KindMeterOffline
			}
		case KindBusDown, KindBusUp:
			b := t.bus[e.Bus]
			if e.Bus == "" {
				b = t.busOfText(e.Text) // stored before events named their bus
			}
			if b != nil {
				b.down = e.Kind == KindBusDown
			}
		}
	}
}

// Carry takes over from prev, the Tracker of the configuration a reload
// replaces (no longer fed), what it knew of each bus named and of the
// meters still on it at the same address: when each last answered, the
// reads failed since, the port's failure, what was last reported, and
// since when it is watched. A reload then neither tells again of an outage
// already told, nor has /healthz say that no meter has answered yet on a
// bus whose meters answered a moment before. Buses and meters not carried
// start as at a start. Call it after Restore and before the first Cycle.
func (t *Tracker) Carry(prev *Tracker, buses []string) {
	type busWas struct {
		bus    busState
		meters map[string]meterState
	}
	was := make(map[string]busWas, len(buses))
	prev.mu.Lock()
	for _, name := range buses {
		b := prev.bus[name]
		if b == nil {
			continue
		}
		w := busWas{bus: *b, meters: make(map[string]meterState, len(b.meters))}
		for _, m := range b.meters {
			w.meters[m.ID] = *m
		}
		was[name] = w
	}
	prev.mu.Unlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	for name, w := range was {
		b := t.bus[name]
		if b == nil || b.Port != w.bus.Port {
			continue
		}
		b.watched, b.down, b.portErr, b.portAt = w.bus.watched, w.bus.down, w.bus.portErr, w.bus.portAt
		b.lastErr, b.lastGood, b.failures = w.bus.lastErr, w.bus.lastGood, w.bus.failures
		for _, m := range b.meters {
			old, ok := w.meters[m.ID]
			if !ok || old.Address != m.Address {
				continue // as a meter added: watched from now
			}
			m.watched, m.offline, m.lastGood, m.ok, m.failures, m.lastErr = old.watched, old.offline, old.lastGood, old.ok, old.failures, old.lastErr
		}
	}
}

// busOfText returns the watched bus a bus event's text names, or nil: how
// the bus of an event stored without its Bus is found.
func (t *Tracker) busOfText(text string) *busState {
	for _, b := range t.order {
		if strings.HasPrefix(text, busPrefix(b.Name)) {
			return b
		}
	}
	return nil
}

func busPrefix(name string) string { return "Bus " + name + " " }

// Cycle notes a bus cycle's results and reports what changed. A meter with
// a result without error answered at its reading's time.
func (t *Tracker) Cycle(c poll.Cycle) {
	t.emit.Lock()
	defer t.emit.Unlock()
	now := t.o.Now()
	t.mu.Lock()
	for _, r := range c.Results {
		m := t.byID[r.Meter]
		if m == nil {
			continue
		}
		if r.Err != nil {
			m.failures++
			m.bus.failures++
			m.ok = false
			m.lastErr = r.Err
			m.bus.lastErr = r.Err
			continue
		}
		at := r.Reading.Time
		if at.IsZero() {
			at = c.End
		}
		if at.After(m.lastGood) {
			m.lastGood = at
		}
		m.ok, m.failures, m.lastErr = true, 0, nil
		if at.After(m.bus.lastGood) {
			m.bus.lastGood = at
		}
		m.bus.failures = 0
	}
	evs := t.transitions(now)
	t.mu.Unlock()
	t.record(evs)
}

// PortFailed notes that bus's port could not be opened: the bus is down at
// once.
func (t *Tracker) PortFailed(bus string, err error) {
	t.emit.Lock()
	defer t.emit.Unlock()
	now := t.o.Now()
	t.mu.Lock()
	if b := t.bus[bus]; b != nil {
		if b.portErr == nil {
			b.portAt = now
		}
		b.portErr = err
		for _, m := range b.meters {
			m.ok = false // it answers again only through the port, once open
		}
	}
	evs := t.transitions(now)
	t.mu.Unlock()
	t.record(evs)
}

// PortOpened notes that bus's port is open. The bus is up only once a meter
// on it answers.
func (t *Tracker) PortOpened(bus string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.bus[bus]; b != nil {
		b.portErr = nil
	}
}

// Check reports what the debounce has turned offline or down by now.
func (t *Tracker) Check() {
	t.emit.Lock()
	defer t.emit.Unlock()
	now := t.o.Now()
	t.mu.Lock()
	evs := t.transitions(now)
	t.mu.Unlock()
	t.record(evs)
}

// Run calls Check every CheckEvery until ctx ends; it returns nil then.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(CheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.Check()
		}
	}
}

// silent reports whether m is offline by the debounce at now: FailedReads
// failed reads and OfflineAfter without a good one — or, on a bus that is
// silent as a whole, OfflineAfter and any failed read: its meters are not
// each waited for until a backed-off probe reaches them.
func (t *Tracker) silent(m *meterState, busSilent bool, now time.Time) bool {
	enough := m.failures >= t.o.FailedReads || (busSilent && m.failures > 0)
	return enough && now.Sub(t.since(m)) >= t.o.OfflineAfter
}

// busSilent reports whether no meter on b has answered for OfflineAfter
// while FailedReads reads on it failed.
func (t *Tracker) busSilent(b *busState, now time.Time) bool {
	since := b.lastGood
	if since.IsZero() {
		since = b.watched
	}
	return b.failures >= t.o.FailedReads && now.Sub(since) >= t.o.OfflineAfter
}

// since is when m last answered, or the start if it has not.
func (t *Tracker) since(m *meterState) time.Time {
	if m.lastGood.IsZero() {
		return m.watched
	}
	return m.lastGood
}

// transitions updates the reported states to what holds at now and returns
// an event per change: on a bus going down its meters' events come first,
// on one coming up its own event does. Called with mu held.
func (t *Tracker) transitions(now time.Time) []pending {
	var out []pending
	for _, b := range t.order {
		var meters []pending
		busSilent := t.busSilent(b, now)
		allSilent, answered := true, (*meterState)(nil)
		for _, m := range b.meters {
			s := t.silent(m, busSilent, now)
			if !s {
				allSilent = false
			}
			if m.ok && (answered == nil || m.lastGood.After(answered.lastGood)) {
				answered = m
			}
			switch {
			case s && !m.offline:
				m.offline = true
				meters = append(meters, t.meterOffline(m, now))
			case m.offline && m.ok:
				m.offline = false
				meters = append(meters, t.meterOnline(m))
			}
		}
		down := b.portErr != nil || allSilent || busSilent
		up := b.portErr == nil && answered != nil
		switch {
		case down && !b.down:
			b.down = true
			out = append(out, meters...)
			out = append(out, t.busDown(b, now))
		case b.down && up:
			b.down = false
			out = append(out, t.busUp(b, answered))
			out = append(out, meters...)
		default:
			out = append(out, meters...)
		}
	}
	return out
}

// pending is an event with how it is logged.
type pending struct {
	ev   store.Event
	bus  string
	warn bool
	err  error
}

func (t *Tracker) meterOffline(m *meterState, now time.Time) pending {
	var text string
	// The kind's own sentence is a meter that stopped answering, with the
	// last error; forms never (since the start) and no_error.
	args := map[string]string{"meter": m.ID, "bus": m.bus.Name, "address": strconv.Itoa(m.Address),
		"failures": strconv.Itoa(m.failures)}
	form := ""
	if m.lastGood.IsZero() {
		text = fmt.Sprintf("Meter %s (bus %s, address %d) has not answered since the gateway started %s ago: %d reads failed in a row",
			m.ID, m.bus.Name, m.Address, round(now.Sub(m.watched)), m.failures)
		form, args["for_s"] = "never", seconds(now.Sub(m.watched))
	} else {
		text = fmt.Sprintf("Meter %s (bus %s, address %d) stopped answering %s ago: %d reads failed in a row",
			m.ID, m.bus.Name, m.Address, round(now.Sub(m.lastGood)), m.failures)
		args["for_s"] = seconds(now.Sub(m.lastGood))
	}
	if m.lastErr != nil {
		text += ", the last with: " + m.lastErr.Error()
		args["error"] = m.lastErr.Error()
	} else {
		form = strings.TrimPrefix(form+"_no_error", "_")
	}
	if form != "" {
		args["form"] = form
	}
	text += ". Its readings, billing and relay commands wait until it answers; check its power, its address and its wiring to the bus."
	return pending{ev: store.Event{Time: now, Kind: KindMeterOffline, Meter: m.ID, Tenant: m.Tenant, Bus: m.bus.Name, Text: text, Args: args},
		bus: m.bus.Name, warn: true, err: m.lastErr}
}

func (t *Tracker) meterOnline(m *meterState) pending {
	text := fmt.Sprintf("Meter %s (bus %s, address %d) answers again.", m.ID, m.bus.Name, m.Address)
	args := map[string]string{"meter": m.ID, "bus": m.bus.Name, "address": strconv.Itoa(m.Address)}
	return pending{ev: store.Event{Time: m.lastGood, Kind: KindMeterOnline, Meter: m.ID, Tenant: m.Tenant, Bus: m.bus.Name, Text: text, Args: args},
		bus: m.bus.Name}
}

func (t *Tracker) busDown(b *busState, now time.Time) pending {
	var text string
	// The kind's own sentence is a bus whose meters are silent, with the
	// last error; forms no_error, and port (its port cannot be opened).
	args := map[string]string{"bus": b.Name}
	err := b.portErr
	if err != nil {
		text = fmt.Sprintf("%sis down: its port %s cannot be opened (%v). Check that the adapter is plugged in and the port is the one configured; "+
			"the gateway keeps trying.", busPrefix(b.Name), b.Port, err)
		args["form"], args["port"], args["error"] = "port", b.Port, err.Error()
	} else {
		err = b.lastErr
		text = fmt.Sprintf("%sis down: none of its %d meters has answered for %s", busPrefix(b.Name), len(b.meters), round(now.Sub(t.lastAnswer(b))))
		args["meters"], args["for_s"] = strconv.Itoa(len(b.meters)), seconds(now.Sub(t.lastAnswer(b)))
		if err != nil {
			text += " (the last error: " + err.Error() + ")"
			args["error"] = err.Error()
		} else {
			args["form"] = "no_error"
		}
		text += ". Check the converter's power and the bus's wiring, baud rate and parity."
	}
	return pending{ev: store.Event{Time: now, Kind: KindBusDown, Bus: b.Name, Text: text, Args: args}, bus: b.Name, warn: true, err: err}
}

func (t *Tracker) busUp(b *busState, answered *meterState) pending {
	text := fmt.Sprintf("%sis up: meter %s answered.", busPrefix(b.Name), answered.ID)
	args := map[string]string{"bus": b.Name, "meter": answered.ID}
	return pending{ev: store.Event{Time: answered.lastGood, Kind: KindBusUp, Bus: b.Name, Text: text, Args: args}, bus: b.Name}
}

// seconds writes d as whole seconds, the unit of an event's *_s args.
func seconds(d time.Duration) string { return strconv.FormatInt(int64(round(d)/time.Second), 10) }

// lastAnswer is when a meter on b last answered, or the start.
func (t *Tracker) lastAnswer(b *busState) time.Time {
	last := b.watched
	for _, m := range b.meters {
		if m.lastGood.After(last) {
			last = m.lastGood
		}
	}
	return last
}

// record stores, publishes and logs events, in order. Called with emit
// held and mu not held: a slow commit must not hold up /healthz.
func (t *Tracker) record(evs []pending) {
	if len(evs) == 0 {
		return
	}
	for _, p := range evs {
		e := t.o.Log.Info()
		if p.warn {
			e = t.o.Log.Warn()
		}
		e = e.Str("bus", p.bus).Str("event", p.ev.Kind)
		if p.ev.Meter != "" {
			e = e.Str("meter", p.ev.Meter)
		}
		e.AnErr("error", p.err).Msg(p.ev.Text)
	}
	if t.o.Recorder == nil {
		return
	}
	batch := make([]store.Event, len(evs))
	for i, p := range evs {
		batch[i] = p.ev
	}
	stored, err := t.o.Recorder.PostEvents(batch...)
	if err != nil {
		t.o.Log.Error().Err(err).Int("events", len(batch)).Msg("could not store the meter and bus events above: they are in this log only")
		return
	}
	if t.o.Publisher != nil {
		t.o.Publisher.Publish(stored)
	}
}

// Problems returns why buses have no live meter, one line each, in
// configuration order; nil when every watched bus has one. A bus on which no
// meter has answered yet since the start is a problem too, without an
// event: the gateway cannot yet vouch for it.
func (t *Tracker) Problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, b := range t.order {
		switch {
		case b.portErr != nil:
			out = append(out, fmt.Sprintf("bus %s: port %s cannot be opened since %s: %v", b.Name, b.Port, t.clock(b.portAt), b.portErr))
		case b.down:
			p := fmt.Sprintf("bus %s: no meter has answered since %s", b.Name, t.clock(t.lastAnswer(b)))
			if lastAnswerIsStart(b) {
				p = fmt.Sprintf("bus %s: no meter has answered since the gateway started at %s", b.Name, t.clock(b.watched))
			}
			if b.lastErr != nil {
				p += " (" + b.lastErr.Error() + ")"
			}
			out = append(out, p)
		case lastAnswerIsStart(b):
			out = append(out, fmt.Sprintf("bus %s: no meter has answered yet since the gateway started at %s", b.Name, t.clock(b.watched)))
		}
	}
	return out
}

func lastAnswerIsStart(b *busState) bool {
	for _, m := range b.meters {
		if !m.lastGood.IsZero() {
			return false
		}
	}
	return true
}

func (t *Tracker) clock(at time.Time) string { return at.In(t.o.Location).Format(time.RFC3339) }

// round keeps a duration in an event text readable: whole seconds.
func round(d time.Duration) time.Duration { return d.Round(time.Second) }
