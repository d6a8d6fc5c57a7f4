package enforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Enforcement timing.
const (
	// minSwitchGap is the least time between two commands to one relay:
	// contactors wear, and a balance hovering at a threshold must not make
	// a relay chatter.
	minSwitchGap = 30 * time.Second
	// relayTimeout bounds one relay command: mode, switch, read back.
	relayTimeout = 10 * time.Second
	// faultAfter is how many failed commands in a row raise relay_fault.
	faultAfter = 3
	// reconcileEvery is how often relays are checked without a kick.
	reconcileEvery = time.Second
)

// Enforcer drives every relay to its desired state: closed (power on)
// unless an operator's override or the account policy says open. Desired
// states and overrides are stored before they are carried out and loaded
// before the first poll, so a restart neither forgets a cut-off nor cuts
// anyone by surprise. Commands go through the bus's priority lane and the
// state is read back; a relay that does not follow is retried with backoff
// and raises relay_fault.
type Enforcer struct {
	cfg     *config.Config
	db      *store.DB
	picture *live.Picture
	hub     *live.Hub
	log     zerolog.Logger
	now     func() time.Time
	kick    chan struct{}
	// switchGap is minSwitchGap and retryBase the first retry's wait;
	// tests shorten them.
	switchGap, retryBase time.Duration

	// available gives every tenant's balance less its accrued charges, read
	// together (the pipeline's); nil: no accounts are evaluated.
	available func() (map[string]billing.Money, error)
	// progress is Options.Progress, never nil.
	progress func()
	// commanded is Options.Commanded, never nil.
	commanded func(closed bool, err error)

	mu      sync.Mutex
	relays  map[string]*relayControl
	tenants map[string]*tenantControl
	meters  map[string]config.Meter
	// tenantMeters lists each tenant's own meters: cut and restored together.
	tenantMeters map[string][]string
}

// relayControl is a relay's stored enforcement state.
type relayControl struct {
	Override *override `json:"override,omitempty"`
	// PolicyOpen is the account policy's decision: cut this tenant off.
	PolicyOpen bool      `json:"policy_open,omitempty"`
	LastSwitch time.Time `json:"last_switch,omitzero"`
	Failures   int       `json:"failures,omitempty"`
	NextTry    time.Time `json:"next_try,omitzero"`
}

// active reports whether the override still holds at now.
func (o *override) active(now time.Time) bool {
	return o != nil && (o.Until.IsZero() || now.Before(o.Until))
}

// override is an operator's manual relay state, with who, why and until.
type override struct {
	Closed bool      `json:"closed"`
	Reason string    `json:"reason"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until,omitzero"` // zero: until set back to auto
}

// ControlMeterPrefix starts the control keys of meters (their relay
// control); ControlTenantPrefix those of accounts.
const ControlMeterPrefix = "meter/"

// New loads the stored enforcement state (accounts' statuses, relays'
// desired states and overrides) so that a decision taken before a restart
// is carried on; it returns an error wrapping store.ErrCorrupt for a
// record it cannot read.
func New(cfg *config.Config, db *store.DB, lv *live.Picture, h *live.Hub, log zerolog.Logger, now func() time.Time, opts Options) (*Enforcer, error) {
	e := &Enforcer{cfg: cfg, db: db, picture: lv, hub: h, log: log, now: now, kick: make(chan struct{}, 1), switchGap: minSwitchGap, retryBase: 5 * time.Second,
		relays: make(map[string]*relayControl), meters: make(map[string]config.Meter), tenantMeters: make(map[string][]string),
		available: opts.Available, progress: opts.Progress, commanded: opts.Commanded}
	if e.progress == nil {
		e.progress = func() {}
	}
	if e.commanded == nil {
		e.commanded = func(bool, error) {}
	}
	if opts.SwitchGap > 0 {
		e.switchGap, e.retryBase = opts.SwitchGap, opts.SwitchGap
	}
	for _, m := range cfg.Meters {
		e.meters[m.ID] = m
		if m.Role == config.TenantMeter {
			if model, err := cfg.ModelOf(m); err == nil && model.Relay != nil {
				e.tenantMeters[m.Tenant] = append(e.tenantMeters[m.Tenant], m.ID)
			}
		}
	}
	stored, err := db.Controls()
	if err != nil {
		return nil, err
	}
	if err := e.loadTenants(stored); err != nil {
		return nil, err
	}
	for key, raw := range stored {
		id, ok := strings.CutPrefix(key, ControlMeterPrefix)
		if !ok {
			continue
		}
		var rc relayControl
		if err := json.Unmarshal(raw, &rc); err != nil {
			return nil, fmt.Errorf("relay control of %s: %w: %v", id, store.ErrCorrupt, err)
		}
		e.relays[id] = &rc
	}
	return e, nil
}

