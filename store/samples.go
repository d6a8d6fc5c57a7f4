package store

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SampleLength is the span of one power sample.
const SampleLength = time.Minute

// sampleHour is the span of one stored record: a meter's samples of one
// hour are kept together in one value. A key per minute would cost bbolt's
// 16-byte element header and an 8-byte key on every sample, twice what the
// sample itself takes.
const sampleHour = time.Hour

// UnknownWh marks a Sample whose minute had no reading with an import
// counter.
const UnknownWh = -1

// Sample is a meter's power over one minute, aggregated from the readings
// of that minute (the pipeline hands over only finished minutes: a 10 s
// poll stores one sample a minute, not six).
type Sample struct {
	Meter  string
	Minute time.Time // start of the minute; second and below are dropped
	// Readings is how many readings with active power the minute had; 0:
	// none, and AvgW, MinW and MaxW mean nothing.
	Readings int
	AvgW     int64 // mean of the readings' total active power, W
	MinW     int64
	MaxW     int64
	// ImportWh is the billing counter at the minute's last reading that
	// had one, or UnknownWh.
	ImportWh int64
}

// MeanW is the mean of n power values summing to sumW, in whole W, halves
// rounded away from zero: a minute's mean from its readings, and a chart
// step's from its minutes, round alike. n > 0.
func MeanW(sumW int64, n int64) int64 {
	q, r := sumW/n, sumW%n
	if 2*r >= n {
		q++
	} else if 2*r <= -n {
		q--
	}
	return q
}

// sampleFormat is the first byte of a stored hour of samples.
const sampleFormat = 1

// Each sample of an hour is stored as: a head byte (the minute in the hour
// in the low 6 bits; bit 6 set when ImportWh is unknown), Readings (uvarint),
// then if Readings > 0 AvgW (varint), AvgW−MinW and MaxW−AvgW (uvarints),
// then unless unknown ImportWh less the hour's previous known counter
// (varint; the first one less 0). A minute of a 3 kW shop takes about 9
// bytes.
const (
	sampleMinuteMask = 0x3f
	sampleNoCounter  = 0x40
)

// encodeHour appends the samples (one hour's, in minute order, minutes
// distinct) to buf.
func encodeHour(buf []byte, samples []Sample) []byte {
	buf = append(buf, sampleFormat)
	var prev int64
	for _, s := range samples {
		head := byte(s.Minute.Unix() % int64(sampleHour/time.Second) / 60)
		if s.ImportWh < 0 {
			head |= sampleNoCounter
		}
		buf = append(buf, head)
		buf = binary.AppendUvarint(buf, uint64(max(s.Readings, 0)))
		if s.Readings > 0 {
			buf = binary.AppendVarint(buf, s.AvgW)
			buf = binary.AppendUvarint(buf, uint64(s.AvgW-s.MinW))
			buf = binary.AppendUvarint(buf, uint64(s.MaxW-s.AvgW))
		}
		if s.ImportWh >= 0 {
			buf = binary.AppendVarint(buf, s.ImportWh-prev)
			prev = s.ImportWh
		}
	}
	return buf
}

// decodeHour reverses encodeHour for meter's hour starting at hour; any
// damage is ErrCorrupt.
func decodeHour(meter string, hour time.Time, b []byte) ([]Sample, error) {
	bad := func(why string) error {
		return fmt.Errorf("samples of %s at %s: %w: %s", meter, hour.UTC().Format(time.RFC3339), ErrCorrupt, why)
	}
	d := decoder{b: b}
	if d.byte() != sampleFormat {
		return nil, bad("unknown format")
	}
	var out []Sample
	var prev int64
	last := -1
	for len(d.b) > 0 && !d.err {
		head := d.byte()
		minute := int(head & sampleMinuteMask)
		if minute >= 60 || minute <= last || head&^(sampleMinuteMask|sampleNoCounter) != 0 {
			return nil, bad("minutes out of order")
		}
		last = minute
		s := Sample{Meter: meter, Minute: hour.Add(time.Duration(minute) * time.Minute), ImportWh: UnknownWh}
		n := d.uvarint()
		if n > 1<<20 {
			return nil, bad("reading count")
		}
		s.Readings = int(n)
		if s.Readings > 0 {
			s.AvgW = d.varint()
			s.MinW = s.AvgW - int64(d.uvarint())
			s.MaxW = s.AvgW + int64(d.uvarint())
		}
		if head&sampleNoCounter == 0 {
			s.ImportWh = prev + d.varint()
			prev = s.ImportWh
		}
		out = append(out, s)
	}
	if d.err {
		return nil, bad("truncated")
	}
	return out, nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func hourKey(hour time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(hour.Unix()))
}

