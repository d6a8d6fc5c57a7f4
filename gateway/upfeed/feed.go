package upfeed

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// Defaults of a Feed's timing.
const (
	// DefaultPeriod is how often a round runs without a Wake.
	DefaultPeriod = 2 * time.Second
	// DefaultSettle is how long after a quarter hour ends its interval
	// message is made: a bus cycle that read the meters just before the
	// end commits a little after it, and a poll of 2,000 meters on slow
	// buses takes about a minute.
	DefaultSettle = 2 * time.Minute
	// MaxSteps bounds the write transactions of a round (one message, or
	// one quarter hour, each), so that snapshots and heartbeats are made
	// while a backlog is worked off, and ctx is looked at between them.
	MaxSteps = 32
	// MaxHold is how long past its end and Settle a quarter hour waits for
	// a meter read in it to be read after it (interval): a meter back
	// within the hour has its energy spread into the quarter before the
	// quarter goes up; one gone longer is sent without (final false).
	MaxHold = time.Hour
	// BacklogAge is the age of the oldest message waiting past which the
	// outbox is a backlog: nobody has heard the gateway for that long, so
	// heartbeats are made every BacklogHeartbeat only (each is some 400
	// bytes on disk that says nothing new while nobody hears it).
	BacklogAge       = 10 * time.Minute
	BacklogHeartbeat = 15 * time.Minute
	// BacklogAlarm is the age of the oldest message waiting past which a
	// store.KindUplinkBacklog event raises an alarm; it is cleared once
	// the oldest waiting is younger than BacklogAge again.
	BacklogAlarm = time.Hour
)

// Names of the cursors in the database (store.UplinkCursor). Each holds an
// 8-byte big-endian number: the last event id and entry id sent, the start
// (Unix seconds) of the next quarter hour to send and of the last
// quarter hour snapshotted (accounts; meter_health under "snapshot", its
// name from when one cursor held both), the minute (Unix seconds) of the last heartbeat.
const (
	CursorEvents    = "events"
	CursorLedger    = "ledger"
	CursorInterval  = "interval"
	CursorAccounts  = "accounts"
	CursorSnapshot  = "snapshot"
	CursorHeartbeat = "heartbeat"
	// CursorBacklog holds when the backlog alarm was raised (Unix
	// seconds); 0 while none is open.
	CursorBacklog = "backlog"
)

// KindClockBehind is the kind of the event stored when the interval
// cursor is ahead of the clock by more than a quarter hour: the clock
// was ahead (a quarter hour was sent before its time) and was set back.
// The cursor is rewound to the present quarter; the quarters from there
// go up again as they close, each superseding the one sent before
// (consumers key quarter hours by their start).
const KindClockBehind = "uplink_clock_behind"

// Feed makes the uplink outbox's messages from the database; see the
// package doc. Set the fields, then call Run once.
type Feed struct {
	DB     *store.DB
	SiteID string
	// Config gives the meters (interval messages) and Location, the
	// site's zone every time is written in (UTC when nil).
	Config *config.Config
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Accounts, Meters and Buses give the present state for the
	// snapshots and the heartbeat; nil: none.
	// Accounts returns an error when the accounts cannot be read: the
	// accounts snapshot is then not made (never an empty one) and is
	// tried again at the next round.
	Accounts func() ([]Account, error)
	Meters   func() []MeterHealth
	Buses    func() []Bus
	// Version is the gateway's version, sent in every heartbeat.
	Version string
	Log     zerolog.Logger
	// Period is the time between rounds (DefaultPeriod when 0); Settle
	// how long after its end a quarter hour is sent (DefaultSettle when 0).
	Period time.Duration
	Settle time.Duration

	once    sync.Once
	wake    chan struct{}
	started time.Time
	// cursorsSet: startCursors found or set every cursor; later rounds
	// need not look again.
	cursorsSet bool
}

func (f *Feed) init() {
	f.once.Do(func() { f.wake = make(chan struct{}, 1) })
}

