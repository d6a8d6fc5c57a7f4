package pipeline

import (
	"encoding/binary"
	"fmt"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/counter"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// A meter's billing state is rewritten at every reading, in the bus
// cycle's transaction; encoding it as JSON was a seventh of a cycle's
// commit. This is a compact binary form: a format byte, then the fields in
// a fixed order, integers as varints, times as Unix nanoseconds.
const stateFormat = 3 // 2 added Bypass; 3 counter chains, the last exchange, operators' results

// errStateFormat is store.ErrCorrupt: a state that cannot be read is a
// damaged database (exit 3), whoever reads it.
var errStateFormat = fmt.Errorf("meter state: unknown format or damaged: %w", store.ErrCorrupt)

// EncodeState is a meter's billing state as it is stored.
func EncodeState(mb *MeterState) []byte {
	b := make([]byte, 0, 96)
	b = append(b, stateFormat)
	st := &mb.Counter
	b = appendBool(b, st.Known)
	b = appendSample(b, st.Baseline)
	b = binary.AppendUvarint(b, uint64(len(st.Lower)))
	for _, s := range st.Lower {
		b = appendSample(b, s)
	}
	b = appendBool(b, st.Quarantine != nil)
	if q := st.Quarantine; q != nil {
		b = appendSample(b, q.Held)
		b = appendTime(b, q.Since)
	}
	b = appendBool(b, st.AutoReset != nil)
	if a := st.AutoReset; a != nil {
		b = appendSample(b, a.Old)
		b = appendSample(b, a.First)
	}
	b = binary.AppendVarint(b, int64(st.Remainder))
	b = appendBool(b, mb.Open != nil)
	if o := mb.Open; o != nil {
		b = appendString(b, o.Account)
		b = appendTime(b, o.Slot)
		b = appendString(b, o.Window)
		b = binary.AppendVarint(b, int64(o.Price))
		b = binary.AppendVarint(b, o.FromWh)
		b = binary.AppendVarint(b, o.ToWh)
		b = appendTime(b, o.From)
		b = appendTime(b, o.To)
		b = binary.AppendVarint(b, int64(o.Amount))
	}
	b = appendBool(b, mb.Bypass)
	// Format 3.
	b = binary.AppendVarint(b, int64(st.Chain))
	b = appendBool(b, st.Exchange != nil)
	if x := st.Exchange; x != nil {
		b = appendTime(b, x.At)
		b = binary.AppendVarint(b, x.OldFinalWh)
		b = binary.AppendVarint(b, x.NewStartWh)
	}
	if o := mb.Open; o != nil {
		b = binary.AppendVarint(b, int64(o.Chain))
	}
	b = appendResult(b, mb.Exchanged)
	b = appendResult(b, mb.Released)
	return appendBool(b, mb.Unbilled)
}

func appendResult(b []byte, r *web.OperatorResult) []byte {
	b = appendBool(b, r != nil)
	if r != nil {
		b = appendString(b, r.Meter)
		b = appendString(b, r.Verdict)
		b = appendString(b, r.BilledKWh)
		b = appendString(b, r.Event)
		b = appendString(b, r.HeldKWh)
	}
	return b
}

func (d *stateReader) result() *web.OperatorResult {
	if !d.bool() {
		return nil
	}
	return &web.OperatorResult{Meter: d.string(), Verdict: d.string(), BilledKWh: d.string(), Event: d.string(), HeldKWh: d.string()}
}

// DecodeState reads a stored billing state; a damaged or unknown one is an
// error wrapping store.ErrCorrupt.
func DecodeState(raw []byte) (*MeterState, error) {
	d := &stateReader{b: raw}
	format := d.byte()
	if format < 1 || format > stateFormat {
		return nil, errStateFormat
	}
	mb := &MeterState{}
	st := &mb.Counter
	st.Known = d.bool()
	st.Baseline = d.sample()
	if n := d.count(); n > 0 {
		st.Lower = make([]counter.Sample, n)
		for i := range st.Lower {
			st.Lower[i] = d.sample()
		}
	}
	if d.bool() {
		st.Quarantine = &counter.Quarantine{Held: d.sample(), Since: d.time()}
	}
	if d.bool() {
		st.AutoReset = &counter.AutoReset{Old: d.sample(), First: d.sample()}
	}
	st.Remainder = billing.Remainder(d.varint())
	if d.bool() {
		mb.Open = &OpenCharge{Account: d.string(), Slot: d.time(), Window: d.string(), Price: billing.Price(d.varint()),
			FromWh: d.varint(), ToWh: d.varint(), From: d.time(), To: d.time(), Amount: billing.Money(d.varint())}
	}
	if format >= 2 {
		mb.Bypass = d.bool()
	}
	if format >= 3 {
		st.Chain = int(d.varint())
		if d.bool() {
			st.Exchange = &counter.ExchangeMark{At: d.time(), OldFinalWh: d.varint(), NewStartWh: d.varint()}
		}
		if mb.Open != nil {
			mb.Open.Chain = int(d.varint())
		}
		mb.Exchanged, mb.Released = d.result(), d.result()
		mb.Unbilled = d.bool()
	}
	if d.bad || len(d.b) != 0 {
		return nil, errStateFormat
	}
	return mb, nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime keeps the zero time distinct from the Unix epoch.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, t.UnixNano())
}

func appendSample(b []byte, s counter.Sample) []byte {
	b = binary.AppendVarint(b, s.Wh)
	b = appendTime(b, s.At)
	b = appendTime(b, s.MeterTime)
	b = appendBool(b, s.HasRates)
	if s.HasRates {
		for _, r := range s.RatesWh {
			b = binary.AppendVarint(b, r)
		}
	}
	return b
}

// stateReader reads EncodeState's fields; a short or damaged buffer sets
// bad rather than panicking.
type stateReader struct {
	b   []byte
	bad bool
}

func (d *stateReader) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *stateReader) bool() bool { return d.byte() == 1 }

func (d *stateReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stateReader) count() int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > uint64(len(d.b)) {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *stateReader) string() string {
	n := d.count()
	if d.bad || n > len(d.b) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *stateReader) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	return time.Unix(0, d.varint())
}

func (d *stateReader) sample() counter.Sample {
	s := counter.Sample{Wh: d.varint(), At: d.time(), MeterTime: d.time(), HasRates: d.bool()}
	if s.HasRates {
		for i := range s.RatesWh {
			s.RatesWh[i] = d.varint()
		}
	}
	return s
}
