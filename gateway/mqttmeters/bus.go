package mqttmeters

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/mqttlink"
	"mallgrid/gateway/poll"
)

// Link is what a Bus needs of its MQTT link (mqttlink.Link).
type Link interface {
	Messages() <-chan mqttlink.Message
	Publish(ctx context.Context, topic string, payload []byte) error
}

// Meter is one meter on the bus.
type Meter struct {
	ID     string // as configured
	Device string // the meter's own 13-character id
	Model  compere.Model
	// Output is the relay output that switches its circuit: 1 (do1), or 2
	// (do2) on a KPM37. 0 means 1.
	Output int
	// Relay is its relay's state as last known (the last reading stored
	// before this start): a KPM33B never reports it, and a KPM31 only on
	// a change, so without it every restart would leave it unknown until
	// a command.
	Relay meter.RelayState
}

// Defaults for a Config's zero values.
const (
	DefaultGather = 200 * time.Millisecond
	DefaultUpload = 30 * time.Second
	// DefaultEnergyUpload is MQTT_ENY_NOW's interval: the counters that
	// bill, and so cut off and restore, come that often.
	DefaultEnergyUpload = time.Minute
	DefaultRelayWait    = 10 * time.Second
	DefaultRelayTries   = 3
	DefaultSettle       = 2 * time.Second
	// ClockSlack is how far a meter's clock may be off before it is set.
	ClockSlack = time.Minute
	// clockEvery is how often a meter's clock is set at most when it is
	// off, and at least when it is not.
	clockEvery = time.Hour
	clockDaily = 24 * time.Hour
	// silentEvery is how often a silent meter gets a failed read.
	silentEvery = time.Second
	// maxGathered bounds the readings waiting for a sink that is slow
	// (200 s of 2,000 meters' messages): past it the bus waits for the
	// sink, and the meters and the broker hold the rest, unacknowledged.
	maxGathered = 20000
)

// Config tunes a Bus.
type Config struct {
	Bus string
	// Location is the zone the meters' clocks are set in (the site's).
	Location *time.Location
	// Now stamps readings; it is also the clock the meters are set to.
	Now func() time.Time
	Log zerolog.Logger
	// Gather is how long readings gather before they go to the Sink as
	// one cycle; 0 means DefaultGather.
	Gather time.Duration
	// Upload is the real-time upload interval the meters are set to
	// (compere.RealTimeIntervals); a meter silent for three of them is
	// absent. 0 means DefaultUpload.
	Upload time.Duration
	// EnergyUpload is the counters' (MQTT_ENY_NOW) upload interval the
	// meters are set to (compere.EnergyIntervals): a meter left at an
	// hour or a day would be billed, and cut off, that late. 0 means
	// DefaultEnergyUpload.
	EnergyUpload time.Duration
	// RelayWait bounds the wait for a relay command's reply; RelayTries is
	// how often it is sent before it fails. 0 means the defaults.
	RelayWait  time.Duration
	RelayTries int
	// Settle is how long a meter that reports its relay's changes has,
	// after confirming a command, to report the relay otherwise: a relay
	// that does not hold (a contactor welded, a tenant's own switch) is a
	// failed command. 0 means DefaultSettle.
	Settle time.Duration
	// Rand makes operation ids; nil means crypto/rand.
	Rand io.Reader
	// Progress, if set, is called at each message and each Gather tick
	// while no cycle is in the Sink, and after each cycle the Sink took: a
	// supervisor's sign that the bus is not hung (supervise.Loop.Beat). A
	// Sink that never returns (a stuck commit) stops it, though Run's
	// reader goes on. It must be quick and safe for concurrent use.
	Progress func()
}

// ErrSilent is the failed read of a meter that has sent nothing for three
// upload intervals.
var ErrSilent = errors.New("meter silent")

// Bus runs one compere-mqtt bus. Its methods are safe for concurrent use;
// Run is its only goroutine to read the link.
type Bus struct {
	cfg      Config
	link     Link
	sink     poll.Sink
	byID     map[string]*meterState
	byDevice map[string]*meterState
	order    []*meterState
	started  time.Time
	joiner   compere.Joiner // Run's goroutine only

	mu sync.Mutex // guards every meterState's fields, waiting and inFlight
	// waiting are the commands sent whose reply is awaited, by operation
	// id: each gets the reply of its own meter on its channel.
	waiting map[string]waiter
	// inFlight counts the upkeep commands in flight (each meter's own
	// is its upkeeping).
	inFlight int
	wg       sync.WaitGroup // the upkeep goroutines
}