// desired is the relay state meter id should have at now: an operator's
// override while it lasts, else the policy's; public and main meters are
// never cut by the policy.
func (e *Enforcer) desired(id string, now time.Time) (closed bool, why relayWhy) {
	rc := e.relays[id]
	if rc != nil && rc.Override.active(now) {
		o := rc.Override
		return o.Closed, relayWhy{"override by " + o.Actor + ": " + o.Reason, "override", o.Actor, o.Reason}
	}
	m := e.meters[id]
	if m.Role != config.TenantMeter {
		return true, relayWhy{"automatic: a " + m.Role + " meter is never cut off by the prepaid policy", "not_tenant", "", ""}
	}
	if rc != nil && rc.PolicyOpen {
		return false, relayWhy{"credit exhausted", "exhausted", "", ""}
	}
	return true, relayWhy{"automatic: the account may draw power", "may_draw", "", ""}
}

// relayWhy is why a relay is wanted the way it is: the sentence events
// and logs tell, and the same by code (web's WhyCode) with an override's
// who and why, for the events' args.
type relayWhy struct {
	text, code, actor, reason string
}

// args adds why's facts to an event's args: an override's who and why
// (form "override"), else the code shown as a word.
func (w relayWhy) args(args map[string]string) map[string]string {
	if w.code == "override" {
		args["form"], args["actor"], args["reason"] = "override", w.actor, w.reason
	} else {
		args["why"] = w.code
	}
	return args
}

// SetRelay implements the manual override of POST /api/v1/meters/{id}/relay.
func (e *Enforcer) SetRelay(_ context.Context, id string, req web.RelayRequest, actor string) (web.RelayView, error) {
	m, ok := e.meters[id]
	if !ok {
		return web.RelayView{}, fmt.Errorf("%w: no meter %q", web.ErrNotFound, id)
	}
	if model, err := e.cfg.ModelOf(m); err != nil || model.Relay == nil {
		return web.RelayView{}, fmt.Errorf("%w: meter %s (%s) has no relay", web.ErrInvalid, id, m.Model)
	}
	now := e.now()
	var ov *override
	switch req.State {
	case "on", "off":
		if req.Reason == "" {
			return web.RelayView{}, fmt.Errorf("%w: reason: say why the relay is forced %s; it is recorded", web.ErrInvalid, req.State)
		}
		ov = &override{Closed: req.State == "on", Reason: req.Reason, Actor: actor, At: now}
		if req.Until != "" {
			until, err := time.Parse(time.RFC3339, req.Until)
			if err != nil || !until.After(now) {
				return web.RelayView{}, fmt.Errorf("%w: until %q: want a future RFC 3339 time", web.ErrInvalid, req.Until)
			}
			ov.Until = until
		}
	case "auto":
	default:
		return web.RelayView{}, fmt.Errorf("%w: state %q: want on, off or auto", web.ErrInvalid, req.State)
	}
	e.mu.Lock()
	rc := e.control(id)
	next := *rc
	next.Override = ov
	next.Failures, next.NextTry = 0, time.Time{}
	text := fmt.Sprintf("relay of %s set to %s by %s", id, req.State, actor)
	// The kind's own sentence is "auto"; forms on and off, and on_until and
	// off_until with the override's end.
	args := map[string]string{"meter": id, "actor": actor}
	if ov != nil {
		text += ": " + ov.Reason
		args["form"], args["reason"] = req.State, ov.Reason
		if !ov.Until.IsZero() {
			text += " (until " + e.cfg.HumanTime(ov.Until) + ")"
			args["form"], args["until_at"] = req.State+"_until", e.cfg.SiteTime(ov.Until).Format(time.RFC3339)
		}
	}
	ev := store.Event{Time: now, Kind: "relay_override", Meter: id, Tenant: m.Tenant, Text: text, Args: args}
	evs, err := e.save(id, &next, ev)
	if err == nil {
		*rc = next
	}
	closed, _ := e.desired(id, now)
	e.mu.Unlock()
	if err != nil {
		return web.RelayView{}, err
	}
	e.hub.Publish(evs)
	l := e.log.Info().Str("meter", id).Str("tenant", m.Tenant).Str("state", req.State).Str("actor", actor)
	if ov != nil {
		l = l.Str("reason", ov.Reason)
		if !ov.Until.IsZero() {
			l = l.Time("until", e.cfg.SiteTime(ov.Until))
		}
	}
	l.Msg("relay override set")
	e.Wake()
	return web.RelayView{Desired: stateName(closed), Actual: e.actual(id).String()}, nil
}

