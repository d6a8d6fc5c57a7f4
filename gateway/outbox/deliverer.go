package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/notify"
	"mallgrid/store"
)

// Deliverer sends the outbox's due deliveries; see the package doc. Its
// fields are set before Run and not changed after.
type Deliverer struct {
	DB       *store.DB
	Config   *config.Config
	Channels map[string]Channel
	// Now is the clock (the site's zone).
	Now func() time.Time
	Log zerolog.Logger
	// Jitter returns a random duration in [0, d); nil uses math/rand/v2.
	// Tests pass a fixed one.
	Jitter func(d time.Duration) time.Duration
	// Poll is the longest wait between two looks at the outbox; 0 is a
	// second. New deliveries are noticed within it.
	Poll time.Duration
	// Batch is how many due deliveries a round takes; 0 is 100.
	Batch int
	// Publish, if set, hears of the events the outbox stores (dead
	// letters, channels down and up), so that open pages show their
	// alarms at once.
	Publish func([]store.Event)

	paused map[string]*pause      // by channel
	sent   map[string][]time.Time // by channel and recipient: deliveries within the last hour, oldest first
	// unrecorded are the deliveries sent whose delivery the database did
	// not take (its file lost, its disk full), by id, with the provider's
	// id: only their record is tried again, never the send.
	unrecorded map[string]string
	// storeWait is the wait after a round the database failed, doubled
	// each round it fails again.
	storeWait time.Duration
	// pruneAt is when the finished deliveries older than notify.keep are
	// next deleted; pruned counts those deleted in the batches so far.
	pruneAt time.Time
	pruned  int
}

// pause is a channel's state while every message fails on it.
type pause struct {
	probeAt time.Time
	waits   int // probes failed so far: each doubles the wait
}

// Run delivers until ctx ends, and returns nil then. A database that
// fails (at the start too) is logged and tried again, a second and more
// later: notices wait in the outbox, they are not given up.
func (d *Deliverer) Run(ctx context.Context) error {
	poll := d.Poll
	if poll <= 0 {
		poll = time.Second
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait := d.Round(ctx)
		timer.Reset(min(max(wait, 10*time.Millisecond), poll))
	}
}

// start readies the in-memory state: channels paused before a restart
// stay paused, to be probed at once.
// Until it succeeds, d.paused stays nil: the next round starts again.
func (d *Deliverer) start() error {
	paused := make(map[string]*pause)
	d.sent = make(map[string][]time.Time)
	if d.unrecorded == nil {
		d.unrecorded = make(map[string]string)
	}
	down, err := d.DB.ChannelsDown()
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	for _, name := range down {
		if _, ok := d.Channels[name]; !ok {
			// No longer configured: nothing will probe it, and its alarm
			// would stay open for ever.
			if ev, done, err := d.DB.ResumeChannel(name, d.Now()); err != nil {
				return fmt.Errorf("outbox: %w", err)
			} else if done {
				d.publish(ev)
			}
			continue
		}
		paused[name] = &pause{probeAt: d.Now()}
	}
	d.paused = paused
	return nil
}

// pruneBatch is how many finished deliveries one transaction deletes: a
// prune never holds the database long from the polling cycles' commits.
const pruneBatch = 500

// prune deletes a batch of the finished deliveries older than
// notify.keep, once an hour — a batch a round while more are left, after
// the round's sends, so that a long backlog to delete (the first start
// after an upgrade) never holds a notice back — and says in the log how
// many. A failure is logged and tried again in a minute.
func (d *Deliverer) prune(now time.Time) {
	keep := d.Config.Notify.Retention()
	if keep <= 0 || now.Before(d.pruneAt) {
		return
	}
	n, more, err := d.DB.PruneDeliveries(now.Add(-keep), pruneBatch)
	d.pruned += n
	switch {
	case err != nil:
		d.Log.Error().Err(err).Msg("outbox: delete old notices")
		d.pruneAt = now.Add(time.Minute)
	case more:
		// The next round deletes the next batch.
	default:
		if d.pruned > 0 {
			d.Log.Info().Int("deleted", d.pruned).Str("keep", d.Config.Notify.Keep).Msg("outbox: old notices deleted")
		}
		d.pruned, d.pruneAt = 0, now.Add(time.Hour)
	}
}

