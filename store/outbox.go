package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery states, as Delivery.State gives them.
const (
	DeliveryPending   = "pending"   // waiting for its due time, or being sent
	DeliveryDelivered = "delivered" // the channel's service accepted it
	DeliveryDead      = "dead"      // refused for good, or out of attempts: a dead letter
)

// Kinds of the events the outbox appends.
const (
	// KindNotifyDeadLetter raises an alarm about one delivery given up on.
	KindNotifyDeadLetter = "notify_dead_letter"
	// KindNotifyChannelDown raises an alarm about a channel paused.
	KindNotifyChannelDown = "notify_channel_down"
	// KindNotifyChannelUp clears it: a message got through again.
	KindNotifyChannelUp = "notify_channel_up"
	// KindNotifyResent records an operator's resend; it clears the
	// delivery's dead-letter alarm.
	KindNotifyResent = "notify_resent"
)

// Router names the notifications an event causes, one Delivery per
// recipient and channel, with ID, Route, To, Tenant, Channel and Recipient
// set; the store fills in the rest. It is given the database's identity
// (DB.ID) and the event with its id: a delivery id must be unique beyond
// this file, since a receiver that drops ids it has seen would drop the
// notices of a database started afresh, whose event ids begin at 1 again.
type Router func(dbID string, e Event) []Delivery

// Recipient is who a delivery goes to, as the configuration named them
// when the event was stored: a later change of a phone number does not
// redirect a notice already queued.
type Recipient struct {
	Name   string `json:"name"`
	Phone  string `json:"phone,omitempty"`
	Email  string `json:"email,omitempty"`
	OpenID string `json:"openid,omitempty"`
	// Lang is the language the notice is written in ("zh-CN", "en").
	Lang string `json:"lang"`
}

