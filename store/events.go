package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is something people must hear about: a counter refused or reset,
// a jump held, a relay that did not follow, a warning, a cut-off. Events
// are stored before anyone is told, so that none is lost between the
// gateway and the channels that deliver them.
type Event struct {
	ID     uint64    `json:"id"` // one sequence, in commit order
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Meter  string    `json:"meter,omitempty"`
	Tenant string    `json:"tenant,omitempty"`
	// Bus names the bus an event is about (bus_down, bus_up) or the bus of
	// its meter; events stored before it was recorded have none.
	Bus  string `json:"bus,omitempty"`
	Text string `json:"text"` // a sentence for a person, in English
	// Args are the facts Text tells, by name (meter, balance "123.45",
	// cut_at in RFC 3339, …), as exact strings: what a page or a message
	// in another language fills its own sentence of the kind with
	// (gateway/i18n names the conventions). Events stored before they
	// were recorded have none, and are shown by Text.
	Args map[string]string `json:"args,omitempty"`
}

// appendEvents stores events in tx, giving each the next id; it returns
// them with their ids. Every event is stored here, so here, in the same
// transaction, the alarms it raises or clears change (noteAlarms), and the
// notifications it causes are queued (Options.Route, queueDeliveries).
func (db *DB) appendEvents(tx *bolt.Tx, events []Event) ([]Event, error) {
	b := tx.Bucket(bucketEvents)
	b.FillPercent = 1.0
	out := make([]Event, len(events))
	for i, e := range events {
		id, err := b.NextSequence()
		if err != nil {
			return nil, err
		}
		e.ID = id
		v, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, id), v); err != nil {
			return nil, err
		}
		if err := noteAlarms(tx, e); err != nil {
			return nil, fmt.Errorf("alarms of event %d (%s): %w", id, e.Kind, err)
		}
		if db.route != nil {
			if err := queueDeliveries(tx, e, db.route(db.id, e)); err != nil {
				return nil, fmt.Errorf("notifications of event %d (%s): %w", id, e.Kind, err)
			}
		}
		out[i] = e
	}
	return out, nil
}

// PostEvents stores events in their own durable transaction and returns
// them with their ids.
func (db *DB) PostEvents(events ...Event) ([]Event, error) {
	var out []Event
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		out, err = db.appendEvents(tx, events)
		return err
	})
	return out, err
}

// EventsAfter returns up to limit events with ids above after, oldest
// first: what a client that last saw event after has missed.
func (db *DB) EventsAfter(after uint64, limit int) ([]Event, error) {
	var out []Event
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %x: %w: %v", k, ErrCorrupt, err)
			}
			// A reader pages on by the last id returned: an id other than
			// its key's would send it back, or round for ever.
			if len(k) != 8 || e.ID != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("event %x holds id %d: %w", k, e.ID, ErrCorrupt)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// LastEvents returns the newest n events, oldest first.
func (db *DB) LastEvents(n int) ([]Event, error) {
	var out []Event
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %x: %w: %v", k, ErrCorrupt, err)
			}
			out = append(out, e)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}
