package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// UplinkMessage is one message of the uplink outbox: news for the mall
// group's broker, kept until the broker acknowledged it.
type UplinkMessage struct {
	Seq  uint64          `json:"seq"`  // per site, contiguous from 1, given by the store
	Kind string          `json:"kind"` // interval | ledger | accounts | event | meter_health | heartbeat | command_result
	Time time.Time       `json:"time"` // when it was made
	Data json.RawMessage `json:"data"` // the kind's body (docs/UPLINK.md)
}

// UplinkStats describes the uplink outbox.
type UplinkStats struct {
	// Head is the last seq given (0: none yet). It never goes back, also
	// when every message was acknowledged and removed.
	Head uint64 `json:"head"`
	// Oldest is the oldest unacknowledged seq (0: none). Every seq below
	// it was acknowledged: the watermark.
	Oldest uint64 `json:"oldest"`
	// OldestTime is the Time of that message (zero: none).
	OldestTime time.Time `json:"oldest_time,omitzero"`
	// Depth counts the unacknowledged messages, Bytes their stored size.
	Depth int64 `json:"depth"`
	Bytes int64 `json:"bytes"`
}

// Kinds of the events the uplink's feed stores about its outbox: a backlog
// whose oldest message waits for more than an hour raises an alarm
// (alarms.go), which the event of its draining clears.
const (
	KindUplinkBacklog        = "uplink_backlog"
	KindUplinkBacklogCleared = "uplink_backlog_cleared"
)

// uplinkCursors are the cursors gateway/upfeed keeps, by name, that
// CheckUplink checks: the last event and entry id sent, and times (Unix
// seconds) of the quarter hours and minutes it reached.
var uplinkCursors = []string{"events", "ledger", "interval", "accounts", "snapshot", "heartbeat", "backlog"}

// MaxUplinkCursor bounds a cursor's name.
const MaxUplinkCursor = 64

// ErrBadUplink is returned by EnqueueUplink for a message or cursor it
// refuses (no kind, a body that is not JSON, a cursor name of no or too
// many bytes); nothing is stored.
var ErrBadUplink = errors.New("store: uplink message refused")

// Keys of bucketUplinkMeta. The seq last given is bucketUplinkOut's own
// sequence (NextSequence), which bbolt keeps when keys are deleted, so a
// seq is never given twice. Depth and bytes are kept beside the messages,
// in the same transactions, so that UplinkStats reads two keys rather than
// the whole outbox.
var (
	keyUplinkDepth  = []byte("depth")
	keyUplinkBytes  = []byte("bytes")
	prefixUplinkCur = "cursor:"
)

// EnqueueUplink stores msgs in one durable transaction, giving each the
// next seq, and in the same transaction sets the named cursors (a nil
// value deletes one): a source's messages and the point it has reached
// are kept together or not at all. It returns the messages with their
// seqs. ErrBadUplink (nothing stored) for a message without a kind or
// whose Data is not JSON, or a cursor name of 0 or more than
// MaxUplinkCursor bytes.
func (db *DB) EnqueueUplink(msgs []UplinkMessage, cursors map[string][]byte) ([]UplinkMessage, error) {
	for name := range cursors {
		if name == "" || len(name) > MaxUplinkCursor {
			return nil, fmt.Errorf("%w: cursor name %q", ErrBadUplink, name)
		}
	}
	for i, m := range msgs {
		if m.Kind == "" || !json.Valid(m.Data) {
			return nil, fmt.Errorf("%w: message %d: want a kind and a JSON body", ErrBadUplink, i)
		}
	}
	if len(msgs) == 0 && len(cursors) == 0 {
		return nil, nil
	}
	var out []UplinkMessage
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		if out, err = appendUplink(tx, msgs); err != nil {
			return err
		}
		meta := tx.Bucket(bucketUplinkMeta)
		for name, v := range cursors {
			k := []byte(prefixUplinkCur + name)
			var err error
			if v == nil {
				err = meta.Delete(k)
			} else {
				err = meta.Put(k, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendUplink stores msgs, checked by the caller, in tx, giving each the
// next seq, and returns them with their seqs: EnqueueUplink's, and the
// way news that must go up with a change of its own is stored in that
// change's transaction (a command's result with its record,
// uplink_commands.go).
func appendUplink(tx *bolt.Tx, msgs []UplinkMessage) ([]UplinkMessage, error) {
	b, meta := tx.Bucket(bucketUplinkOut), tx.Bucket(bucketUplinkMeta)
	b.FillPercent = 1.0 // seqs only grow
	depth, size := metaInt(meta, keyUplinkDepth), metaInt(meta, keyUplinkBytes)
	out := make([]UplinkMessage, len(msgs))
	for i, m := range msgs {
		seq, err := b.NextSequence()
		if err != nil {
			return nil, err
		}
		m.Seq = seq
		v, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", ErrBadUplink, i, err)
		}
		if err := b.Put(seqKey(seq), v); err != nil {
			return nil, err
		}
		out[i] = m
		depth, size = depth+1, size+int64(len(v))
	}
	return out, putCounters(meta, depth, size)
}

// UplinkCursor returns the named cursor's value, as EnqueueUplink last set
// it; nil when it was never set (or deleted).
func (db *DB) UplinkCursor(name string) ([]byte, error) {
	var out []byte
	err := db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketUplinkMeta).Get([]byte(prefixUplinkCur + name)); v != nil {
			out = append([]byte{}, v...) // v lives only as long as tx
		}
		return nil
	})
	return out, err
}

