package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// readingFormat is the first byte of a stored Reading. The latest reading
// of every meter is rewritten every cycle, so it is kept in a compact
// binary form rather than JSON: encoding JSON maps (and sorting their keys)
// was a fifth of a bus cycle's commit.
const readingFormat = 1

// encodeReading appends r to buf: format, time (Unix ns), import Wh, relay,
// then the energy counters and the values as (name, number) pairs in the
// order given.
func encodeReading(buf []byte, r Reading) []byte {
	buf = append(buf, readingFormat)
	buf = binary.AppendVarint(buf, r.Time.UnixNano())
	buf = binary.AppendVarint(buf, r.ImportWh)
	buf = appendString(buf, r.Relay)
	buf = binary.AppendUvarint(buf, uint64(len(r.Counters)))
	for _, c := range r.Counters {
		buf = appendString(buf, c.Name)
		buf = binary.AppendVarint(buf, c.Wh)
	}
	buf = binary.AppendUvarint(buf, uint64(len(r.Values)))
	for _, v := range r.Values {
		buf = appendString(buf, v.Name)
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(v.Value))
	}
	return buf
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decodeReading reverses encodeReading; any damage is ErrCorrupt.
func decodeReading(meter string, b []byte) (Reading, error) {
	d := decoder{b: b}
	if d.byte() != readingFormat {
		return Reading{}, fmt.Errorf("latest %s: %w: unknown format", meter, ErrCorrupt)
	}
	r := Reading{Meter: meter}
	r.Time = time.Unix(0, d.varint())
	r.ImportWh = d.varint()
	r.Relay = d.string()
	if n := d.count(); n > 0 {
		r.Counters = make([]Counter, n)
		for i := range r.Counters {
			r.Counters[i] = Counter{Name: d.string(), Wh: d.varint()}
		}
	}
	if n := d.count(); n > 0 {
		r.Values = make([]Value, n)
		for i := range r.Values {
			r.Values[i] = Value{Name: d.string(), Value: math.Float64frombits(d.uint64())}
		}
	}
	if d.err || len(d.b) != 0 {
		return Reading{}, fmt.Errorf("latest %s: %w: truncated or trailing bytes", meter, ErrCorrupt)
	}
	return r, nil
}

// decoder reads the pieces of an encoded reading; a short buffer sets err
// instead of panicking, and later reads return zeros.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) count() int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > uint64(len(d.b)) { // each item takes at least a byte
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) string() string {
	n := d.count()
	if d.err || n > len(d.b) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.err = true
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// latestToBinary rewrites schema 1's JSON latest readings in the binary
// form (the schema 2 upgrade).
func latestToBinary(tx *bolt.Tx) error {
	latest := tx.Bucket(bucketLatest)
	type kv struct{ k, v []byte }
	var rewrite []kv
	err := latest.ForEach(func(k, v []byte) error {
		if len(v) == 0 || v[0] != '{' {
			return nil
		}
		// Schema 1 wrote JSON with every value in one map.
		var old struct {
			Time     time.Time          `json:"time"`
			ImportWh int64              `json:"import_wh"`
			Values   map[string]float64 `json:"values"`
			Relay    string             `json:"relay"`
			// The other energy counters, written by schema 1's later
			// code and schema 2's first.
			EnergyWh map[string]int64 `json:"energy_wh"`
		}
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("latest %s: %w: %v", k, ErrCorrupt, err)
		}
		r := Reading{Meter: string(k), Time: old.Time, ImportWh: old.ImportWh, Relay: old.Relay}
		for _, name := range sortedKeys(old.Values) {
			r.Values = append(r.Values, Value{Name: name, Value: old.Values[name]})
		}
		for _, name := range sortedKeys(old.EnergyWh) {
			r.Counters = append(r.Counters, Counter{Name: name, Wh: old.EnergyWh[name]})
		}
		rewrite = append(rewrite, kv{append([]byte(nil), k...), encodeReading(nil, r)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, x := range rewrite { // not inside ForEach: bbolt forbids writes while iterating
		if err := latest.Put(x.k, x.v); err != nil {
			return err
		}
	}
	return nil
}
