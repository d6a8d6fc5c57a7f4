package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Counts for monitoring (gateway/metrics), read on every scrape: each reads
// an index, never a whole history.

// OpenAlarmCount is how many open alarms share a kind, severity and state
// (AlarmActive or AlarmAcknowledged).
type OpenAlarmCount struct {
	Kind, Severity, State string
	N                     int
}

// OpenAlarmCounts counts the open alarms by kind, severity and state, in
// one read transaction over the index of open alarms: it reads those
// alarms and no cleared one. ErrCorrupt for an index entry whose alarm
// cannot be read.
func (db *DB) OpenAlarmCounts() ([]OpenAlarmCount, error) {
	type key struct{ kind, severity, state string }
	counts := make(map[key]int)
	var order []key
	err := db.view(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketAlarms)
		return tx.Bucket(bucketAlarmsOpen).ForEach(func(k, v []byte) error {
			raw := all.Get(v)
			if raw == nil {
				return fmt.Errorf("open alarm %q: none stored: %w", k, ErrCorrupt)
			}
			// Only what is counted by: an alarm's texts and arguments are
			// most of its record.
			var a struct {
				Kind     string    `json:"kind"`
				Severity string    `json:"severity"`
				Acked    time.Time `json:"acknowledged"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("open alarm %q: %w: %v", k, ErrCorrupt, err)
			}
			state := AlarmActive
			if !a.Acked.IsZero() { // as Alarm.State tells
				state = AlarmAcknowledged
			}
			c := key{a.Kind, a.Severity, state}
			if _, seen := counts[c]; !seen {
				order = append(order, c)
			}
			counts[c]++
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	out := make([]OpenAlarmCount, 0, len(order))
	for _, c := range order {
		out = append(out, OpenAlarmCount{Kind: c.kind, Severity: c.severity, State: c.state, N: counts[c]})
	}
	return out, nil
}

// DeliveryCounts counts the notification deliveries pending and dead
// (DeliveryPending, DeliveryDead): the outbox's depth and its dead
// letters, each state's keys in the index by state, values unread.
// Delivered ones are not counted: they are history, kept until pruned.
func (db *DB) DeliveryCounts() (map[string]int64, error) {
	out := map[string]int64{DeliveryPending: 0, DeliveryDead: 0}
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutboxState).Cursor()
		for state := range out {
			prefix := append([]byte(state), 0)
			var n int64
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
			}
			out[state] = n
		}
		return nil
	})
	return out, err
}