// UplinkAfter returns up to limit unacknowledged messages with seqs above
// after, oldest first: a sender pages on by the last seq it was given.
// ErrCorrupt for a message that cannot be read or is stored under another
// seq (the sender would go back, or round for ever).
func (db *DB) UplinkAfter(after uint64, limit int) ([]UplinkMessage, error) {
	var out []UplinkMessage
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUplinkOut).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			m, err := decodeUplink(k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

func decodeUplink(k, v []byte) (UplinkMessage, error) {
	var m UplinkMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return UplinkMessage{}, fmt.Errorf("uplink message %x: %w: %v", k, ErrCorrupt, err)
	}
	if len(k) != 8 || m.Seq != binary.BigEndian.Uint64(k) {
		return UplinkMessage{}, fmt.Errorf("uplink message %x holds seq %d: %w", k, m.Seq, ErrCorrupt)
	}
	return m, nil
}

// AckUplink removes the messages the broker acknowledged, in one durable
// transaction. Seqs not in the outbox (acknowledged before, never given)
// are ignored, so an acknowledgement repeated after a reconnect is harmless.
func (db *DB) AckUplink(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return db.update(func(tx *bolt.Tx) error {
		b, meta := tx.Bucket(bucketUplinkOut), tx.Bucket(bucketUplinkMeta)
		depth, size := metaInt(meta, keyUplinkDepth), metaInt(meta, keyUplinkBytes)
		removed := false
		for _, seq := range seqs {
			k := seqKey(seq)
			v := b.Get(k)
			if v == nil {
				continue
			}
			depth, size = depth-1, size-int64(len(v))
			if err := b.Delete(k); err != nil {
				return err
			}
			removed = true
		}
		if !removed {
			return nil
		}
		return putCounters(meta, max(depth, 0), max(size, 0))
	})
}

// UplinkStats returns the outbox's head, watermark, depth and size. It
// reads the counters kept with the messages and the oldest message, not
// the whole outbox.
func (db *DB) UplinkStats() (UplinkStats, error) {
	var s UplinkStats
	err := db.view(func(tx *bolt.Tx) error {
		b, meta := tx.Bucket(bucketUplinkOut), tx.Bucket(bucketUplinkMeta)
		s.Head = b.Sequence()
		s.Depth, s.Bytes = metaInt(meta, keyUplinkDepth), metaInt(meta, keyUplinkBytes)
		if k, v := b.Cursor().First(); k != nil {
			m, err := decodeUplink(k, v)
			if err != nil {
				return err
			}
			s.Oldest, s.OldestTime = m.Seq, m.Time
		}
		return nil
	})
	return s, err
}

// EntriesAfter returns up to limit ledger entries, of every account, with
// ids above after, in id order: what a reader that last saw entry after
// has missed. ErrCorrupt for an entry that cannot be read or holds another
// id than its key's.
func (db *DB) EntriesAfter(after uint64, limit int) ([]Entry, error) {
	var out []Entry
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w: %v", k, ErrCorrupt, err)
			}
			if len(k) != 8 || e.ID != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("entry %x holds id %d: %w", k, e.ID, ErrCorrupt)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// CheckUplink reads every message of the uplink outbox and returns what is
