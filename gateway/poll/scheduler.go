package poll

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
)

// Defaults for a Config's zero values.
const (
	DefaultInterval   = 10 * time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Meter is one meter on the bus.
type Meter struct {
	ID      string
	Address byte
	Model   *meter.Model
	// Timeout replaces the bus's reply deadline for this meter (a slow
	// meter on a fast bus); 0 keeps the bus's.
	Timeout time.Duration
	// CTRatio and PTRatio scale the values of a model that reports the
	// secondary side of its transformers (meter.Model.Secondary); 0 means 1.
	CTRatio, PTRatio int64
	// Interval, when shorter than the bus's, is how often this meter is
	// read (a high-risk circuit): it leaves the bus's cycles and is read
	// on its own schedule, between cycles and between the meters of one,
	// each read handed to the Sink at once as a Cycle of its own with Fast
	// set. 0, or no shorter than the bus's, reads it in every cycle.
	Interval time.Duration
}

// Result is the outcome of reading one meter in a cycle.
type Result struct {
	Meter string
	// Start is when the read began; Reading.Time is when it ended. Every
	// value of the reading was held by the meter at some moment between.
	Start   time.Time
	Reading meter.Reading // Meter and Time set; meaningful only when Err is nil
	Err     error
}

// Cycle is one pass over the bus's meters. Meters being backed off are not
// in Results, nor are meters polled faster than the bus (Meter.Interval):
// their reads come in cycles of their own, with Fast set.
//
// A meter's readings reach the Sink in the order they were taken, whichever
// kind of cycle carries them.
type Cycle struct {
	Bus        string
	Start, End time.Time
	Results    []Result
	// Fast marks the reads of meters polled faster than the bus, made
	// when they came due: not a pass over the bus, so its times say
	// nothing of the bus's cycle time.
	Fast bool
	// Partial marks the first part of a cycle, handed over before the
	// cycle ended because its last reading was urgent (Hurrier); the rest
	// follows as the next Cycle, with the same Start.
	Partial bool
}

// Hurrier is implemented by a Sink that wants some readings before their
// cycle ends: after each good reading of a cycle the scheduler asks Hurry,
// and on true hands over the cycle so far at once (Partial) and goes on
// with the rest in another. The pipeline hurries a reading that raises an
// alarm, so that the alarm does not wait for the rest of the bus. A wrong
// answer costs a transaction or some delay, never a reading. Hurry runs on
// the bus goroutine and must be quick.
type Hurrier interface {
	Hurry(r Result) bool
}

// Sink receives each completed cycle on the bus goroutine. It must not keep
// the Cycle's slices after it returns.
type Sink interface {
	Cycle(ctx context.Context, c Cycle)
}

// Config tunes a Scheduler.
type Config struct {
	Bus      string
	Interval time.Duration // target time between two polls of a meter; 0 means DefaultInterval
	// Pause is the quiet time between two requests on the bus. It is never
	// shorter than the line's own silent interval, 3.5 characters at the
	// bus's baud rate and framing (modbus.Config.SilentInterval, 4 ms at
	// 9600 8E1), to which 0 and anything shorter are raised; a Modbus TCP
	// bus needs none. Slow meters may ask for more.
	Pause      time.Duration
	MaxBackoff time.Duration // longest wait between probes of an absent meter; 0 means DefaultMaxBackoff
	// Now stamps readings and cycles (a fake in tests). Waiting and backoff
	// run on the machine's monotonic clock: a wall-clock step must neither
	// stall polling nor make it spin.
	Now func() time.Time
	Log zerolog.Logger
	// Progress, if set, is called on the bus goroutine after each
	// transaction, after each cycle handed to the Sink, and at least every
	// progressEvery while the bus waits: a supervisor's sign that the bus
	// is not hung (supervise.Loop.Beat). It must be quick.
	Progress func()
}

// progressEvery is the longest a bus waits between two calls of
// Config.Progress while it has nothing to do: an idle bus with an hour's
// interval must not look hung.
const progressEvery = time.Second

// MeterStatus is a meter's polling state for status pages.
type MeterStatus struct {
	ID        string
	Online    bool
	NextProbe time.Time // zero unless the meter is being backed off
	Stats     Stats
}

// Bus is what the rest of the gateway asks of a running bus, whatever it
// speaks: a Scheduler on Modbus, or a bus of meters that report over MQTT.
// Enforcement switches relays through it and the status pages read it.
type Bus interface {
	// SwitchRelay switches meterID's relay (closed restores power) and
	// waits for the meter's confirmation; Err of the outcome is also
	// returned as the error.
	SwitchRelay(ctx context.Context, meterID string, closed bool) (RelayOutcome, error)
	// Status is every meter's state on the bus.
	Status() []MeterStatus
}

var _ Bus = (*Scheduler)(nil)

// Scheduler owns one bus. Run is its only goroutine to touch the transport.
type Scheduler struct {
	cfg    Config
	t      *modbus.Transport
	meters []*polled
	fast   []*polled // the meters with an interval of their own, in meters' order
	byID   map[string]*polled
	sink   Sink
	lane   chan *command
	lastTx time.Time // bus goroutine only
	// linkDown is set while the port or converter fails (bus goroutine
	// only): the change is logged, not every cycle it lasts.
	linkDown bool

	mu sync.Mutex // guards the status fields of every polled
}

type polled struct {
	Meter
	plan   meter.Plan
	client *modbus.Client

	// every is the meter's own interval when shorter than the bus's; 0
	// for a meter read in every cycle.
	every time.Duration

	// Bus goroutine only.
	timeouts  int // consecutive timed-out reads
	nextProbe time.Time
	due       time.Time // a fast meter's next read; zero at first: read at once

	// Guarded by Scheduler.mu.
	stats         meterStats
	statusProbeAt time.Time
	failedReads   int // consecutive reads that failed, any error
}

// offlineAfter is how many reads in a row must fail before a meter shows as
// offline: one bad frame on a noisy line is not an outage.
const offlineAfter = 2

// backoffAfter is how many reads in a row must time out before a meter is
// taken for absent and backed off.
const backoffAfter = 2

type command struct {
	ctx    context.Context // the caller's: a command it gave up on is dropped
	meter  *polled
	closed bool
	queued time.Time
	done   chan RelayOutcome
}

// RelayOutcome is what a relay command did.
type RelayOutcome struct {
	State meter.RelayState // read back from the meter after the command
	Wait  time.Duration    // time in the queue: the transaction on the wire, at most
	Took  time.Duration    // the command's own transactions: mode, switch, read back
	Err   error
}

// New returns a Scheduler for the meters on transport t. Each meter's read
// plan is computed once here.
func New(cfg Config, t *modbus.Transport, meters []Meter, sink Sink) (*Scheduler, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// A pause under 3.5 characters would run frames together on the wire:
	// a meter would hear the next request as the tail of its own reply.
	cfg.Pause = max(cfg.Pause, t.Config().SilentInterval())
	s := &Scheduler{cfg: cfg, t: t, sink: sink, byID: make(map[string]*polled), lane: make(chan *command, 64)}
	for _, m := range meters {
		if m.Model == nil {
			return nil, fmt.Errorf("bus %s: meter %s has no model", cfg.Bus, m.ID)
		}
		if _, dup := s.byID[m.ID]; dup {
			return nil, fmt.Errorf("bus %s: meter %s listed twice", cfg.Bus, m.ID)
		}
		p := &polled{Meter: m, plan: meter.NewPlan(m.Model), client: t.Client(m.Address).WithTimeout(m.Timeout)}
		if m.Interval > 0 && m.Interval < cfg.Interval {
			p.every = m.Interval
			s.fast = append(s.fast, p)
		}
		s.meters = append(s.meters, p)
		s.byID[m.ID] = p
	}
	return s, nil
}

// Run polls the bus until ctx is cancelled. It returns nil on cancel.
// Relay commands still queued then are answered with ErrStopped.
func (s *Scheduler) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer s.refuseQueued()
	for {
		began := time.Now()
		c, split := s.cycle(ctx, s.cfg.Now())
		// After a part handed over early, the rest goes even when empty:
		// it is what ends the cycle.
		if len(c.Results) > 0 || split {
			// The cycle's readings are committed even when shutdown began
			// during the cycle: what was read is not thrown away.
			s.sink.Cycle(context.WithoutCancel(ctx), c)
		}
		next := began.Add(s.cfg.Interval)
		for {
			s.progress()
			s.readFast(ctx)
			if ctx.Err() != nil {
				return nil
			}
			now := time.Now()
			if !now.Before(next) {
				break
			}
			wake := next
			if due, ok := s.nextFast(); ok && due.Before(wake) {
				wake = due
			}
			wait := max(wake.Sub(now), 0)
			if s.cfg.Progress != nil {
				wait = min(wait, progressEvery)
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case cmd := <-s.lane:
				s.execute(ctx, cmd)
			case <-timer.C:
			}
		}
	}
}

