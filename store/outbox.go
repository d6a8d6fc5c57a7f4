package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
// set; the store fills in the rest. It is given the event with its id.
type Router func(Event) []Delivery

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
}

// queueDeliveries stores the deliveries route named for e, pending and due
// at e's time, in e's transaction.
func queueDeliveries(tx *bolt.Tx, e Event, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	all, ids := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxIDs)
	all.FillPercent = 1.0
	for _, d := range ds {
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
		d.Seq, d.Event, d.State, d.Created, d.Due = seq, e, DeliveryPending, e.Time, e.Time
		if err := putDelivery(tx, d); err != nil {
			return err
		}
		if err := ids.Put([]byte(d.ID), seqKey(seq)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutboxDue).Put(dueKey(d), nil); err != nil {
			return err
		}
	}
	return nil
}

// maxDeliveryID bounds a delivery id: it travels in headers and in the
// providers' own id fields (Alibaba Cloud's OutId takes 256).
const maxDeliveryID = 128

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// dueKey is d's key in the index of pending deliveries by due time. Times
// before 1970 (never written) sort first.
func dueKey(d Delivery) []byte {
	ns := d.Due.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return binary.BigEndian.AppendUint64(seqKey(uint64(ns)), d.Seq)
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
// with its due index kept: a pending delivery is indexed under its Due, any
// other under nothing.
func changeDelivery(tx *bolt.Tx, id string, change func(*Delivery) error) (Delivery, error) {
	d, err := deliveryByID(tx, id)
	if err != nil {
		return d, err
	}
	due := tx.Bucket(bucketOutboxDue)
	if d.State == DeliveryPending {
		if err := due.Delete(dueKey(d)); err != nil {
			return d, err
		}
	}
	if err := change(&d); err != nil {
		return d, err
	}
	if d.State == DeliveryPending {
		if err := due.Put(dueKey(d), nil); err != nil {
			return d, err
		}
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

// Resend queues delivery id again, under the same id, due at at, with its
// attempts back to 0: actor (an operator) asked for it. A dead letter's
// alarm is cleared by the notify_resent event appended in the same
// transaction. A delivery still pending is ErrDeliveryPending and changes
// nothing; an unknown id is ErrNoDelivery.
func (db *DB) Resend(id string, at time.Time, actor string) (Delivery, Event, error) {
	var (
		d  Delivery
		ev Event
	)
	if actor == "" {
		return d, ev, errors.New("resend: who asked is required")
	}
	err := db.update(func(tx *bolt.Tx) error {
		var (
			err  error
			from string
		)
		d, err = changeDelivery(tx, id, func(d *Delivery) error {
			if d.State == DeliveryPending {
				return fmt.Errorf("delivery %s: %w", d.ID, ErrDeliveryPending)
			}
			from = d.State
			d.State, d.Due, d.Attempts, d.Done, d.LastError = DeliveryPending, at, 0, time.Time{}, ""
			d.Resends++
			return nil
		})
		if err != nil {
			return err
		}
		was, args := "given up", map[string]string{"actor": actor, "delivery": d.ID, "kind": d.Event.Kind, "to": d.Recipient.Name, "via": d.Channel}
		if from == DeliveryDelivered {
			was, args["form"] = "delivered", "delivered"
		}
		evs, err := db.appendEvents(tx, []Event{{Time: at, Kind: KindNotifyResent, Tenant: d.Tenant,
			Text: fmt.Sprintf("%s queued the %s notice %s to %s over %s again (it was %s).", actor, d.Event.Kind, d.ID, d.Recipient.Name, d.Channel, was),
			Args: args}})
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
	switch state {
	case "", DeliveryPending, DeliveryDelivered, DeliveryDead:
	default:
		return nil, fmt.Errorf("delivery state %q: want pending, delivered or dead", state)
	}
	var out []Delivery
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("delivery %x: %w: %v", k, ErrCorrupt, err)
			}
			if state == "" || d.State == state {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}