// control returns meter id's control, creating it; e.mu held.
func (e *Enforcer) control(id string) *relayControl {
	rc := e.relays[id]
	if rc == nil {
		rc = &relayControl{}
		e.relays[id] = rc
	}
	return rc
}

// save stores rc (the new value of id's control) with events, durably.
func (e *Enforcer) save(id string, rc *relayControl, events ...store.Event) ([]store.Event, error) {
	raw, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	return e.db.PutControl(map[string][]byte{ControlMeterPrefix + id: raw}, events...)
}

// Wake makes Run look at the accounts now: a top-up or a new balance may
// change a tenant's state.
func (e *Enforcer) Wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func stateName(closed bool) string {
	if closed {
		return "closed"
	}
	return "open"
}

// blindPerPass bounds the commands a pass sends a bus's meters whose relay
// state is unknown (reportsOnlyChanges).
const blindPerPass = 20

// mqttOnline returns which meters of the MQTT buses are online, as their
// buses say.
func (e *Enforcer) mqttOnline() map[string]bool {
	out := make(map[string]bool)
	for _, b := range e.cfg.Buses {
		if !b.IsMQTT() {
			continue
		}
		if bus := e.picture.Scheduler(b.Name); bus != nil {
			for _, st := range bus.Status() {
				out[st.ID] = st.Online
			}
		}
	}
	return out
}

// reportsOnlyChanges reports whether meter m tells its relay's state only
// when it changes, if at all: a Compere meter over MQTT (a KPM33B never
// does). Its state is unknown until a command's confirmation tells it, so
// the desired state is commanded — the same state again is harmless —
// rather than waited for.
func (e *Enforcer) reportsOnlyChanges(m config.Meter) bool {
	b, ok := e.cfg.Bus(m.Bus)
	return ok && b.IsMQTT()
}

// actual is the relay state of meter id's latest reading.
func (e *Enforcer) actual(id string) meter.RelayState {
	switch e.picture.Relay(id) {
	case "closed":
		return meter.RelayClosed
	case "open":
		return meter.RelayOpen
	}
	return meter.RelayUnknown
}

// clockStepLimit is how far the wall clock may move against the machine's
// monotonic clock between two checks before it is reported as a step.
const clockStepLimit = time.Minute

// Run reconciles relays until ctx ends.
func (e *Enforcer) Run(ctx context.Context) {
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	last := time.Now()
	for {
		e.progress()
		last = e.checkClock(last)
		e.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-t.C:
		}
	}
}