// cycle reads the bus's meters once and returns what it has not handed
// over yet; split reports that a first part was (Hurrier).
func (s *Scheduler) cycle(ctx context.Context, start time.Time) (c Cycle, split bool) {
	c = Cycle{Bus: s.cfg.Bus, Start: start, Results: make([]Result, 0, len(s.meters))}
	probe := s.dueProbe()
	var linkErr error
	for _, p := range s.meters {
		if ctx.Err() != nil {
			break
		}
		if p.every > 0 {
			continue // read on its own schedule, by readFast
		}
		if p.timeouts >= backoffAfter && p != probe {
			// An absent meter is probed when its backoff has run out, and
			// at most one per cycle, the longest overdue first: eight dead
			// meters cost a cycle one timeout, not eight, and each of them
			// gets its turn.
			continue
		}
		if linkErr == nil {
			// A fast meter due is read before the next of the cycle, so a
			// long cycle does not hold it back; the cycle's meters still get
			// one read each between two of its.
			linkErr = s.readFast(ctx)
		}
		r, ok := s.poll(ctx, p, &linkErr)
		if !ok {
			break
		}
		c.Results = append(c.Results, r)
		if h, ok := s.sink.(Hurrier); ok && r.Err == nil && h.Hurry(r) {
			part := c
			part.End, part.Partial = s.cfg.Now(), true
			s.sink.Cycle(context.WithoutCancel(ctx), part)
			c.Results, split = make([]Result, 0, len(s.meters)-len(part.Results)), true
		}
	}
	c.End = s.cfg.Now()
	return c, split
}