// waiter is a command awaiting its reply: from device, on ch.
type waiter struct {
	device string
	ch     chan *compere.Reply
}

type meterState struct {
	Meter
	relay      meter.RelayState // as last reported (TELEIND, a command's reply)
	lastSeen   time.Time        // last message of any kind; zero: none this run
	lastSilent time.Time        // last failed read given for its silence
	messages   int64
	errors     map[string]int64 // by kind: bad_message, zero_frame, lost_packets, clock …
	lastError  string
	upload     bool      // both upload intervals were set and confirmed this run
	clockSet   time.Time // when its clock was last set (confirmed)
	clockTry   time.Time // when a clock setting was last sent
	uploadTry  time.Time
	upkeeping  bool // an upkeep command of it is in flight
	// reportsDO: it has sent MQTT_TELEIND this run, so it tells its
	// relay's changes, and a command's effect can be checked by them.
	reportsDO bool
	// signal receives its latest report while a confirmed relay command
	// watches for one (contradicted).
	signal chan meter.RelayState
	// lastOprID is the operation id of the last relay command sent to it.
	lastOprID string
	silent    int // failed reads given for its silence since it was last heard
	// lastRT is when its last MQTT_RT_DATA came, rtEvery the time from the
	// one before: how often it really uploads.
	lastRT  time.Time
	rtEvery time.Duration
}

// New returns the Bus of meters on link, handing readings to sink.
func New(cfg Config, link Link, meters []Meter, sink poll.Sink) (*Bus, error) {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Gather <= 0 {
		cfg.Gather = DefaultGather
	}
	if cfg.Upload <= 0 {
		cfg.Upload = DefaultUpload
	}
	if cfg.EnergyUpload <= 0 {
		cfg.EnergyUpload = DefaultEnergyUpload
	}
	if cfg.RelayWait <= 0 {
		cfg.RelayWait = DefaultRelayWait
	}
	if cfg.RelayTries <= 0 {
		cfg.RelayTries = DefaultRelayTries
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Progress == nil {
		cfg.Progress = func() {}
	}
	b := &Bus{cfg: cfg, link: link, sink: sink, byID: make(map[string]*meterState), byDevice: make(map[string]*meterState),
		waiting: make(map[string]waiter)}
	for _, m := range meters {
		if len(m.Device) != compere.IDLen {
			return nil, fmt.Errorf("bus %s: meter %s: device id %q is not %d characters", cfg.Bus, m.ID, m.Device, compere.IDLen)
		}
		if b.byID[m.ID] != nil || b.byDevice[m.Device] != nil {
			return nil, fmt.Errorf("bus %s: meter %s (%s) named twice", cfg.Bus, m.ID, m.Device)
		}
		if m.Output == 0 {
			m.Output = 1
		}
		if m.Output < 1 || m.Output > m.Model.Outputs {
			return nil, fmt.Errorf("bus %s: meter %s: a %s has no output do%d", cfg.Bus, m.ID, m.Model.Name, m.Output)
		}
		st := &meterState{Meter: m, relay: m.Relay}
		b.byID[m.ID], b.byDevice[m.Device] = st, st
		b.order = append(b.order, st)
	}
	return b, nil
}

// Run reads the link until ctx ends, and returns nil then, or an error
// when the link's messages end.
func (b *Bus) Run(ctx context.Context) error {
	b.started = b.cfg.Now()
	cycles := make(chan poll.Cycle)
	var sinking atomic.Bool // a cycle is in the Sink: only its return is progress
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the sink, in order, one cycle at a time
		defer wg.Done()
		for c := range cycles {
			sinking.Store(true)
			b.sink.Cycle(ctx, c)
			sinking.Store(false)
			b.cfg.Progress()
		}
	}()
	progress := func() {
		if !sinking.Load() {
			b.cfg.Progress()
		}
	}
	defer wg.Wait()
	defer close(cycles)
	defer b.wg.Wait() // the upkeep commands end with ctx

	tick := time.NewTicker(b.cfg.Gather)
	defer tick.Stop()
	var (
		gathered []poll.Result
		start    time.Time
	)
	flush := func(block bool) {
		if len(gathered) == 0 {
			return
		}
		// Fast: the messages of a moment, not a pass over the bus, so its
		// times say nothing of a cycle's length.
		c := poll.Cycle{Bus: b.cfg.Bus, Start: start, End: b.cfg.Now(), Results: gathered, Fast: true}
		if block {
			select {
			case cycles <- c:
			case <-ctx.Done():
				return
			}
		} else {
			select {
			case cycles <- c:
			default:
				return // the sink is busy: keep gathering
			}
		}
		gathered = nil
	}
	msgs := b.link.Messages()
	for {
		select {
		case <-ctx.Done():
			// The readings gathered were acknowledged to their meters:
			// they go to the sink, which is still reading. Messages not
			// taken are not acknowledged: their senders send them again.
			if len(gathered) > 0 {
				cycles <- poll.Cycle{Bus: b.cfg.Bus, Start: start, End: b.cfg.Now(), Results: gathered, Fast: true}
			}
			return nil
		case m, ok := <-msgs:
			if !ok {
				flush(true)
				return fmt.Errorf("bus %s: the link's messages ended", b.cfg.Bus)
			}
			if len(gathered) == 0 {
				start = b.cfg.Now()
			}
			progress()
			gathered = b.handle(ctx, m, gathered)
			// Taken: what it gave goes to the sink before Run returns,
			// so its sender may forget it. A part of a split message
			// is held by the joiner until its last part: a stop in
			// between loses that one message (its values, or counters
			// the next ENY_NOW carries again), not energy.
			m.Ack()
			if len(gathered) >= maxGathered {
				flush(true)
			}
		case <-tick.C:
			progress()
			now := b.cfg.Now()
			if len(gathered) == 0 {
				start = now
			}
			gathered = b.silent(now, gathered)
			flush(false)
		}
	}
}