// storeFailed is the wait after a round the database failed: a second,
// doubling up to a minute while it keeps failing.
func (d *Deliverer) storeFailed() time.Duration {
	d.storeWait = min(max(2*d.storeWait, time.Second), time.Minute)
	return d.storeWait
}

// Round sends what is due now and returns how long until something may be
// due again. A failure of the database is logged and tried again next
// round.
func (d *Deliverer) Round(ctx context.Context) time.Duration {
	if d.paused == nil {
		if err := d.start(); err != nil {
			d.Log.Error().Err(err).Msg("outbox: read the paused channels")
			return d.storeFailed()
		}
	}
	now := d.Now()
	// A delivery sent but not recorded is recorded first; nothing more is
	// sent until the database takes it.
	for id, provider := range d.unrecorded {
		if _, err := d.DB.MarkDelivered(id, now, provider); err != nil {
			d.Log.Error().Err(err).Str("delivery", id).Msg("outbox: record a delivery sent")
			return d.storeFailed()
		}
		delete(d.unrecorded, id)
	}
	batch := d.Batch
	if batch <= 0 {
		batch = 100
	}
	probing := make(map[string]bool) // paused channels probed this round
	due, err := d.DB.DueDeliveries(now, batch, func(dl store.Delivery) bool {
		p := d.paused[dl.Channel]
		if p == nil {
			return false
		}
		if now.Before(p.probeAt) || probing[dl.Channel] {
			return true
		}
		probing[dl.Channel] = true // the oldest due is the probe
		return false
	})
	if err != nil {
		d.Log.Error().Err(err).Msg("outbox: read due deliveries")
		return d.storeFailed()
	}
	// Staff first: a control room's alarm does not wait behind tenants'
	// notices.
	slices.SortStableFunc(due, func(a, b store.Delivery) int {
		return cmp.Compare(boolRank(a.To != "staff"), boolRank(b.To != "staff"))
	})
	slow := make(map[string]bool) // channels that failed this round: the rest of theirs wait
	attempted := 0
	for _, dl := range due {
		if ctx.Err() != nil {
			return 0
		}
		if p := d.paused[dl.Channel]; p != nil && now.Before(p.probeAt) {
			continue // paused by a failure earlier in this round
		}
		if slow[dl.Channel] {
			continue
		}
		attempted++
		hung, err := d.deliver(ctx, dl)
		if err != nil {
			d.Log.Error().Err(err).Str("delivery", dl.ID).Msg("outbox: record a delivery")
			return d.storeFailed()
		}
		if hung {
			// A channel that hung until its timeout would make every later
			// message of it wait as long: they are tried next round, the
			// other channels' now.
			slow[dl.Channel] = true
		}
	}
	d.storeWait = 0
	d.prune(now)
	if len(due) == batch && len(slow) == 0 {
		return 0
	}
	wait := time.Second
	if next, ok, err := d.DB.NextDue(); err == nil && ok {
		wait = next.Sub(d.Now())
	}
	for _, p := range d.paused {
		wait = min(wait, p.probeAt.Sub(d.Now()))
	}
	if attempted == 0 {
		// Nothing could be sent (a paused channel's messages are due but
		// wait for its probe): no round sooner than a second.
		wait = max(wait, time.Second)
	}
	return wait
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// deliver sends one delivery, or delays it, and records what happened;
// slow says the send failed after half the timeout or more (a service
// that hangs): the channel's other messages wait for the next round.
func (d *Deliverer) deliver(ctx context.Context, dl store.Delivery) (slow bool, err error) {
	now := d.Now()
	log := d.Log.With().Str("delivery", dl.ID).Str("channel", dl.Channel).Str("kind", dl.Event.Kind).Logger()
	ch, ok := d.Channels[dl.Channel]
	if !ok {
		return false, d.deadLetter(dl.ID, now, fmt.Sprintf("channel %s is no longer configured", dl.Channel), false)
	}
	if until, quiet := d.quiet(dl, now); quiet {
		_, err := d.DB.Postpone(dl.ID, until)
		return false, err
	}
	if until, over := d.overLimit(dl, now); over {
		_, err := d.DB.Postpone(dl.ID, until)
		return false, err
	}
	sendCtx, cancel := context.WithTimeout(ctx, d.Config.Notify.Timeout)
	began := time.Now() // how long the service took: wall time, not the site's clock
	receipt, err := ch.Send(sendCtx, d.Message(dl, ch))
	cancel()
	slow = time.Since(began) >= d.Config.Notify.Timeout/2
	now = d.Now()
	switch {
	case err == nil:
		d.note(dl, now)
		if _, err := d.DB.MarkDelivered(dl.ID, now, receipt.ProviderID); err != nil {
			// Sent: never sent again for this, only its record tried.
			d.unrecorded[dl.ID] = receipt.ProviderID
			return false, err
		}
		if d.paused[dl.Channel] != nil {
			delete(d.paused, dl.Channel)
			ev, done, err := d.DB.ResumeChannel(dl.Channel, now)
			if err != nil {
				return false, err
			}
			if done {
				d.publish(ev)
			}
			log.Info().Msg("notification channel works again")
		}
		return false, nil
	case ctx.Err() != nil:
		// Shutting down: the delivery stays pending and due; the next
		// start sends it again under the same id.
		return false, nil
	case notify.ChannelWide(err):
		p := d.paused[dl.Channel]
		if p == nil {
			p = &pause{}
			d.paused[dl.Channel] = p
		}
		wait := d.capped(notify.RetryAfter(err))
		if wait <= 0 {
			wait = d.backoff(p.waits+1, false)
		}
		p.waits++
		p.probeAt = now.Add(wait)
		if ev, raised, err2 := d.DB.PauseChannel(dl.Channel, now, err.Error()); err2 != nil {
			return false, err2
		} else if raised {
			d.publish(ev)
			log.Warn().Err(err).Msg("notification channel paused")
		}
		_, err = d.DB.AttemptFailed(dl.ID, now, p.probeAt, err.Error(), false)
		return false, err
	case notify.Permanent(err):
		log.Warn().Err(err).Msg("notification refused for good: dead letter")
		return false, d.deadLetter(dl.ID, now, err.Error(), true)
	}
	if dl.Attempts+1 >= d.Config.Notify.MaxAttempts {
		log.Warn().Err(err).Int("attempts", dl.Attempts+1).Msg("notification out of attempts: dead letter")
		return slow, d.deadLetter(dl.ID, now, err.Error(), true)
	}
	wait := d.capped(notify.RetryAfter(err))
	if wait <= 0 {
		wait = d.backoff(dl.Attempts+1, true)
	}
	_, err = d.DB.AttemptFailed(dl.ID, now, now.Add(wait), err.Error(), true)
	return slow, err
}

// capped bounds a service's retry hint by backoff.max: a Retry-After of
// years is a broken answer, not a plan.
func (d *Deliverer) capped(wait time.Duration) time.Duration {
	return min(wait, d.Config.Notify.Backoff.Max)
}

func (d *Deliverer) deadLetter(id string, at time.Time, reason string, spend bool) error {
	_, ev, err := d.DB.DeadLetter(id, at, reason, spend)
	if err == nil {
		d.publish(ev)
	}
	return err
}

func (d *Deliverer) publish(ev store.Event) {
	if d.Publish != nil {
		d.Publish([]store.Event{ev})
	}
}

// backoff is the wait after the n-th failure: base × 2^(n−1) up to max,
// less up to half of it at random when jitter is set, so that messages
// that failed together do not all come back together.
func (d *Deliverer) backoff(n int, jitter bool) time.Duration {
	b := d.Config.Notify.Backoff
	wait := b.Base
	for i := 1; i < n && wait < b.Max; i++ {
		wait *= 2
	}
	wait = min(wait, b.Max)
	if jitter && wait > 1 {
		half := wait / 2
		if d.Jitter != nil {
			wait -= d.Jitter(half)
		} else {
			wait -= rand.N(half)
		}
	}
	return wait
}

// quiet reports whether dl is a tenant's notice inside the quiet hours,
// and when they end.
func (d *Deliverer) quiet(dl store.Delivery, now time.Time) (time.Time, bool) {
	from, to, ok := d.Config.Notify.QuietHours.Window()
	if !ok || dl.To != config.RouteTenant {
		return time.Time{}, false
	}
	local := now.In(d.Config.Location)
	m := local.Hour()*60 + local.Minute()
	inside := (from < to && m >= from && m < to) || (from > to && (m >= from || m < to))
	if !inside {
		return time.Time{}, false
	}
	end := time.Date(local.Year(), local.Month(), local.Day(), to/60, to%60, 0, 0, d.Config.Location)
	if !end.After(local) {
		end = time.Date(local.Year(), local.Month(), local.Day()+1, to/60, to%60, 0, 0, d.Config.Location)
	}
	return end, true
}

// rateKey names a recipient on a channel.
func rateKey(dl store.Delivery) string {
	r := dl.Recipient
	return dl.Channel + "\x00" + r.Name + "\x00" + r.Phone + "\x00" + r.Email + "\x00" + r.OpenID
}

// overLimit reports whether dl's recipient has had rate_limit.per_hour
// notices on its channel within the hour, and when the oldest of them
// leaves the hour.
func (d *Deliverer) overLimit(dl store.Delivery, now time.Time) (time.Time, bool) {
	per := d.Config.Notify.RateLimit.PerHour
	if per <= 0 || dl.To != "tenant" {
		// Staff are told of every alarm at once, as they are in quiet
		// hours; the cap spares tenants' phones.
		return time.Time{}, false
	}
	key := rateKey(dl)
	times := d.sent[key]
	i := 0
	for i < len(times) && !times[i].After(now.Add(-time.Hour)) {
		i++
	}
	times = times[i:]
	if len(times) == 0 {
		delete(d.sent, key)
	} else {
		d.sent[key] = times
	}
	if len(times) < per {
		return time.Time{}, false
	}
	return times[len(times)-per].Add(time.Hour), true
}

// note counts a delivery against its recipient's rate.
func (d *Deliverer) note(dl store.Delivery, at time.Time) {
	if d.Config.Notify.RateLimit.PerHour > 0 && dl.To == "tenant" {
		d.sent[rateKey(dl)] = append(d.sent[rateKey(dl)], at)
	}
}

// Message writes dl for its recipient: the event's sentence in the
// recipient's language (zh-CN when it names none the catalogs have), the
// kind's word as the subject, the template's params from the event's args
// (times in the site's zone), and the stored event for webhooks.
func (d *Deliverer) Message(dl store.Delivery, ch Channel) notify.Message {
	lang, ok := i18n.ParseLang(dl.Recipient.Lang)
	if !ok {
		lang = i18n.ZhCN
	}
	l := i18n.New(lang, d.Config.Location)
	e := dl.Event
	m := notify.Message{ID: dl.ID, Kind: e.Kind, At: e.Time, Lang: string(lang),
		To:      notify.Recipient{Name: dl.Recipient.Name, Phone: dl.Recipient.Phone, Email: dl.Recipient.Email, OpenID: dl.Recipient.OpenID},
		Subject: l.Event(e.Kind), Text: l.EventText(e.Kind, e.Args, e.Text)}
	names := ch.Params[e.Kind]
	if names == nil {
		for k := range e.Args {
			if k != "form" {
				names = append(names, k)
			}
		}
		slices.Sort(names)
	}
	keys := ch.Keys[e.Kind]
	for i, k := range names {
		v := e.Args[k]
		if k == "at" || strings.HasSuffix(k, "_at") {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				v = l.Time(t)
			}
		}
		key := k
		if i < len(keys) {
			key = keys[i]
		}
		m.Params = append(m.Params, notify.Param{Key: key, Value: v})
	}
	if raw, err := json.Marshal(e); err == nil {
		m.Event = raw
	}
	return m
}