// Wake asks for a round now; it never blocks, and wakes given while a
// round runs make one more round.
func (f *Feed) Wake() {
	f.init()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *Feed) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *Feed) loc() *time.Location {
	if f.Config == nil || f.Config.Location == nil {
		return time.UTC
	}
	return f.Config.Location
}

func (f *Feed) settle() time.Duration {
	if f.Settle <= 0 {
		return DefaultSettle
	}
	return f.Settle
}

// Run makes rounds until ctx is cancelled, then returns nil. A round that
// fails (the database full, broken) is logged and tried again at the next
// period: the cursors did not move, so nothing is lost. It starts no
// goroutine.
func (f *Feed) Run(ctx context.Context) error {
	f.init()
	period := f.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	f.started = f.now()
	t := time.NewTimer(0)
	defer t.Stop()
	// A failure that lasts (a full disk) is logged when it starts, when it
	// changes and once a minute, not every period.
	var lastErr string
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-f.wake:
		}
		more, err := f.Round(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if now := f.now(); err.Error() != lastErr || now.Sub(lastLog) >= time.Minute {
				f.Log.Error().Err(err).Msg("uplink feed round failed; tried again at the next")
				lastErr, lastLog = err.Error(), now
			}
		case err == nil && lastErr != "":
			f.Log.Info().Msg("uplink feed rounds succeed again")
			lastErr = ""
		}
		next := period
		if more {
			next = 0 // a backlog: go on, between looks at ctx
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// Round makes what is due now: it sets the cursors never set, then works
// off each source in steps, and makes the snapshots and the heartbeat if
// due — every round, also one that stopped at MaxSteps with work left
// (more is true then) and one in which a source failed. Each source runs
// on its own: one that cannot be read (a damaged record, a provider's
// error) stops only itself, is named in the heartbeat's stalled, and its
// error is in the round's (one per source, joined). Run calls it; tests
// call it with a fake clock.
func (f *Feed) Round(ctx context.Context) (more bool, err error) {
	if f.DB == nil {
		return false, errors.New("upfeed: no database")
	}
	if f.started.IsZero() {
		f.started = f.now()
	}
	now := f.now()
	if !f.cursorsSet {
		// A cursor that cannot be read is left as it is: its source
		// fails on it below, and is named; the others start.
		if f.startCursors(now) == nil {
			f.cursorsSet = true
		}
	}
	errs := make(map[string]error)
	if err := f.backlog(now); err != nil {
		errs[KindHeartbeat] = err
	}
	type source struct {
		name string
		step func(time.Time) (bool, error)
	}
	pending := []source{{KindEvent, f.events}, {KindLedger, f.ledger}, {KindInterval, f.interval}}
	for n := 0; len(pending) > 0 && !more; {
		var again []source
		for _, s := range pending {
			if ctx.Err() != nil {
				return false, nil
			}
			if n >= MaxSteps {
				more = true
				break
			}
			n++
			m, err := s.step(now)
			if err != nil {
				errs[s.name] = err
				continue
			}
			if m {
				again = append(again, s)
			}
		}
		pending = again
	}
	f.snapshot(now, errs)
	var stalled []string
	for _, name := range sourceOrder {
		if errs[name] != nil {
			stalled = append(stalled, name)
		}
	}
	if err := f.heartbeat(now, stalled); err != nil {
		errs[KindHeartbeat] = errors.Join(errs[KindHeartbeat], err)
	}
	var all []error
	for _, name := range append(sourceOrder, KindHeartbeat) {
		if errs[name] != nil {
			all = append(all, fmt.Errorf("uplink %s: %w", name, errs[name]))
		}
	}
	return more, errors.Join(all...)
}

// sourceOrder names the sources a heartbeat may call stalled, in the order
// a round runs them.
var sourceOrder = []string{KindEvent, KindLedger, KindInterval, KindAccounts, KindMeterHealth}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// cursor reads a cursor; ok false when it was never set.
func (f *Feed) cursor(name string) (n uint64, ok bool, err error) {
	v, err := f.DB.UplinkCursor(name)
	if err != nil || v == nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("cursor %s is %d bytes, want 8: %w", name, len(v), store.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// startCursors sets the cursors never set to the present (package doc,
// First start), all in one transaction.
func (f *Feed) startCursors(now time.Time) error {
	set := make(map[string][]byte)
	var bad []error
	for _, name := range []string{CursorEvents, CursorLedger, CursorInterval, CursorAccounts, CursorSnapshot, CursorHeartbeat} {
		_, ok, err := f.cursor(name)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		if ok {
			continue
		}
		switch name {
		case CursorEvents:
			last, err := f.DB.LastEvents(1)
			if err != nil {
				return err
			}
			var id uint64
			if len(last) == 1 {
				id = last[0].ID
			}
			set[name] = u64(id)
		case CursorLedger:
			accts, err := f.DB.Accounts()
			if err != nil {
				return err
			}
			var id uint64
			for _, a := range accts {
				id = max(id, a.LastEntry)
			}
			set[name] = u64(id)
		case CursorInterval:
			set[name] = u64(uint64(store.IntervalStart(now).Unix()))
		case CursorAccounts, CursorSnapshot, CursorHeartbeat:
			// Due at once: the group hears of a gateway's start.
			set[name] = u64(0)
		}
	}
	if len(set) > 0 {
		if _, err := f.DB.EnqueueUplink(nil, set); err != nil {
			return err
		}
	}
	return errors.Join(bad...)
}

func (f *Feed) message(kind string, at time.Time, body any) (store.UplinkMessage, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return store.UplinkMessage{}, err
	}
	return store.UplinkMessage{Kind: kind, Time: at.In(f.loc()), Data: data}, nil
}

// events sends the next batch of events; more when the batch was full.
func (f *Feed) events(now time.Time) (bool, error) {
	after, _, err := f.cursor(CursorEvents)
	if err != nil {
		return false, err
	}
	evs, err := f.DB.EventsAfter(after, MaxBatch)
	if err != nil || len(evs) == 0 {
		return false, err
	}
	body := EventBody{Events: make([]Event, len(evs))}
	for i, e := range evs {
		body.Events[i] = event(e, f.loc())
	}
	m, err := f.message(KindEvent, now, body)
	if err != nil {
		return false, err
	}
	_, err = f.DB.EnqueueUplink([]store.UplinkMessage{m}, map[string][]byte{CursorEvents: u64(evs[len(evs)-1].ID)})
	return len(evs) == MaxBatch, err
}

// ledger sends the next batch of ledger entries, top-ups with their
// invoice requests; more when the batch was full.
func (f *Feed) ledger(now time.Time) (bool, error) {
	after, _, err := f.cursor(CursorLedger)
	if err != nil {
		return false, err
	}
	es, err := f.DB.EntriesAfter(after, MaxBatch)
	if err != nil || len(es) == 0 {
		return false, err
	}
	var refs []string
	for _, e := range es {
		if e.Kind == store.TopUp && e.Ref != "" {
			refs = append(refs, e.Ref)
		}
	}
	invs, err := f.invoices(refs)
	if err != nil {
		return false, err
	}
	body := LedgerBody{Entries: make([]LedgerEntry, len(es))}
	for i, e := range es {
		var inv *Invoice
		if in, ok := invs[e.Ref]; ok && e.Kind == store.TopUp && in.Entry == e.ID {
			inv = &Invoice{Title: in.Title, TaxID: in.TaxID, Email: in.Email, Status: in.Status}
		}
		body.Entries[i] = ledgerEntry(e, f.loc(), inv)
	}
	m, err := f.message(KindLedger, now, body)
	if err != nil {
		return false, err
	}
	_, err = f.DB.EnqueueUplink([]store.UplinkMessage{m}, map[string][]byte{CursorLedger: u64(es[len(es)-1].ID)})
	return len(es) == MaxBatch, err
}

// invoices returns the invoice requests of refs (store.Invoices).
func (f *Feed) invoices(refs []string) (map[string]store.Invoice, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	return f.DB.Invoices(refs)
}

// interval sends the next closed quarter hour, once it ended Settle ago;
// more when the one after it is due too.
func (f *Feed) interval(now time.Time) (bool, error) {
	next, _, err := f.cursor(CursorInterval)
	if err != nil {
		return false, err
	}
	if present := store.IntervalStart(now); int64(next) > present.Add(store.IntervalLength).Unix() {
		if err := f.rewind(now, time.Unix(int64(next), 0), present); err != nil {
			return false, err
		}
		next = uint64(present.Unix())
	}
	start := time.Unix(int64(next), 0)
	due := func(s time.Time) bool { return !now.Before(s.Add(store.IntervalLength + f.settle())) }
	if !due(start) {
		return false, nil
	}
	end := start.Add(store.IntervalLength)
	var meters []config.Meter
	if f.Config != nil {
		meters = f.Config.Meters
	}
	ids := make([]string, len(meters))
	for i, m := range meters {
		ids[i] = m.ID
	}
	wh, err := f.DB.QuarterEnergy(ids, start)
	if err != nil {
		return false, err
	}
	var latest map[string]store.Reading
	if len(ids) > 0 {
		if latest, err = f.DB.LatestReadings(); err != nil {
			return false, err
		}
	}
	// Held while a meter read in the quarter has not been read after it:
	// its next reading spreads the energy since the last one back over
	// the quarters between (a gateway stopped at 10:14 and started at
	// 10:17 puts the 10:14 energy into 10:00–10:15 at its first poll),
	// so the quarter goes up with it — for MaxHold at most, then as it
	// stands (final false). A meter not read in the quarter was offline
	// across it: waiting for it would hold every quarter for an hour.
	if now.Before(end.Add(f.settle() + MaxHold)) {
		for _, id := range ids {
			if r, ok := latest[id]; ok && !r.Time.Before(start) && r.Time.Before(end) {
				return false, nil
			}
		}
	}
	all := make([]MeterEnergy, len(meters))
	for i, m := range meters {
		r, read := latest[m.ID]
		all[i] = MeterEnergy{Meter: m.ID, Tenant: m.Tenant, Role: m.Role, Wh: wh[m.ID], Final: read && !r.Time.Before(end)}
	}
	var msgs []store.UplinkMessage
	parts := max(1, (len(all)+MaxBatch-1)/MaxBatch)
	for p := range parts {
		chunk := all[min(p*MaxBatch, len(all)):min((p+1)*MaxBatch, len(all))]
		m, err := f.message(KindInterval, now, IntervalBody{Start: start.In(f.loc()), End: end.In(f.loc()), Part: p + 1, Parts: parts, Meters: chunk})
		if err != nil {
			return false, err
		}
		msgs = append(msgs, m)
	}
	if _, err := f.DB.EnqueueUplink(msgs, map[string][]byte{CursorInterval: u64(uint64(end.Unix()))}); err != nil {
		return false, err
	}
	return due(end), nil
}

// rewind sets the interval cursor back to the present quarter, the clock
// being behind it (KindClockBehind), and says so in an event and the log.
// The event is stored first: a stop between the two stores it again at
// the next start rather than never.
func (f *Feed) rewind(now, next, present time.Time) error {
	const layout = "2006-01-02 15:04"
	sentTo, from, clock := next.In(f.loc()), present.In(f.loc()), now.In(f.loc())
	f.Log.Warn().Time("sent_until", sentTo).Time("resent_from", from).Msg("uplink: the clock is behind the quarter hours sent; they are sent again from the present one")
	if _, err := f.DB.PostEvents(store.Event{Time: now, Kind: KindClockBehind,
		Text: fmt.Sprintf("The clock (%s) is behind the uplink's quarter hours, sent up to %s: the quarter hours from %s are sent again as they close.",
			clock.Format(layout), sentTo.Format(layout), from.Format(layout)),
		Args: map[string]string{"clock_at": clock.Format(time.RFC3339), "sent_until_at": sentTo.Format(time.RFC3339), "resent_from_at": from.Format(time.RFC3339)}}); err != nil {
		return err
	}
	_, err := f.DB.EnqueueUplink(nil, map[string][]byte{CursorInterval: u64(uint64(present.Unix()))})
	return err
}

// snapshot sends the accounts and the meter_health snapshots at the first
// round of a quarter hour, each with its cursor in one transaction and
// each on its own: one that fails (its error in errs) is tried again at
// the next round without holding up the other.
func (f *Feed) snapshot(now time.Time, errs map[string]error) {
	q := store.IntervalStart(now)
	quarter, at := q.In(f.loc()), now.In(f.loc())
	if f.Accounts != nil {
		if err := f.snapshotOf(CursorAccounts, q, func() ([]store.UplinkMessage, error) {
			accts, err := f.Accounts()
			if err != nil {
				return nil, err
			}
			slices.SortFunc(accts, func(a, b Account) int { return strings.Compare(a.Tenant, b.Tenant) })
			var msgs []store.UplinkMessage
			parts := max(1, (len(accts)+MaxBatch-1)/MaxBatch)
			for p := range parts {
				body := AccountsBody{Quarter: quarter, At: at, Part: p + 1, Parts: parts, Accounts: []AccountState{}}
				for _, a := range accts[min(p*MaxBatch, len(accts)):min((p+1)*MaxBatch, len(accts))] {
					body.Accounts = append(body.Accounts, AccountState{Tenant: a.Tenant, Balance: a.Balance.String(), State: a.State, Relay: a.Relay})
				}
				m, err := f.message(KindAccounts, now, body)
				if err != nil {
					return nil, err
				}
				msgs = append(msgs, m)
			}
			return msgs, nil
		}); err != nil {
			errs[KindAccounts] = err
		}
	}
	if f.Meters != nil {
		if err := f.snapshotOf(CursorSnapshot, q, func() ([]store.UplinkMessage, error) {
			ms := f.Meters()
			slices.SortFunc(ms, func(a, b MeterHealth) int { return strings.Compare(a.Meter, b.Meter) })
			var msgs []store.UplinkMessage
			parts := max(1, (len(ms)+MaxBatch-1)/MaxBatch)
			for p := range parts {
				body := MeterHealthBody{Quarter: quarter, At: at, Part: p + 1, Parts: parts, Meters: []MeterStatus{}}
				for _, h := range ms[min(p*MaxBatch, len(ms)):min((p+1)*MaxBatch, len(ms))] {
					s := MeterStatus{Meter: h.Meter, Online: h.Online, Errors: h.Errors}
					if !h.LastSeen.IsZero() {
						t := h.LastSeen.In(f.loc())
						s.LastSeen = &t
					}
					body.Meters = append(body.Meters, s)
				}
				m, err := f.message(KindMeterHealth, now, body)
				if err != nil {
					return nil, err
				}
				msgs = append(msgs, m)
			}
			return msgs, nil
		}); err != nil {
			errs[KindMeterHealth] = err
		}
	}
}

// snapshotOf makes one snapshot of quarter q if the cursor named says it
// is due, and moves the cursor with its messages.
func (f *Feed) snapshotOf(cursor string, q time.Time, build func() ([]store.UplinkMessage, error)) error {
	last, _, err := f.cursor(cursor)
	if err != nil {
		return err
	}
	// Due when the quarter differs from the last, not only when later: a
	// clock set back keeps its snapshots.
	if q.Unix() == int64(last) {
		return nil
	}
	msgs, err := build()
	if err != nil {
		return err
	}
	_, err = f.DB.EnqueueUplink(msgs, map[string][]byte{cursor: u64(uint64(q.Unix()))})
	return err
}

// heartbeat sends a heartbeat at the first round of a minute, naming the
// sources stalled in this round.
func (f *Feed) heartbeat(now time.Time, stalled []string) error {
	last, _, err := f.cursor(CursorHeartbeat)
	if err != nil {
		return err
	}
	minute := now.Truncate(time.Minute)
	// Due when the minute differs from the last, not only when later: a
	// clock set back an hour must not silence the heartbeat for an hour.
	if minute.Unix() == int64(last) {
		return nil
	}
	s, err := f.DB.UplinkStats()
	if err != nil {
		return err
	}
	// A backlog: every BacklogHeartbeat only (either way, the clock may
	// have stepped back).
	if gap := minute.Sub(time.Unix(int64(last), 0)).Abs(); backlogged(s, now, BacklogAge) && gap < BacklogHeartbeat {
		return nil
	}
	body := HeartbeatBody{
		Version: f.Version, Started: f.started.In(f.loc()), UptimeS: int64(now.Sub(f.started) / time.Second),
		Outbox:  OutboxState{Head: s.Head, Oldest: s.Oldest, Depth: s.Depth, Bytes: s.Bytes},
		Buses:   BusesState{Down: []string{}},
		Stalled: append([]string{}, stalled...),
	}
	if !s.OldestTime.IsZero() {
		t := s.OldestTime.In(f.loc())
		body.Outbox.OldestTime = &t
		body.Outbox.OldestAgeS = int64(now.Sub(s.OldestTime) / time.Second)
	}
	if f.Buses != nil {
		for _, b := range f.Buses() {
			body.Buses.Total++
			if b.Up {
				body.Buses.Up++
			} else {
				body.Buses.Down = append(body.Buses.Down, b.Name)
			}
		}
		slices.Sort(body.Buses.Down)
	}
	m, err := f.message(KindHeartbeat, now, body)
	if err != nil {
		return err
	}
	_, err = f.DB.EnqueueUplink([]store.UplinkMessage{m}, map[string][]byte{CursorHeartbeat: u64(uint64(minute.Unix()))})
	return err
}

// backlogged reports whether the oldest message waiting in s is older
// than age by now's clock (a clock set back makes it young: no backlog).
func backlogged(s store.UplinkStats, now time.Time, age time.Duration) bool {
	return !s.OldestTime.IsZero() && now.Sub(s.OldestTime) > age
}

// backlog raises the backlog alarm — a store.KindUplinkBacklog event —
// once the oldest message waiting is older than BacklogAlarm, and clears it
// with a store.KindUplinkBacklogCleared event once it is younger than
// BacklogAge again (or none waits). The event is stored before the cursor
// that says it was: a stop between the two repeats it, never loses it.
func (f *Feed) backlog(now time.Time) error {
	raised, _, err := f.cursor(CursorBacklog)
	if err != nil {
		return err
	}
	s, err := f.DB.UplinkStats()
	if err != nil {
		return err
	}
	var ev store.Event
	switch {
	case raised == 0 && backlogged(s, now, BacklogAlarm):
		oldest := s.OldestTime.In(f.loc())
		age := now.Sub(s.OldestTime).Truncate(time.Second)
		ev = store.Event{Time: now, Kind: store.KindUplinkBacklog,
			Text: fmt.Sprintf("The uplink's outbox has waited for the group's broker since %s (%s): %d messages, %d bytes, kept until the broker takes them.",
				oldest.Format("2006-01-02 15:04:05"), age, s.Depth, s.Bytes),
			Args: map[string]string{"oldest_at": oldest.Format(time.RFC3339), "age_s": fmt.Sprint(int64(age / time.Second))}}
		raised = uint64(max(now.Unix(), 1))
	case raised != 0 && !backlogged(s, now, BacklogAge):
		// The alarm's time goes with it: a page tells the sentence from
		// its args, and one without any reads as an event of old.
		since := time.Unix(int64(raised), 0).In(f.loc())
		ev = store.Event{Time: now, Kind: store.KindUplinkBacklogCleared,
			Text: fmt.Sprintf("The uplink's outbox has caught up with the group's broker (behind since %s).", since.Format("2006-01-02 15:04:05")),
			Args: map[string]string{"raised_at": since.Format(time.RFC3339)}}
		raised = 0
	default:
		return nil
	}
	if _, err := f.DB.PostEvents(ev); err != nil {
		return err
	}
	_, err = f.DB.EnqueueUplink(nil, map[string][]byte{CursorBacklog: u64(raised)})
	return err
}