// reconcile evaluates the accounts, then sends one command to each relay
// whose state differs from its desired one and may be switched now. Buses
// are worked in parallel — a mass cut-off at the end of protected hours
// takes as long as the busiest bus, not the sum — and each bus's commands
// one after another, as its priority lane takes them anyway. Restores go
// first: a tenant who has paid waits least.
func (e *Enforcer) reconcile(ctx context.Context) {
	now := e.now()
	e.evaluateAccounts(now)
	type job struct {
		m      config.Meter
		closed bool
		why    relayWhy
		blind  bool // its state is unknown: commanded to learn it
	}
	byBus := make(map[string][]job)
	blind := make(map[string][]job) // by bus: meters whose state is unknown, commanded to learn it
	var online map[string]bool      // the MQTT meters heard lately, read once a pass when needed
	for _, m := range e.cfg.Meters {
		e.mu.Lock()
		closed, why := e.desired(m.ID, now)
		snapshot := *e.control(m.ID)
		e.mu.Unlock()
		actual := e.actual(m.ID)
		unknown := actual == meter.RelayUnknown
		switch {
		case unknown && !e.reportsOnlyChanges(m):
			continue // a meter not read yet, or not answering: its next reading tells
		case unknown:
			// Only a meter that is heard: one offline would only fail,
			// and its failures would raise relay_fault for nothing.
			if online == nil {
				online = e.mqttOnline()
			}
			if !online[m.ID] {
				continue
			}
		case (actual == meter.RelayClosed) == closed:
			continue
		}
		if !e.due(m, closed, snapshot, now) {
			continue
		}
		if unknown {
			blind[m.Bus] = append(blind[m.Bus], job{m, closed, why, true})
			continue
		}
		byBus[m.Bus] = append(byBus[m.Bus], job{m, closed, why, false})
	}
	for bus, jobs := range blind {
		// After the relays known to be wrong, and a few a pass, restores
		// first: at a start 2,000 meters may be unknown, and a paying
		// tenant's restore must not wait behind them all.
		sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].closed && !jobs[j].closed })
		byBus[bus] = append(byBus[bus], jobs[:min(len(jobs), blindPerPass)]...)
	}
	var wg sync.WaitGroup
	for bus, jobs := range byBus {
		sched := e.picture.Scheduler(bus)
		if sched == nil {
			continue // the bus is not running (its port cannot be opened)
		}
		// Restores first, among the known and among the unknown.
		sort.SliceStable(jobs, func(i, j int) bool {
			if jobs[i].blind != jobs[j].blind {
				return !jobs[i].blind
			}
			return jobs[i].closed && !jobs[j].closed
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range jobs {
				if ctx.Err() != nil {
					return
				}
				// A job waits for the ones before it on its bus: look again,
				// since a top-up, an override or a protection flag may have
				// changed what this relay should be.
				at := e.now()
				e.mu.Lock()
				closed, why := e.desired(j.m.ID, at)
				snapshot := *e.control(j.m.ID)
				e.mu.Unlock()
				if closed != j.closed || !e.due(j.m, closed, snapshot, at) {
					continue
				}
				e.command(ctx, sched, j.m, closed, why, at)
				// A mass cut-off is many commands, each bounded by
				// relayTimeout: a pass may take minutes and still move.
				e.progress()
			}
		}()
	}
	wg.Wait()
}

// due reports whether a relay that is not as desired may be switched at
// now: not while its retry backoff or the anti-chatter gap runs, and — for
// a cut-off the account policy asked for — not in protected hours nor
// while the account is protected, even when a command failed before them
// or the relay was closed by hand during them. Restores are never held
// back by the gap: a tenant who has paid waits least.
func (e *Enforcer) due(m config.Meter, closed bool, rc relayControl, now time.Time) bool {
	if now.Before(rc.NextTry) {
		return false
	}
	if !closed && !rc.LastSwitch.IsZero() && now.Sub(rc.LastSwitch) < e.switchGap {
		return false
	}
	if !closed && (rc.Override == nil || !rc.Override.active(now)) {
		if e.cfg.Protected().Contains(now) {
			return false
		}
		e.mu.Lock()
		tc := e.tenants[m.Tenant]
		flagged := tc != nil && tc.Flag.Active(now)
		e.mu.Unlock()
		if flagged {
			return false
		}
	}
	return true
}