// poll reads meter p, notes the outcome for its backoff and returns it;
// false when ctx ended during the read. *linkErr, once set, fails the read
// without a request; a read that finds the link down sets it.
func (s *Scheduler) poll(ctx context.Context, p *polled, linkErr *error) (Result, bool) {
	start := s.cfg.Now()
	var (
		rd  meter.Reading
		err error
	)
	if *linkErr != nil {
		// The port or the converter is gone: every meter behind it is
		// unreachable, and asking each would cost a connect timeout.
		err = fmt.Errorf("meter %s addr %d: %w", p.ID, p.Address, *linkErr)
	} else {
		rd, err = s.readMeter(ctx, p)
		if ctx.Err() != nil && err != nil {
			return Result{}, false // cancelled mid-read: not a meter fault
		}
		if errors.Is(err, modbus.ErrNoLink) {
			*linkErr = err
			if !s.linkDown {
				s.cfg.Log.Warn().Str("bus", s.cfg.Bus).Err(err).Msg("bus link down; each cycle skips the rest of its meters until it is back")
			}
			s.linkDown = true
		} else if s.linkDown && err == nil {
			s.linkDown = false
			s.cfg.Log.Info().Str("bus", s.cfg.Bus).Str("meter", p.ID).Msg("bus link back")
		}
	}
	s.backoff(p, err)
	return Result{Meter: p.ID, Start: start, Reading: rd, Err: err}, true
}