// Delivery is one notification to one recipient over one channel: the
// outbox's record of it, from the transaction of the event that caused it
// to its delivery or its dead letter.
type Delivery struct {
	// ID is the delivery id every attempt is sent under: the receiver
	// recognises a resend by it.
	ID string `json:"id"`
	// Seq orders deliveries as they were written.
	Seq    uint64 `json:"seq"`
	Event  Event  `json:"event"` // the event it tells of
	Route  int    `json:"route"` // index of the route in notify.routes
	To     string `json:"to"`    // "tenant" or "staff"
	Tenant string `json:"tenant,omitempty"`
	// Channel is the configured channel's name.
	Channel   string    `json:"channel"`
	Recipient Recipient `json:"recipient"`
	State     string    `json:"state"`
	// Attempts counts the sends that failed for this message (or, once
	// delivered, that were made): a channel-wide failure or a wait for
	// quiet hours or a rate limit spends none.
	Attempts int       `json:"attempts"`
	Created  time.Time `json:"created"`
	// Due is when it is sent next, while pending.
	Due         time.Time `json:"due"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// Done is when it was delivered or dead-lettered.
	Done       time.Time `json:"done,omitzero"`
	ProviderID string    `json:"provider_id,omitempty"`
	// Resends counts the operators' resends.
	Resends int `json:"resends,omitempty"`
	// Of is, for an operator's resend of a delivered notice, the delivery
	// it repeats.
	Of string `json:"of,omitempty"`
	// Copy is, on a delivered notice an operator resent, its newest copy:
	// a second resend waits until that one is done.
	Copy string `json:"copy,omitempty"`
}

// queueDeliveries stores the deliveries route named for e, pending and due
// at e's time, in e's transaction.
func queueDeliveries(tx *bolt.Tx, e Event, ds []Delivery) error {
	for _, d := range ds {
		d.Event, d.Created, d.Due = e, e.Time, e.Time
		if err := addDelivery(tx, d); err != nil {
			return err
		}
	}
	return nil
}

// addDelivery stores d as a new pending delivery, numbered next.
func addDelivery(tx *bolt.Tx, d Delivery) error {
	all, ids := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxIDs)
	all.FillPercent = 1.0
	if d.ID == "" || len(d.ID) > maxDeliveryID {
		return fmt.Errorf("delivery id %q: want 1..%d bytes", d.ID, maxDeliveryID)
	}
	if ids.Get([]byte(d.ID)) != nil {
		return fmt.Errorf("delivery %s: %w", d.ID, ErrDeliveryExists)
	}
	seq, err := all.NextSequence()
	if err != nil {
		return err
	}
	d.Seq, d.State = seq, DeliveryPending
	if err := putDelivery(tx, d); err != nil {
		return err
	}
	if err := ids.Put([]byte(d.ID), seqKey(seq)); err != nil {
		return err
	}
	return indexDelivery(tx, d, true)
}

// indexDelivery adds d to the outbox's indexes (add) or takes it out of
// them: by state; a pending one by its due time, a finished one by when it
// finished.
func indexDelivery(tx *bolt.Tx, d Delivery, add bool) error {
	keys := map[string][]byte{string(bucketOutboxState): stateKey(d.State, d.Seq)}
	if d.State == DeliveryPending {
		keys[string(bucketOutboxDue)] = dueKey(d)
	} else {
		keys[string(bucketOutboxDone)] = timeSeqKey(d.Done, d.Seq)
	}
	for bucket, k := range keys {
		b := tx.Bucket([]byte(bucket))
		var err error
		if add {
			// The default fill: keys go in the middle too (due times
			// moved by backoff, a state's range between the others').
			err = b.Put(k, nil)
		} else {
			err = b.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// indexDeliveries builds the indexes of schema 7 for the deliveries stored
// before it.
func indexDeliveries(tx *bolt.Tx) error {
	return tx.Bucket(bucketOutbox).ForEach(func(k, _ []byte) error {
		d, err := getDelivery(tx, k)
		if err != nil {
			return err
		}
		return indexDelivery(tx, d, true)
	})
}

// maxDeliveryID bounds a delivery id: it travels in headers and in the
// providers' own id fields (Alibaba Cloud's OutId takes 256).
const maxDeliveryID = 128

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// dueKey is d's key in the index of pending deliveries by due time.
func dueKey(d Delivery) []byte { return timeSeqKey(d.Due, d.Seq) }

// timeSeqKey orders deliveries by a time, then as written. Times before
// 1970 (never written) sort first.
func timeSeqKey(at time.Time, seq uint64) []byte {
	ns := at.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return binary.BigEndian.AppendUint64(seqKey(uint64(ns)), seq)
}

// stateKey is a delivery's key in the index by state.
func stateKey(state string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(state), 0), seq)
}

func putDelivery(tx *bolt.Tx, d Delivery) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketOutbox).Put(seqKey(d.Seq), v)
}

func getDelivery(tx *bolt.Tx, seq []byte) (Delivery, error) {
	var d Delivery
	raw := tx.Bucket(bucketOutbox).Get(seq)
	if raw == nil {
		return d, fmt.Errorf("delivery %x: none stored: %w", seq, ErrCorrupt)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("delivery %x: %w: %v", seq, ErrCorrupt, err)
	}
	return d, nil
}

// deliveryByID reads the delivery with id; ErrNoDelivery when there is none.
func deliveryByID(tx *bolt.Tx, id string) (Delivery, error) {
	seq := tx.Bucket(bucketOutboxIDs).Get([]byte(id))
	if seq == nil {
		return Delivery{}, fmt.Errorf("delivery %q: %w", id, ErrNoDelivery)
	}
	return getDelivery(tx, seq)
}

// changeDelivery reads delivery id, lets change alter it, and stores it
// with its indexes kept (indexDelivery).
func changeDelivery(tx *bolt.Tx, id string, change func(*Delivery) error) (Delivery, error) {
	d, err := deliveryByID(tx, id)
	if err != nil {
		return d, err
	}
	if err := indexDelivery(tx, d, false); err != nil {
		return d, err
	}
	if err := change(&d); err != nil {
		return d, err
	}
	if err := indexDelivery(tx, d, true); err != nil {
		return d, err
	}
	return d, putDelivery(tx, d)
}

func pendingOnly(d *Delivery) error {
	if d.State != DeliveryPending {
		return fmt.Errorf("delivery %s is %s: %w", d.ID, d.State, ErrDeliveryNotPending)
	}
	return nil
}

// DueDeliveries returns up to limit pending deliveries due at now or
// before, the longest due first, leaving out those skip says to (a paused
// channel's, a recipient's over its rate limit); nil skip leaves out none.
func (db *DB) DueDeliveries(now time.Time, limit int, skip func(Delivery) bool) ([]Delivery, error) {
	var out []Delivery
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutboxDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) != 16 {
				return fmt.Errorf("outbox due key %x: %w", k, ErrCorrupt)
			}
			if int64(binary.BigEndian.Uint64(k)) > now.UnixNano() {
				break
			}
			d, err := getDelivery(tx, k[8:])
			if err != nil {
				return err
			}
			if skip == nil || !skip(d) {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

// NextDue returns when the earliest pending delivery is due, and false
// when none is pending.
func (db *DB) NextDue() (time.Time, bool, error) {
	var (
		at time.Time
		ok bool
	)
	err := db.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketOutboxDue).Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) != 16 {
			return fmt.Errorf("outbox due key %x: %w", k, ErrCorrupt)
		}
		at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k))), true
		return nil
	})
	return at, ok, err
}

// MarkDelivered records that the channel's service accepted pending
// delivery id at at, with its own id for the message. A delivery not
// pending is ErrDeliveryNotPending and changes nothing.
func (db *DB) MarkDelivered(id string, at time.Time, providerID string) (Delivery, error) {
	var d Delivery
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		d, err = changeDelivery(tx, id, func(d *Delivery) error {
			if err := pendingOnly(d); err != nil {
				return err
			}
			d.State, d.Done, d.LastAttempt, d.ProviderID = DeliveryDelivered, at, at, providerID
			d.Attempts++
			return nil
		})
		return err
	})
	return d, err
}

// AttemptFailed records a failed send of pending delivery id at at, with
// its reason, and makes it due again at due. spend counts the attempt
// against the delivery's; a channel-wide failure spends none.
func (db *DB) AttemptFailed(id string, at, due time.Time, reason string, spend bool) (Delivery, error) {
	var d Delivery
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		d, err = changeDelivery(tx, id, func(d *Delivery) error {
			if err := pendingOnly(d); err != nil {
				return err
			}
			d.Due, d.LastAttempt, d.LastError = due, at, reason
			if spend {
				d.Attempts++
			}
			return nil
		})
		return err
	})
	return d, err
}

// Postpone makes pending delivery id due at due without an attempt: quiet
// hours, a recipient's rate limit.
func (db *DB) Postpone(id string, due time.Time) (Delivery, error) {
	var d Delivery
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		d, err = changeDelivery(tx, id, func(d *Delivery) error {
			if err := pendingOnly(d); err != nil {
				return err
			}
			d.Due = due
			return nil
		})
		return err
	})
	return d, err
}

// DeadLetter gives pending delivery id up at at: it is dead, with reason
// as its last error (spend counts the failed attempt that ended it), and a
// notify_dead_letter event raises an alarm about it in the same
// transaction. It returns the delivery and the event.
func (db *DB) DeadLetter(id string, at time.Time, reason string, spend bool) (Delivery, Event, error) {
	var (
		d  Delivery
		ev Event
	)
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		d, err = changeDelivery(tx, id, func(d *Delivery) error {
			if err := pendingOnly(d); err != nil {
				return err
			}
			d.State, d.Done, d.LastAttempt, d.LastError = DeliveryDead, at, at, reason
			if spend {
				d.Attempts++
			}
			return nil
		})
		if err != nil {
			return err
		}
		evs, err := db.appendEvents(tx, []Event{{Time: at, Kind: KindNotifyDeadLetter, Tenant: d.Tenant, Meter: d.Event.Meter,
			Text: fmt.Sprintf("The %s notice %s to %s over %s was given up after %d attempt(s): %s",
				d.Event.Kind, d.ID, d.Recipient.Name, d.Channel, d.Attempts, reason),
			Args: map[string]string{"delivery": d.ID, "kind": d.Event.Kind, "to": d.Recipient.Name, "via": d.Channel,
				"attempts": fmt.Sprint(d.Attempts), "error": reason}}})
		if err != nil {
			return err
		}
		ev = evs[0]
		return nil
	})
	return d, ev, err
}

// Resend queues delivery id again at at, as actor (an operator) asked,
// and appends a notify_resent event about it in the same transaction. A
// dead letter goes again under its own id, its attempts back to 0, and
// that event clears its alarm. A delivered one was received: a receiver
// that drops an id it has seen would drop it again, so it goes as a new
// delivery, "<id>-r<n>" for the n-th resend, Of naming the original, which
// stays delivered; a copy resent copies its original again. It returns the
// delivery queued and the event. A delivery still pending, or a delivered
// one whose last copy is, is ErrDeliveryPending and changes nothing; an
// unknown id is ErrNoDelivery.
func (db *DB) Resend(id string, at time.Time, actor string) (Delivery, Event, error) {
	var (
		d  Delivery
		ev Event
	)
	if actor == "" {
		return d, ev, errors.New("resend: who asked is required")
	}
	err := db.update(func(tx *bolt.Tx) error {
		cur, err := deliveryByID(tx, id)
		if err != nil {
			return err
		}
		if cur.State == DeliveryDelivered && cur.Of != "" {
			// A copy delivered: copy the original again, so that ids
			// stay <original>-r<n> however often it is resent.
			if orig, err := deliveryByID(tx, cur.Of); err == nil {
				id = orig.ID
			} else if !errors.Is(err, ErrNoDelivery) {
				return err
			}
		}
		var from string
		d, err = changeDelivery(tx, id, func(d *Delivery) error {
			if d.State == DeliveryPending {
				return fmt.Errorf("delivery %s: %w", d.ID, ErrDeliveryPending)
			}
			if d.State == DeliveryDelivered && d.Copy != "" {
				if c, err := deliveryByID(tx, d.Copy); err == nil && c.State == DeliveryPending {
					return fmt.Errorf("delivery %s: its copy %s: %w", d.ID, c.ID, ErrDeliveryPending)
				}
			}
			from = d.State
			d.Resends++
			if from == DeliveryDead {
				d.State, d.Due, d.Attempts, d.Done, d.LastError = DeliveryPending, at, 0, time.Time{}, ""
			} else {
				d.Copy = fmt.Sprintf("%s-r%d", d.ID, d.Resends)
			}
			return nil
		})
		if err != nil {
			return err
		}
		args := map[string]string{"actor": actor, "delivery": d.ID, "kind": d.Event.Kind, "to": d.Recipient.Name, "via": d.Channel}
		text := fmt.Sprintf("%s queued the %s notice %s to %s over %s again (it was given up).", actor, d.Event.Kind, d.ID, d.Recipient.Name, d.Channel)
		if from == DeliveryDelivered {
			d = Delivery{ID: d.Copy, Of: d.ID, Event: d.Event, Route: d.Route, To: d.To, Tenant: d.Tenant,
				Channel: d.Channel, Recipient: d.Recipient, Created: at, Due: at}
			if err := addDelivery(tx, d); err != nil {
				return err
			}
			if d, err = deliveryByID(tx, d.ID); err != nil {
				return err
			}
			args["delivery"], args["of"], args["form"] = d.ID, d.Of, "delivered"
			text = fmt.Sprintf("%s queued the %s notice %s to %s over %s again, as %s (it was delivered).", actor, d.Event.Kind, d.Of, d.Recipient.Name, d.Channel, d.ID)
		}
		evs, err := db.appendEvents(tx, []Event{{Time: at, Kind: KindNotifyResent, Tenant: d.Tenant, Text: text, Args: args}})
		if err != nil {
			return err
		}
		ev = evs[0]
		return nil
	})
	return d, ev, err
}

// PauseChannel records that channel fails every message (reason): it
// raises one notify_channel_down alarm, unless one is open already. It
// returns the event and true when it raised one.
func (db *DB) PauseChannel(channel string, at time.Time, reason string) (Event, bool, error) {
	return db.channelEvent(channel, true, Event{Time: at, Kind: KindNotifyChannelDown,
		Text: fmt.Sprintf("Notification channel %s is paused: every message fails with: %s. Messages wait, spending no attempts, until it works again.", channel, reason),
		Args: map[string]string{"via": channel, "error": reason}})
}

// ResumeChannel records that a message got through channel again: it
// clears the notify_channel_down alarm, if one is open. It returns the
// event and true when there was one to clear.
func (db *DB) ResumeChannel(channel string, at time.Time) (Event, bool, error) {
	return db.channelEvent(channel, false, Event{Time: at, Kind: KindNotifyChannelUp,
		Text: fmt.Sprintf("Notification channel %s works again: the messages waiting for it are being sent.", channel),
		Args: map[string]string{"via": channel}})
}

// channelEvent appends e when the channel's down alarm is closed (down) or
// open (!down).
func (db *DB) channelEvent(channel string, down bool, e Event) (Event, bool, error) {
	var (
		out  Event
		done bool
	)
	err := db.update(func(tx *bolt.Tx) error {
		open := tx.Bucket(bucketAlarmsOpen).Get(openKey(KindNotifyChannelDown, channel)) != nil
		if open == down {
			return nil
		}
		evs, err := db.appendEvents(tx, []Event{e})
		if err != nil {
			return err
		}
		out, done = evs[0], true
		return nil
	})
	return out, done, err
}

// ChannelsDown returns the channels with an open notify_channel_down
// alarm, sorted: the paused channels, across a restart.
func (db *DB) ChannelsDown() ([]string, error) {
	var out []string
	err := db.view(func(tx *bolt.Tx) error {
		prefix := openKey(KindNotifyChannelDown, "")
		c := tx.Bucket(bucketAlarmsOpen).Cursor()
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// Delivery returns the delivery with id; ErrNoDelivery when there is none.
func (db *DB) Delivery(id string) (Delivery, error) {
	var d Delivery
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		d, err = deliveryByID(tx, id)
		return err
	})
	return d, err
}

// Deliveries returns up to limit deliveries, newest first: those in state
// (pending, delivered or dead), or of every state when state is "". An
// unknown state is an error.
func (db *DB) Deliveries(state string, limit int) ([]Delivery, error) {
	return db.DeliveriesBefore(state, 0, limit)
}

// DeliveriesBefore is Deliveries from the delivery numbered before (Seq)
// on, older ones: the next page. before 0 starts at the newest. It reads
// only the deliveries it returns, through the index of their state.
func (db *DB) DeliveriesBefore(state string, before uint64, limit int) ([]Delivery, error) {
	switch state {
	case "", DeliveryPending, DeliveryDelivered, DeliveryDead:
	default:
		return nil, fmt.Errorf("delivery state %q: want pending, delivered or dead", state)
	}
	if before == 0 {
		before = math.MaxUint64
	}
	var out []Delivery
	err := db.view(func(tx *bolt.Tx) error {
		if state == "" {
			c := tx.Bucket(bucketOutbox).Cursor()
			k, _ := c.Seek(seqKey(before))
			switch {
			case k == nil:
				k, _ = c.Last()
			case binary.BigEndian.Uint64(k) >= before:
				k, _ = c.Prev()
			}
			for ; k != nil && len(out) < limit; k, _ = c.Prev() {
				d, err := getDelivery(tx, k)
				if err != nil {
					return err
				}
				out = append(out, d)
			}
			return nil
		}
		prefix := append([]byte(state), 0)
		c := tx.Bucket(bucketOutboxState).Cursor()
		// The first key at or after (state, before) is the one after the
		// page's first: step back from it.
		k, _ := c.Seek(stateKey(state, before))
		switch {
		case k == nil:
			k, _ = c.Last()
		case !bytes.HasPrefix(k, prefix) || binary.BigEndian.Uint64(k[len(prefix):]) >= before:
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			if len(k) != len(prefix)+8 {
				return fmt.Errorf("outbox state key %x: %w", k, ErrCorrupt)
			}
			d, err := getDelivery(tx, k[len(prefix):])
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// PruneDeliveries deletes up to limit deliveries that finished (delivered
// or dead) before before, the oldest first, and returns how many it
// deleted and whether any are left to delete. A dead letter whose alarm is
// still open stays: the operator may yet resend it.
func (db *DB) PruneDeliveries(before time.Time, limit int) (n int, more bool, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		n, more = 0, false
		end := timeSeqKey(before, 0)
		c := tx.Bucket(bucketOutboxDone).Cursor()
		var doomed []Delivery
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			if len(k) != 16 {
				return fmt.Errorf("outbox done key %x: %w", k, ErrCorrupt)
			}
			if len(doomed) == limit {
				more = true
				break
			}
			d, err := getDelivery(tx, k[8:])
			if err != nil {
				return err
			}
			if d.State == DeliveryDead && tx.Bucket(bucketAlarmsOpen).Get(openKey(KindNotifyDeadLetter, d.ID)) != nil {
				continue
			}
			doomed = append(doomed, d)
		}
		for _, d := range doomed {
			if err := indexDelivery(tx, d, false); err != nil {
				return err
			}
			if err := tx.Bucket(bucketOutboxIDs).Delete([]byte(d.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketOutbox).Delete(seqKey(d.Seq)); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, more, err
}

// CheckOutbox reads every delivery and the outbox's indexes and returns
// what does not agree, one sentence each: a delivery that cannot be read
// or is stored under another number, an id not mapped to it, a delivery
// missing from the index of its state, of the due (pending) or of the
// finished ones (delivered, dead), and an index key naming no such
// delivery. The error is for a database that cannot be read.
func (db *DB) CheckOutbox() ([]string, error) {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	err := db.view(func(tx *bolt.Tx) error {
		want := map[string]map[string]bool{ // bucket → keys the deliveries need
			string(bucketOutboxIDs): {}, string(bucketOutboxState): {}, string(bucketOutboxDue): {}, string(bucketOutboxDone): {},
		}
		idValue := make(map[string][]byte)
		err := tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil || len(k) != 8 {
				bad("delivery under key %x cannot be read: %v", k, err)
				return nil
			}
			if binary.BigEndian.Uint64(k) != d.Seq {
				bad("delivery %s is numbered %d but stored under %d", d.ID, d.Seq, binary.BigEndian.Uint64(k))
			}
			switch d.State {
			case DeliveryPending:
				want[string(bucketOutboxDue)][string(dueKey(d))] = true
			case DeliveryDelivered, DeliveryDead:
				want[string(bucketOutboxDone)][string(timeSeqKey(d.Done, d.Seq))] = true
			default:
				bad("delivery %s is in state %q", d.ID, d.State)
			}
			want[string(bucketOutboxState)][string(stateKey(d.State, d.Seq))] = true
			want[string(bucketOutboxIDs)][d.ID] = true
			idValue[d.ID] = k
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(want)) {
			keys := want[name]
			err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				switch {
				case !keys[string(k)]:
					bad("%s holds %q, which names no delivery in that state and time", name, k)
				case name == string(bucketOutboxIDs) && !bytes.Equal(v, idValue[string(k)]):
					bad("delivery id %s maps to %x, not to its delivery %x", k, v, idValue[string(k)])
				}
				delete(keys, string(k))
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				bad("%s lacks %q: a delivery is missing from it", name, k)
			}
		}
		return nil
	})
	return out, err
}