// command switches one relay and records the outcome.
func (e *Enforcer) command(ctx context.Context, sched poll.Bus, m config.Meter, closed bool, why relayWhy, now time.Time) {
	cctx, cancel := context.WithTimeout(ctx, relayTimeout)
	out, err := sched.SwitchRelay(cctx, m.ID, closed)
	cancel()
	if err != nil && (ctx.Err() != nil || errors.Is(err, poll.ErrStopped)) {
		// Cut short by the generation's stop (a reload, a shutdown), not
		// refused by the meter: neither a failed command nor a relay
		// failure to back off from. The next generation's first pass
		// sends it again.
		e.log.Info().Str("meter", m.ID).Str("tenant", m.Tenant).Bool("close", closed).Str("why", why.text).Err(err).
			Msg("relay command cut short by the stop; sent again at the next start")
		return
	}
	e.commanded(closed, err)
	e.mu.Lock()
	rc := e.control(m.ID)
	next := *rc
	var events []store.Event
	if err == nil {
		next.LastSwitch = now // a failed command switched nothing: only the backoff holds it
		next.Failures, next.NextTry = 0, time.Time{}
		kind := "relay_opened"
		if closed {
			kind = "relay_closed"
		}
		events = append(events, store.Event{Time: now, Kind: kind, Meter: m.ID, Tenant: m.Tenant,
			Text: fmt.Sprintf("relay of %s %s (%s), read back %s after %s", m.ID, stateName(closed), why.text, out.State, (out.Wait + out.Took).Round(time.Millisecond)),
			Args: why.args(map[string]string{"meter": m.ID, "relay": out.State.String(),
				"took_ms": strconv.FormatInt((out.Wait + out.Took).Round(time.Millisecond).Milliseconds(), 10)})})
	} else {
		next.Failures++
		next.NextTry = now.Add(min(time.Duration(next.Failures)*e.retryBase, 5*time.Minute))
		if next.Failures == faultAfter {
			events = append(events, store.Event{Time: now, Kind: "relay_fault", Meter: m.ID, Tenant: m.Tenant,
				Text: fmt.Sprintf("relay of %s does not follow: %d commands to %s failed, last: %v", m.ID, next.Failures, stateName(closed), err),
				Args: map[string]string{"meter": m.ID, "failures": strconv.Itoa(next.Failures), "relay": stateName(closed), "error": err.Error()}})
		}
	}
	evs, serr := e.save(m.ID, &next, events...)
	if serr == nil {
		*rc = next
	}
	e.mu.Unlock()
	switch {
	case err == nil:
		// After e.mu is released: live takes lv.mu, and live's readers
		// ask the enforcer (e.mu) for desired states.
		e.picture.SetRelay(m.ID, out.State.String(), e.now())
	case e.reportsOnlyChanges(m):
		// An MQTT meter reads nothing back: after a failed command its
		// state is unknown (its session may still carry the command out),
		// and it is commanded again only while it is heard.
		e.picture.SetRelay(m.ID, meter.RelayUnknown.String(), e.now())
	}
	if serr != nil {
		e.log.Error().Str("meter", m.ID).Err(serr).Msg("store relay control")
		return
	}
	e.hub.Publish(evs)
	ev := e.log.Info()
	if err != nil {
		ev = e.log.Warn().Err(err)
	}
	ev.Str("meter", m.ID).Str("tenant", m.Tenant).Bool("close", closed).Str("why", why.text).Str("relay", out.State.String()).
		Int64("took_ms", (out.Wait + out.Took).Milliseconds()).Msg("relay command")
}

// DesiredName is meter id's desired relay state, for the status views.
func (e *Enforcer) DesiredName(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	closed, _ := e.desired(id, e.now())
	return stateName(closed)
}