// readFast reads every meter with an interval of its own that is due and
// hands the reads to the sink at once, as one Fast cycle: an alarm on a
// high-risk circuit is committed and shown without waiting for the rest of
// the bus. Each read is due one interval after the last began; a meter
// being backed off, when its probe is. It returns the link's error when a
// read found the link down.
func (s *Scheduler) readFast(ctx context.Context) error {
	if len(s.fast) == 0 {
		return nil
	}
	var (
		c       Cycle
		linkErr error
	)
	for _, p := range s.fast {
		if ctx.Err() != nil {
			break
		}
		began := time.Now()
		if began.Before(p.due) {
			continue
		}
		if c.Results == nil {
			c = Cycle{Bus: s.cfg.Bus, Start: s.cfg.Now(), Fast: true, Results: make([]Result, 0, len(s.fast))}
		}
		r, ok := s.poll(ctx, p, &linkErr)
		if !ok {
			break
		}
		p.due = began.Add(p.every)
		if p.timeouts >= backoffAfter {
			p.due = p.nextProbe
		}
		c.Results = append(c.Results, r)
	}
	if len(c.Results) > 0 {
		c.End = s.cfg.Now()
		// Committed even when shutdown began during the reads, as a
		// cycle's are.
		s.sink.Cycle(context.WithoutCancel(ctx), c)
	}
	return linkErr
}

// progress tells the supervisor the bus goroutine is moving.
func (s *Scheduler) progress() {
	if s.cfg.Progress != nil {
		s.cfg.Progress()
	}
}

// nextFast returns when the next fast meter is due; false when the bus has
// none.
func (s *Scheduler) nextFast() (time.Time, bool) {
	var next time.Time
	for i, p := range s.fast {
		if i == 0 || p.due.Before(next) {
			next = p.due
		}
	}
	return next, len(s.fast) > 0
}

// dueProbe returns the backed-off meter whose probe is most overdue, or nil.
func (s *Scheduler) dueProbe() *polled {
	var due *polled
	now := time.Now()
	for _, p := range s.meters {
		if p.every > 0 || p.timeouts < backoffAfter || now.Before(p.nextProbe) {
			continue
		}
		if due == nil || p.nextProbe.Before(due.nextProbe) {
			due = p
		}
	}
	return due
}

func (s *Scheduler) readMeter(ctx context.Context, p *polled) (meter.Reading, error) {
	pc := &paced{s: s, p: p, serveLane: true}
	rd, err := meter.Read(ctx, pc, p.plan)
	if err != nil {
		return meter.Reading{}, fmt.Errorf("meter %s addr %d: %w", p.ID, p.Address, err)
	}
	if p.Model.Relay != nil {
		state, err := meter.ReadRelay(ctx, pc, p.Model)
		if err != nil {
			return meter.Reading{}, fmt.Errorf("meter %s addr %d: %w", p.ID, p.Address, err)
		}
		rd.Relay = state
	}
	if p.Model.Secondary {
		if err := rd.ApplyRatios(max(p.CTRatio, 1), max(p.PTRatio, 1)); err != nil {
			return meter.Reading{}, fmt.Errorf("meter %s addr %d: %w", p.ID, p.Address, err)
		}
	}
	rd.Meter = p.ID
	rd.Time = s.cfg.Now()
	return rd, nil
}