// wrong, one sentence each: a key that is not a seq, a message that cannot
// be read, has no kind or is stored under another seq, a seq above the last
// one given (it would be given again), and depth or bytes counters that
// disagree with the messages (the heartbeat and the status page would
// report a wrong backlog). It checks the feed's cursors too (their names
// are gateway/upfeed's): each 8 bytes; the events and ledger cursors at
// most the last event and entry stored (above, the news stored up to that
// id would never go up); a time cursor at most a day after now, the clock
// the check runs by (the feed rewinds an interval cursor ahead of its
// clock, but one absurdly far ahead says the database was written with a
// wrong clock or damaged). The error is for a database that cannot be read.
func (db *DB) CheckUplink(now time.Time) ([]string, error) {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	err := db.view(func(tx *bolt.Tx) error {
		b, meta := tx.Bucket(bucketUplinkOut), tx.Bucket(bucketUplinkMeta)
		head := b.Sequence()
		var depth, size int64
		err := b.ForEach(func(k, v []byte) error {
			depth, size = depth+1, size+int64(len(v))
			if len(k) != 8 {
				bad("uplink message under key %x: the key is not a seq", k)
				return nil
			}
			key := binary.BigEndian.Uint64(k)
			var m UplinkMessage
			if err := json.Unmarshal(v, &m); err != nil {
				bad("uplink message %d cannot be read: %v", key, err)
				return nil
			}
			if m.Seq != key {
				bad("uplink message %d holds seq %d", key, m.Seq)
			}
			if key > head {
				bad("uplink message %d is above the last seq given, %d: its seq would be given again", key, head)
			}
			if m.Kind == "" {
				bad("uplink message %d has no kind", key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range []struct {
			key       []byte
			got, want int64
		}{{keyUplinkDepth, metaInt(meta, keyUplinkDepth), depth}, {keyUplinkBytes, metaInt(meta, keyUplinkBytes), size}} {
			if v := meta.Get(c.key); v != nil && len(v) != 8 {
				bad("uplink counter %s is %d bytes, not 8", c.key, len(v))
			} else if c.got != c.want {
				bad("uplink counter %s is %d; the outbox holds %d", c.key, c.got, c.want)
			}
		}
		for _, name := range uplinkCursors {
			v := meta.Get([]byte(prefixUplinkCur + name))
			if v == nil {
				continue
			}
			if len(v) != 8 {
				bad("uplink cursor %s is %d bytes, not 8", name, len(v))
				continue
			}
			n := binary.BigEndian.Uint64(v)
			switch name {
			case "events":
				if last := tx.Bucket(bucketEvents).Sequence(); n > last {
					bad("uplink cursor events is event %d; the last event stored is %d: the events up to %d would never go up", n, last, n)
				}
			case "ledger":
				if last := tx.Bucket(bucketEntries).Sequence(); n > last {
					bad("uplink cursor ledger is entry %d; the last entry stored is %d: the entries up to %d would never go up", n, last, n)
				}
			default:
				if at := time.Unix(int64(n), 0).UTC(); n > 1<<40 || at.After(now.Add(24*time.Hour)) {
					bad("uplink cursor %s is %s, more than a day after the clock this check runs by (%s)", name, at.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
				}
			}
		}
		return nil
	})
	return out, err
}

// metaInt reads a counter of bucketUplinkMeta; 0 when it was never written
// (an outbox nothing was queued in) or is not 8 bytes (CheckUplink reports
// that).
func metaInt(meta *bolt.Bucket, k []byte) int64 {
	v := meta.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putCounters(meta *bolt.Bucket, depth, size int64) error {
	if err := meta.Put(keyUplinkDepth, binary.BigEndian.AppendUint64(nil, uint64(depth))); err != nil {
		return err
	}
	return meta.Put(keyUplinkBytes, binary.BigEndian.AppendUint64(nil, uint64(size)))
}

// QuarterEnergy returns the Wh stored in the 15-minute slot that starts
// at start, for each of meters that has one, read in one transaction (the
// uplink's interval message covers every meter of a site at once). A meter
// without a stored slot is absent. ErrCorrupt for a slot that is not 8
// bytes.
func (db *DB) QuarterEnergy(meters []string, start time.Time) (map[string]int64, error) {
	out := make(map[string]int64)
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIntervals)
		for _, m := range meters {
			k := intervalKey(m, IntervalStart(start))
			v := b.Get(k)
			if v == nil {
				continue
			}
			if len(v) != 8 {
				return fmt.Errorf("interval %x: %w", k, ErrCorrupt)
			}
			out[m] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return out, err
}