// putSamples stores samples in tx, each into its meter's hour: a sample
// for a minute already stored replaces it (a cycle sent again after a
// failed commit).
func putSamples(tx *bolt.Tx, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	// One read and one write per meter-hour, however many of its minutes
	// the cycle brings.
	type meterHour struct {
		meter string
		hour  int64
	}
	groups := make(map[meterHour][]Sample)
	var order []meterHour
	for _, s := range samples {
		if s.Meter == "" || strings.IndexByte(s.Meter, 0) >= 0 {
			return fmt.Errorf("sample of meter %q: %w", s.Meter, ErrBadEntry)
		}
		if s.Readings > 0 && (s.MinW > s.AvgW || s.AvgW > s.MaxW) {
			return fmt.Errorf("sample of meter %s: %w: min %d, mean %d, max %d W", s.Meter, ErrBadEntry, s.MinW, s.AvgW, s.MaxW)
		}
		s.Minute = s.Minute.Truncate(SampleLength)
		mh := meterHour{s.Meter, s.Minute.Truncate(sampleHour).Unix()}
		if _, ok := groups[mh]; !ok {
			order = append(order, mh)
		}
		groups[mh] = append(groups[mh], s)
	}
	root := tx.Bucket(bucketSamples)
	var buf []byte
	for _, mh := range order {
		b, err := root.CreateBucketIfNotExists([]byte(mh.meter))
		if err != nil {
			return fmt.Errorf("samples of meter %s: %w", mh.meter, err)
		}
		b.FillPercent = 1.0 // hours only grow: keep pages full
		hour := time.Unix(mh.hour, 0)
		key := hourKey(hour)
		var have []Sample
		if old := b.Get(key); old != nil {
			if have, err = decodeHour(mh.meter, hour, old); err != nil {
				return err
			}
		}
		merged := mergeSamples(have, groups[mh])
		buf = encodeHour(buf[:0], merged)
		// bbolt keeps the value slice until the commit: give it a copy.
		if err := b.Put(key, append([]byte(nil), buf...)); err != nil {
			return fmt.Errorf("samples of meter %s: %w", mh.meter, err)
		}
	}
	return nil
}

// mergeSamples returns have with add put in: in minute order, a minute in
// both taken from add (the later of two in add wins).
func mergeSamples(have, add []Sample) []Sample {
	if len(add) == 1 && (len(have) == 0 || have[len(have)-1].Minute.Before(add[0].Minute)) {
		return append(have, add[0]) // the usual case: the next minute
	}
	byMinute := make(map[int64]Sample, len(have)+len(add))
	for _, s := range have {
		byMinute[s.Minute.Unix()] = s
	}
	for _, s := range add {
		byMinute[s.Minute.Unix()] = s
	}
	out := make([]Sample, 0, len(byMinute))
	for _, s := range byMinute {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Minute.Before(out[j].Minute) })
	return out
}

// Samples returns meter's samples with from <= minute < to, in time order;
// none (and no error) for a meter that has none.
func (db *DB) Samples(meter string, from, to time.Time) ([]Sample, error) {
	var out []Sample
	err := db.EachSample(meter, from, to, func(s Sample) error {
		out = append(out, s)
		return nil
	})
	return out, err
}

// EachSample calls fn with each of meter's samples with from <= minute <
// to, in time order, within one read transaction, holding only an hour of
// them at a time: a chart over months sums them without holding them all.
// An error from fn ends the walk and is returned.
func (db *DB) EachSample(meter string, from, to time.Time, fn func(Sample) error) error {
	return db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSamples).Bucket([]byte(meter))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(hourKey(from.Truncate(sampleHour))); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("samples of %s, key %x: %w", meter, k, ErrCorrupt)
			}
			hour := time.Unix(int64(binary.BigEndian.Uint64(k)), 0)
			if !hour.Before(to) {
				break
			}
			hs, err := decodeHour(meter, hour, v)
			if err != nil {
				return err
			}
			for _, s := range hs {
				if !s.Minute.Before(from) && s.Minute.Before(to) {
					if err := fn(s); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// HasSamples reports whether meter has any stored sample: a meter gone from
// the configuration keeps its history until it is pruned.
func (db *DB) HasSamples(meter string) (bool, error) {
	var ok bool
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSamples).Bucket([]byte(meter))
		if b != nil {
			k, _ := b.Cursor().First()
			ok = k != nil
		}
		return nil
	})
	return ok, err
}

// PruneSamples deletes up to limit stored hours of samples that end at or
// before before, over all meters, in one transaction, and returns how many
// it deleted: fewer than limit means none is left. A meter left with no
// samples loses its sub-bucket. Callers prune in batches so that no
// transaction holds the write lock for long (a bus cycle waits on it).
func (db *DB) PruneSamples(before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n := 0
	err := db.update(func(tx *bolt.Tx) error {
		n = 0 // a retried function starts again
		root := tx.Bucket(bucketSamples)
		var meters [][]byte
		err := root.ForEach(func(k, v []byte) error {
			if v == nil { // a sub-bucket
				meters = append(meters, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range meters {
			if n >= limit {
				break
			}
			b := root.Bucket(m)
			c := b.Cursor()
			// Delete from the front; after Delete a cursor's Next may skip
			// a key, so each turn starts at First again.
			for k, _ := c.First(); k != nil && n < limit; k, _ = c.First() {
				if len(k) != 8 {
					return fmt.Errorf("samples of %s, key %x: %w", m, k, ErrCorrupt)
				}
				end := time.Unix(int64(binary.BigEndian.Uint64(k)), 0).Add(sampleHour)
				if end.After(before) {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			if k, _ := c.First(); k == nil {
				if err := root.DeleteBucket(m); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}