// backoff spaces out probes of a meter that does not answer at all, so a
// dead meter costs its bus one timeout per probe, not one per cycle. Any
// reply, even a bad frame or an exception, means the meter is there: it is
// polled as usual again.
func (s *Scheduler) backoff(p *polled, err error) {
	switch {
	case errors.Is(err, modbus.ErrNoLink):
		// The bus's fault, not the meter's: its backoff stays as it was.
	case errors.Is(err, modbus.ErrTimeout):
		p.timeouts++
		if p.timeouts >= backoffAfter { // one miss may be noise: try again next cycle
			// The first wait is one interval, but never under a second: a
			// bus polled back to back would otherwise probe its dead
			// meters as often as its live ones.
			wait := max(s.cfg.Interval, time.Second) << min(p.timeouts-backoffAfter, 16)
			if wait > s.cfg.MaxBackoff || wait <= 0 {
				wait = s.cfg.MaxBackoff
			}
			p.nextProbe = time.Now().Add(wait)
			s.cfg.Log.Debug().Str("bus", s.cfg.Bus).Str("meter", p.ID).Int64("next_probe_in_ms", wait.Milliseconds()).Msg("meter not answering; backing off")
		}
	default:
		p.timeouts = 0
		p.nextProbe = time.Time{}
	}
	s.mu.Lock()
	p.statusProbeAt = time.Time{}
	if p.timeouts >= backoffAfter {
		// Shown on the status page in wall-clock time.
		p.statusProbeAt = s.cfg.Now().Add(time.Until(p.nextProbe))
	}
	if err == nil {
		p.failedReads = 0
	} else {
		p.failedReads++
	}
	s.mu.Unlock()
}

// SwitchRelay queues a relay command on the bus's priority lane and waits
// for its result: it runs before the next poll transaction. closed=true
// restores power. The outcome's State is read back from the meter; Err is
// also returned as the error.
func (s *Scheduler) SwitchRelay(ctx context.Context, meterID string, closed bool) (RelayOutcome, error) {
	p, ok := s.byID[meterID]
	if !ok {
		err := fmt.Errorf("bus %s: no meter %s", s.cfg.Bus, meterID)
		return RelayOutcome{Err: err}, err
	}
	cmd := &command{ctx: ctx, meter: p, closed: closed, queued: time.Now(), done: make(chan RelayOutcome, 1)}
	select {
	case s.lane <- cmd:
	case <-ctx.Done():
		return RelayOutcome{Err: ctx.Err()}, ctx.Err()
	}
	select {
	case out := <-cmd.done:
		return out, out.Err
	case <-ctx.Done():
		return RelayOutcome{Err: ctx.Err()}, ctx.Err()
	}
}

func (s *Scheduler) execute(ctx context.Context, cmd *command) {
	if err := cmd.ctx.Err(); err != nil {
		// The caller stopped waiting (and may have reported a failure or
		// queued the opposite command): switching now would surprise it.
		cmd.done <- RelayOutcome{Err: fmt.Errorf("relay command for %s dropped: %w", cmd.meter.ID, err)}
		return
	}
	// The command ends with whichever comes first: the bus stopping or the
	// caller's deadline.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(cmd.ctx, cancel)
	defer stop()
	start := time.Now()
	pc := &paced{s: s, p: cmd.meter, serveLane: false}
	state, err := meter.SwitchRelay(ctx, pc, cmd.meter.Model, cmd.closed)
	if err != nil {
		err = fmt.Errorf("meter %s addr %d: %w", cmd.meter.ID, cmd.meter.Address, err)
	}
	out := RelayOutcome{State: state, Wait: start.Sub(cmd.queued), Took: time.Since(start), Err: err}
	// Debug: the caller (enforcement) logs the command with why it was sent.
	s.cfg.Log.Debug().Str("bus", s.cfg.Bus).Str("meter", cmd.meter.ID).Bool("close", cmd.closed).
		Stringer("relay", state).Int64("wait_ms", out.Wait.Milliseconds()).Int64("took_ms", out.Took.Milliseconds()).AnErr("error", err).Msg("relay command")
	cmd.done <- out
}

