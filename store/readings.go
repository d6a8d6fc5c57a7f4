package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// IntervalLength is the length of an interval-energy slot.
const IntervalLength = 15 * time.Minute

// Reading is the stored form of a meter's latest reading.
type Reading struct {
	Meter    string
	Time     time.Time // gateway time of the read
	ImportWh int64     // billing counter
	// Counters are the other energy counters (export, rates), integer Wh
	// like the billing counter.
	Counters []Counter
	// Values are the instantaneous values (V, A, W, PF, Hz).
	Values []Value
	Relay  string // closed | open | unknown
}

// Counter is an energy counter by its quantity name.
type Counter struct {
	Name string
	Wh   int64
}

// Value is an instantaneous value by its quantity name.
type Value struct {
	Name  string
	Value float64
}

// IntervalEnergy is energy to add to a meter's 15-minute slot.
type IntervalEnergy struct {
	Meter string
	Time  time.Time // any instant inside the slot
	Wh    int64
}

// Interval is a stored 15-minute slot.
type Interval struct {
	Start time.Time
	Wh    int64
}

// Cycle is what one bus cycle commits, all in one transaction.
type Cycle struct {
	Readings []Reading
	Energy   []IntervalEnergy
	// Charges are ledger entries for the energy the cycle accepted; their
	// ids and balances are assigned on commit.
	Charges []Entry
	// MeterState is each meter's billing state after the cycle (its counter
	// baseline, evidence, remainder), as the pipeline encodes it: it must
	// change together with the charges it led to.
	MeterState map[string][]byte
	// Events are stored with the cycle that raised them; CommitCycle
	// returns them with their ids.
	Events []Event
	// Breaks are the counter chains the cycle's readings started.
	Breaks []Break
	// Samples are the meters' finished minutes of power (see Sample).
	Samples []Sample
}

// IntervalStart returns the start of the 15-minute slot holding t. Slots are
// aligned to the Unix epoch, which is aligned to the quarter hour in every
// time zone whose offset is a whole number of quarter hours (all of China's).
func IntervalStart(t time.Time) time.Time { return t.Truncate(IntervalLength) }