// Override implements web.OverrideReader: why meter id's relay is wanted
// the way it is and, while an operator's override holds, whose it is
// (who, why, since and until); false for a meter without a relay the
// gateway drives.
func (e *Enforcer) Override(id string) (web.OverrideView, bool) {
	m, ok := e.meters[id]
	if !ok {
		return web.OverrideView{}, false
	}
	if model, err := e.cfg.ModelOf(m); err != nil || model.Relay == nil {
		return web.OverrideView{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	closed, why := e.desired(id, now)
	v := web.OverrideView{Desired: stateName(closed), Why: why.text}
	rc := e.relays[id]
	switch {
	case rc != nil && rc.Override.active(now):
		v.WhyCode = "override"
		o := rc.Override
		v.State, v.Actor, v.Reason = "off", o.Actor, o.Reason
		if o.Closed {
			v.State = "on"
		}
		at := e.cfg.SiteTime(o.At)
		v.At = &at
		if !o.Until.IsZero() {
			until := e.cfg.SiteTime(o.Until)
			v.Until = &until
		}
	case m.Role != config.TenantMeter:
		v.WhyCode = "not_tenant"
	case rc != nil && rc.PolicyOpen:
		v.WhyCode = "exhausted"
	default:
		v.WhyCode = "may_draw"
	}
	return v, true
}

// checkClock records a step of the wall clock (an NTP correction after a
// long time offline, a technician setting the date): the monotonic clock
// says how much time really passed. Cut-offs are safe from it anyway —
// the policy never cuts before the stored due time, and the counter rules
// refuse readings from before the last one — but finance must see it.
func (e *Enforcer) checkClock(last time.Time) time.Time {
	now := time.Now()
	e.clockStep(now.Round(0).Sub(last.Round(0)), now.Sub(last), now)
	return now
}

// clockStep reports wall − real beyond clockStepLimit as a clock_step event.
func (e *Enforcer) clockStep(wall, real time.Duration, at time.Time) {
	step := wall - real
	if step <= clockStepLimit && step >= -clockStepLimit {
		return
	}
	text := fmt.Sprintf("the clock stepped %s (%s passed, the wall clock moved %s)", step.Round(time.Second), real.Round(time.Second), wall.Round(time.Second))
	e.log.Warn().Str("step", step.Round(time.Second).String()).Msg(text)
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d.Round(time.Second)/time.Second), 10) }
	evs, err := e.db.PostEvents(store.Event{Time: at, Kind: "clock_step", Text: text,
		Args: map[string]string{"step_s": secs(step), "passed_s": secs(real), "wall_s": secs(wall)}})
	if err != nil {
		e.log.Error().Err(err).Msg("store clock step")
		return
	}
	e.hub.Publish(evs)
}

// CheckControl reports whether a stored enforcement value can be read as
// the daemon reads it at start (verify's check of the control bucket).
func CheckControl(key string, raw []byte) error {
	var v any
	switch {
	case strings.HasPrefix(key, ControlTenantPrefix):
		v = &tenantControl{}
	case strings.HasPrefix(key, ControlMeterPrefix):
		v = &relayControl{}
	default:
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %v", store.ErrCorrupt, err)
	}
	return nil
}

// Options are what New needs besides its parts.
type Options struct {
	// Available gives every tenant's balance less its accrued charges,
	// read together (the pipeline's Available); nil: no account is
	// evaluated.
	Available func() (map[string]billing.Money, error)
	// SwitchGap, if set, replaces the least time between two commands to
	// one relay and the first retry's wait (tests).
	SwitchGap time.Duration
	// Progress, if set, is called at each reconcile pass (at least every
	// second) and after each relay command: a supervisor's sign that the
	// reconciler is not hung (supervise.Loop.Beat). It must be quick and
	// safe for concurrent use (a pass works buses in parallel).
	Progress func()
	// Commanded, if set, is told of each relay command sent: closed for
	// a restore, else a cut-off, and its error (nil: the meter obeyed);
	// a command cut short by the enforcer's stop is not. It must be quick and safe for concurrent use (the gateway's
	// metrics).
	Commanded func(closed bool, err error)
}