// handle takes one message: a reading goes into gathered, a report or a
// reply updates the meter's state.
func (b *Bus) handle(ctx context.Context, m mqttlink.Message, gathered []poll.Result) []poll.Result {
	now := b.cfg.Now()
	p, err := compere.Parse(m.Topic, m.Payload)
	if err != nil {
		b.cfg.Log.Debug().Str("bus", b.cfg.Bus).Str("topic", m.Topic).Err(err).Msg("mqtt message not understood")
		return gathered
	}
	st := b.byDevice[p.ID]
	if st == nil {
		return gathered // the link lets only the bus's meters through; a broker of the mall's may not
	}
	b.mu.Lock()
	st.lastSeen, st.silent = now, 0
	st.messages++
	b.mu.Unlock()
	full, ok, lost := b.joiner.Add(p)
	if lost != nil {
		b.note(st, "lost_packets", lost)
	}
	if !ok {
		return gathered
	}
	msg, err := compere.Decode(full, b.cfg.Location)
	if err != nil {
		b.note(st, "bad_message", err)
		return gathered
	}
	switch x := msg.(type) {
	case *compere.RTData:
		b.mu.Lock()
		if !st.lastRT.IsZero() {
			st.rtEvery = now.Sub(st.lastRT)
		}
		st.lastRT = now
		b.mu.Unlock()
		if x.ZeroFrame {
			b.note(st, "zero_frame", errors.New("all-zero real-time values dropped"))
			break
		}
		gathered = append(gathered, b.result(st, compere.NewReading(x, nil), now))
		b.upkeep(ctx, st, x.Header, now)
	case *compere.Energy:
		if x.Topic == compere.TopicDayData {
			break // counters frozen at midnight: MQTT_ENY_NOW carries them live
		}
		if len(x.Bad) > 0 {
			b.note(st, "bad_message", fmt.Errorf("counters not decimal: %v", x.Bad))
		}
		gathered = append(gathered, b.result(st, compere.NewReading(nil, x), now))
		b.upkeep(ctx, st, x.Header, now)
	case *compere.Signal:
		state := x.Output(st.Output)
		b.mu.Lock()
		st.relay, st.reportsDO = state, true
		sig := st.signal
		b.mu.Unlock()
		if sig != nil {
			// The latest report only: one not yet taken is replaced.
			select {
			case <-sig:
			default:
			}
			select {
			case sig <- state:
			default:
			}
		}
	case *compere.ControlReply:
		if !b.answer(st, &x.Reply) && x.Done() && x.Output == st.Output {
			// No one waits: a command that was given up on (the meter
			// offline, its session kept it) has been carried out after
			// all. Its state is the relay's now — if it was the last one
			// sent; a redelivered reply to an older one says nothing.
			b.mu.Lock()
			latest := x.OprID == st.lastOprID
			if latest {
				st.relay = meter.RelayOpen
				if x.Closed {
					st.relay = meter.RelayClosed
				}
			}
			b.mu.Unlock()
			if latest {
				b.cfg.Log.Info().Str("bus", b.cfg.Bus).Str("meter", st.ID).Bool("closed", x.Closed).Msg("late relay confirmation")
			}
		}
	case *compere.Reply:
		b.answer(st, x)
	}
	return gathered
}