// refuseQueued answers every queued command with ErrStopped, so no caller
// waits on a bus that will not serve it.
func (s *Scheduler) refuseQueued() {
	for {
		select {
		case cmd := <-s.lane:
			cmd.done <- RelayOutcome{Err: fmt.Errorf("relay command for %s: %w", cmd.meter.ID, ErrStopped)}
		default:
			return
		}
	}
}

// serveLane runs queued relay commands before the next poll transaction.
func (s *Scheduler) serveLane(ctx context.Context) {
	for {
		select {
		case cmd := <-s.lane:
			s.execute(ctx, cmd)
		default:
			return
		}
	}
}

// Status returns every meter's polling state.
func (s *Scheduler) Status() []MeterStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MeterStatus, 0, len(s.meters))
	for _, p := range s.meters {
		st := p.stats.snapshot()
		out = append(out, MeterStatus{
			ID:        p.ID,
			Online:    !st.LastSeen.IsZero() && p.failedReads < offlineAfter,
			NextProbe: p.statusProbeAt,
			Stats:     st,
		})
	}
	return out
}

// paced runs one meter's transactions with the bus's pause between
// requests, serving the relay lane first when allowed, and records stats.
// It implements meter.RegisterReader and meter.CoilSwitcher.
type paced struct {
	s         *Scheduler
	p         *polled
	serveLane bool
}

func (pc *paced) tx(ctx context.Context, op func() error) error {
	s := pc.s
	if err := pc.pause(ctx); err != nil {
		return err
	}
	start := time.Now()
	retries := s.t.Retries() // the bus goroutine is the transport's only user
	err := op()
	s.lastTx = time.Now()
	s.progress()
	if ctx.Err() != nil && err != nil {
		return err
	}
	s.mu.Lock()
	pc.p.stats.record(s.lastTx.Sub(start), modbus.ErrorKind(err), err, s.cfg.Now())
	if n := s.t.Retries() - retries; n > 0 {
		// The first try went unanswered: shown beside the errors even when
		// the second try was answered, or a meter losing half its replies
		// would look clean.
		pc.p.stats.note(retriedKind, int64(n))
	}
	s.mu.Unlock()
	return err
}

// pause keeps the bus quiet for the configured pause since the last
// transaction. A poll serves relay commands first, and also while it
// waits, so a command never waits for a pause and a poll transaction both.
func (pc *paced) pause(ctx context.Context) error {
	s := pc.s
	for {
		if pc.serveLane {
			s.serveLane(ctx)
		}
		wait := s.cfg.Pause - time.Since(s.lastTx)
		if wait <= 0 || s.lastTx.IsZero() {
			return nil
		}
		var lane chan *command // nil: never ready
		if pc.serveLane {
			lane = s.lane
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case cmd := <-lane:
			t.Stop()
			s.execute(ctx, cmd)
		case <-t.C:
			return nil
		}
	}
}

func (pc *paced) ReadHoldingRegisters(ctx context.Context, address, quantity uint16) (b []byte, err error) {
	err = pc.tx(ctx, func() error { b, err = pc.p.client.ReadHoldingRegisters(ctx, address, quantity); return err })
	return b, err
}

func (pc *paced) ReadInputRegisters(ctx context.Context, address, quantity uint16) (b []byte, err error) {
	err = pc.tx(ctx, func() error { b, err = pc.p.client.ReadInputRegisters(ctx, address, quantity); return err })
	return b, err
}

func (pc *paced) ReadCoils(ctx context.Context, address, quantity uint16) (b []byte, err error) {
	err = pc.tx(ctx, func() error { b, err = pc.p.client.ReadCoils(ctx, address, quantity); return err })
	return b, err
}

func (pc *paced) WriteSingleCoil(ctx context.Context, address uint16, on bool) error {
	return pc.tx(ctx, func() error { return pc.p.client.WriteSingleCoil(ctx, address, on) })
}

func (pc *paced) WriteMultipleRegisters(ctx context.Context, address uint16, values []uint16) error {
	return pc.tx(ctx, func() error { return pc.p.client.WriteMultipleRegisters(ctx, address, values) })
}