// CommitCycle stores a bus cycle's readings, interval energy, power
// samples, charges, meter states and events in one transaction: after a
// crash either all of it is there or none. It returns the events with their ids.
func (db *DB) CommitCycle(c Cycle) ([]Event, error) {
	var events []Event
	err := db.update(func(tx *bolt.Tx) error {
		latest := tx.Bucket(bucketLatest)
		var buf []byte
		for _, r := range c.Readings {
			buf = encodeReading(buf[:0], r)
			// bbolt keeps the value slice until the commit: give it a copy.
			if err := latest.Put([]byte(r.Meter), append([]byte(nil), buf...)); err != nil {
				return fmt.Errorf("meter %s: %w", r.Meter, err)
			}
		}
		intervals := tx.Bucket(bucketIntervals)
		for _, e := range c.Energy {
			if err := addInterval(intervals, e); err != nil {
				return fmt.Errorf("meter %s: %w", e.Meter, err)
			}
		}
		if err := putSamples(tx, c.Samples); err != nil {
			return err
		}
		for _, e := range c.Charges {
			if e.Kind == TopUp {
				return fmt.Errorf("%w: a top-up in a bus cycle", ErrBadEntry)
			}
			if _, err := appendEntry(tx, e); err != nil {
				return fmt.Errorf("charge of meter %s: %w", e.Meter, err)
			}
		}
		states := tx.Bucket(bucketMeters)
		for id, st := range c.MeterState {
			if err := states.Put([]byte(id), st); err != nil {
				return fmt.Errorf("meter %s state: %w", id, err)
			}
		}
		if err := appendBreaks(tx, c.Breaks); err != nil {
			return err
		}
		var err error
		events, err = db.appendEvents(tx, c.Events)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// MeterStates returns every meter's stored billing state.
func (db *DB) MeterStates() (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeters).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// intervalKey is meter id, a zero byte, then the slot's start (Unix s,
// big-endian): one flat bucket, so that a cycle's slots are found with one
// seek each rather than a nested bucket opened per meter.
func intervalKey(meter string, start time.Time) []byte {
	k := make([]byte, 0, len(meter)+9)
	k = append(k, meter...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(start.Unix()))
}

func addInterval(intervals *bolt.Bucket, e IntervalEnergy) error {
	if e.Meter == "" || strings.IndexByte(e.Meter, 0) >= 0 {
		return fmt.Errorf("interval of meter %q: %w", e.Meter, ErrBadEntry)
	}
	key := intervalKey(e.Meter, IntervalStart(e.Time))
	sum := e.Wh
	if old := intervals.Get(key); old != nil {
		if len(old) != 8 {
			return fmt.Errorf("interval %x: %w", key, ErrCorrupt)
		}
		sum += int64(binary.BigEndian.Uint64(old))
	}
	return intervals.Put(key, binary.BigEndian.AppendUint64(nil, uint64(sum)))
}

// LatestReadings returns the latest stored reading of every meter.
func (db *DB) LatestReadings() (map[string]Reading, error) {
	out := make(map[string]Reading)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLatest).ForEach(func(k, v []byte) error {
			r, err := decodeReading(string(k), v)
			if err != nil {
				return err
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, err
}

// Intervals returns meter's slots with from <= start < to, in time order.
func (db *DB) Intervals(meter string, from, to time.Time) ([]Interval, error) {
	var out []Interval
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIntervals).Cursor()
		prefix := append([]byte(meter), 0)
		for k, v := c.Seek(intervalKey(meter, IntervalStart(from))); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 || len(v) != 8 {
				return fmt.Errorf("interval %x: %w", k, ErrCorrupt)
			}
			start := time.Unix(int64(binary.BigEndian.Uint64(k[len(prefix):])), 0)
			if !start.Before(to) {
				break
			}
			if start.Before(from) {
				continue
			}
			out = append(out, Interval{Start: start, Wh: int64(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	return out, err
}

// nestedIntervals lists the meters whose interval energy is kept in a
// bucket of their own. It reads a key or two a meter, not every slot: a
// meter's bucket sorts just before its flat keys (the meter id, 0, …),
// which are skipped in one seek.
func nestedIntervals(intervals *bolt.Bucket) [][]byte {
	var nested [][]byte
	c := intervals.Cursor()
	for k, v := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		switch {
		case v == nil:
			nested = append(nested, bytes.Clone(k))
			k, v = c.Next()
		case i < 0:
			k, v = c.Next()
		default:
			k, v = c.Seek(append(bytes.Clone(k[:i]), 1))
		}
	}
	return nested
}

// flattenIntervals moves interval energy kept the first way — a bucket per
// meter, keyed by slot start — to the flat keys of intervalKey, adding to a
// slot already there. Schema 1 wrote it so, and schema 2 until its keys
// were made flat without a schema version of their own: left nested, the
// energy is there but never read (Intervals seeks the flat keys). It
// changes nothing in a file without nested buckets.
func flattenIntervals(tx *bolt.Tx) error {
	intervals := tx.Bucket(bucketIntervals)
	for _, meter := range nestedIntervals(intervals) {
		sub := intervals.Bucket(meter)
		err := sub.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("interval %s %x: %w", meter, k, ErrCorrupt)
			}
			key := append(append(bytes.Clone(meter), 0), k...)
			sum := int64(binary.BigEndian.Uint64(v))
			if old := intervals.Get(key); old != nil {
				if len(old) != 8 {
					return fmt.Errorf("interval %x: %w", key, ErrCorrupt)
				}
				sum += int64(binary.BigEndian.Uint64(old))
			}
			return intervals.Put(key, binary.BigEndian.AppendUint64(nil, uint64(sum)))
		})
		if err != nil {
			return err
		}
		if err := intervals.DeleteBucket(meter); err != nil {
			return err
		}
	}
	return nil
}