// result is the poll.Result of reading r of st, received at now.
func (b *Bus) result(st *meterState, r compere.Reading, now time.Time) poll.Result {
	rd := r.Reading
	rd.Meter, rd.Time = st.ID, now
	b.mu.Lock()
	rd.Relay = st.relay
	b.mu.Unlock()
	if r.ClockErr != nil {
		b.note(st, "clock", r.ClockErr)
	}
	return poll.Result{Meter: st.ID, Start: now, Reading: rd}
}

// silent gives a failed read to each meter silent for three upload
// intervals (since the start, for one never heard), once a second.
func (b *Bus) silent(now time.Time, gathered []poll.Result) []poll.Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.order {
		heard := st.lastSeen
		if heard.IsZero() {
			heard = b.started
		}
		// A failed read a second until the health tracker has enough to
		// take it offline (three), then one an upload interval: each is a
		// commit of the meter's state.
		every := silentEvery
		if st.silent >= 3 {
			every = b.cfg.Upload
		}
		if now.Sub(heard) < b.silence(st) || now.Sub(st.lastSilent) < every {
			continue
		}
		st.lastSilent = now
		st.silent++
		err := fmt.Errorf("%w for %s", ErrSilent, now.Sub(heard).Round(time.Second))
		gathered = append(gathered, poll.Result{Meter: st.ID, Start: now, Err: err, Reading: meter.Reading{Meter: st.ID, Time: now}})
	}
	return gathered
}

// silence is how long st may say nothing before it is absent: three of
// its upload intervals — the one it was set to, or the one it keeps if
// longer (a meter that refused the setting). b.mu held.
func (b *Bus) silence(st *meterState) time.Duration {
	return 3 * max(b.cfg.Upload, st.rtEvery)
}

// note counts a problem of st's messages by kind and logs it at debug:
// each is a meter's habit, shown in its statistics, not an incident.
func (b *Bus) note(st *meterState, kind string, err error) {
	b.mu.Lock()
	if st.errors == nil {
		st.errors = make(map[string]int64)
	}
	st.errors[kind]++
	st.lastError = err.Error()
	b.mu.Unlock()
	b.cfg.Log.Debug().Str("bus", b.cfg.Bus).Str("meter", st.ID).Str("kind", kind).Err(err).Msg("mqtt meter message")
}

// answer hands a reply from st to the command waiting for it, and reports
// whether one was. A reply naming another meter's command is no answer:
// every meter of a bus shares its credentials, and one could otherwise
// confirm a command it did not carry out.
func (b *Bus) answer(st *meterState, r *compere.Reply) bool {
	b.mu.Lock()
	w, ok := b.waiting[r.OprID]
	if ok && w.device == st.Device {
		delete(b.waiting, r.OprID)
	}
	b.mu.Unlock()
	switch {
	case !ok:
		return false
	case w.device != st.Device:
		b.note(st, "foreign_reply", fmt.Errorf("a reply to %s's command %s", w.device, r.OprID))
		return false
	}
	w.ch <- r // buffered: one reply a command
	return true
}

// send publishes cmd to st under oprid and waits up to wait for a reply
// on w, which may be that of an earlier command of the same call (a meter
// slower than one try's share answers during the next); every oprid it
// registers stays registered until the caller's release.
func (b *Bus) send(ctx context.Context, w waiter, cmd compere.Command, oprid string, wait time.Duration) (*compere.Reply, error) {
	b.mu.Lock()
	b.waiting[oprid] = w
	b.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := b.link.Publish(wctx, cmd.Topic, cmd.Payload); err != nil {
		return nil, err
	}
	select {
	case r := <-w.ch:
		return r, nil
	case <-wctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("no reply to %s within %s", cmd.Topic, wait.Round(time.Millisecond))
	}
}

// release forgets the commands oprids await.
func (b *Bus) release(oprids []string) {
	b.mu.Lock()
	for _, id := range oprids {
		delete(b.waiting, id)
	}
	b.mu.Unlock()
}

// SwitchRelay implements poll.Bus: it switches the meter's relay (its
// Output; closed restores power) and waits for the meter's confirmation,
// trying again on a refusal, on silence, or when the meter — one that
// reports its relay's changes — last reports the other state within
// Settle of confirming. The tries share ctx's deadline (enforcement's),
// each waiting at most RelayWait, and a confirmation of any of them counts.
// A command that fails leaves the relay's state unknown: the meter may
// carry it out later (its session keeps it), and enforcement commands the
// desired state of a relay it does not know.
func (b *Bus) SwitchRelay(ctx context.Context, meterID string, closed bool) (poll.RelayOutcome, error) {
	st := b.byID[meterID]
	if st == nil {
		err := fmt.Errorf("bus %s: no meter %s", b.cfg.Bus, meterID)
		return poll.RelayOutcome{Err: err}, err
	}
	want := meter.RelayOpen
	if closed {
		want = meter.RelayClosed
	}
	began := time.Now()
	w := waiter{device: st.Device, ch: make(chan *compere.Reply, b.cfg.RelayTries)}
	var (
		last   error
		tries  int
		oprids []string
	)
	defer func() { b.release(oprids) }()
	for tries < b.cfg.RelayTries && ctx.Err() == nil {
		tries++
		wait := b.cfg.RelayWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)/time.Duration(b.cfg.RelayTries-tries+1))
		}
		oprid, err := compere.NewOprID(b.cfg.Rand)
		if err != nil {
			return poll.RelayOutcome{Err: err}, err
		}
		cmd, err := st.Model.RelayCommand(st.Device, st.Output, closed, oprid)
		if err != nil {
			return poll.RelayOutcome{Err: err}, err
		}
		oprids = append(oprids, oprid)
		b.mu.Lock()
		st.lastOprID = oprid
		reports := st.reportsDO
		b.mu.Unlock()
		r, err := b.send(ctx, w, cmd, oprid, wait)
		switch {
		case err != nil:
			last = err
		case !r.Done():
			last = fmt.Errorf("meter %s refused the relay command (code %s %s)", st.Device, r.Code, r.Msg)
		case reports && b.contradicted(ctx, st, want):
			last = fmt.Errorf("meter %s confirmed the relay %s, then reported it otherwise", st.Device, want)
		default:
			b.mu.Lock()
			st.relay = want
			b.mu.Unlock()
			return poll.RelayOutcome{State: want, Took: time.Since(began)}, nil
		}
		b.cfg.Log.Info().Str("bus", b.cfg.Bus).Str("meter", meterID).Int("try", tries).Err(last).Msg("relay command not confirmed")
	}
	b.mu.Lock()
	st.relay = meter.RelayUnknown
	b.mu.Unlock()
	if last == nil {
		last = ctx.Err()
	}
	err := fmt.Errorf("bus %s: meter %s: relay not switched after %d tries: %w", b.cfg.Bus, meterID, tries, last)
	return poll.RelayOutcome{State: meter.RelayUnknown, Took: time.Since(began), Err: err}, err
}

// contradicted watches st's relay reports for up to Settle after a
// confirmation: false at once on one that says want, and at the end true
// when the last one said otherwise (none: the confirmation stands).
// Reports from before the confirmation are not watched.
func (b *Bus) contradicted(ctx context.Context, st *meterState, want meter.RelayState) bool {
	sig := make(chan meter.RelayState, 1)
	b.mu.Lock()
	st.signal = sig
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		st.signal = nil
		b.mu.Unlock()
	}()
	t := time.NewTimer(b.cfg.Settle)
	defer t.Stop()
	lastSeen := want
	for {
		select {
		case s := <-sig:
			if s == want {
				return false
			}
			lastSeen = s
		case <-t.C:
			return lastSeen != want
		case <-ctx.Done():
			return lastSeen != want
		}
	}
}

// Status implements poll.Bus: a meter is online while it has been heard
// within three upload intervals.
func (b *Bus) Status() []poll.MeterStatus {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]poll.MeterStatus, 0, len(b.order))
	for _, st := range b.order {
		s := poll.MeterStatus{ID: st.ID, Online: !st.lastSeen.IsZero() && now.Sub(st.lastSeen) < b.silence(st),
			Stats: poll.Stats{Requests: st.messages, LastSeen: st.lastSeen, LastError: st.lastError}}
		if len(st.errors) > 0 {
			s.Stats.Errors = make(map[string]int64, len(st.errors))
			for k, v := range st.errors {
				s.Stats.Errors[k] = v
			}
		}
		out = append(out, s)
	}
	return out
}

var _ poll.Bus = (*Bus)(nil)
