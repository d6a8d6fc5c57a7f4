package meter

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Decode returns the value register r holds in data (the register bytes as
// they came off the wire, 2 per register), converted to r.Quantity's unit.
// It fails on short data or a value that is not a finite number: NaN and
// infinities come from meters that are powering up or garbled frames, and
// must never reach billing.
func Decode(r Register, data []byte) (float64, error) {
	words := int(r.Type.Words())
	if words == 0 {
		return 0, fmt.Errorf("%s: unknown type %q", r.Quantity, r.Type)
	}
	if len(data) < 2*words {
		return 0, fmt.Errorf("%s: %d bytes for a %s", r.Quantity, len(data), r.Type)
	}
	raw := ordered(data[:2*words], r.WordOrder, r.ByteOrder)
	var v float64
	switch r.Type {
	case Int16:
		v = float64(int16(binary.BigEndian.Uint16(raw)))
	case Uint16:
		v = float64(binary.BigEndian.Uint16(raw))
	case Int32:
		v = float64(int32(binary.BigEndian.Uint32(raw)))
	case Uint32:
		v = float64(binary.BigEndian.Uint32(raw))
	case Float32:
		v = shortest32(math.Float32frombits(binary.BigEndian.Uint32(raw)))
	case Float64:
		v = math.Float64frombits(binary.BigEndian.Uint64(raw))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: not a number", r.Quantity)
	}
	v *= scale(r) * unitFactor[r.Quantity.Unit()][r.Unit]
	// Checked after scaling: a huge raw value times a unit factor can
	// overflow to infinity, which no JSON or int64 can hold.
	if math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: out of range", r.Quantity)
	}
	if r.Quantity.IsEnergy() && (v < 0 || v > MaxCounterKWh) {
		return 0, fmt.Errorf("%s: counter %g kWh outside 0..%g", r.Quantity, v, float64(MaxCounterKWh))
	}
	return v, nil
}

// MaxCounterKWh bounds a plausible energy counter (1 TWh): beyond it a
// float32 counter has long lost its kWh, and a value there is a garbled
// frame. It also keeps every counter's Wh well inside int64.
const MaxCounterKWh = 1e9

// Encode is Decode's inverse: the register bytes that make Decode(r, …)
// return v. Simulators and tests use it; it saturates integers that do not fit.
func Encode(r Register, v float64) []byte {
	raw := v / unitFactor[r.Quantity.Unit()][r.Unit] / scale(r)
	buf := make([]byte, 2*r.Type.Words())
	switch r.Type {
	case Int16:
		binary.BigEndian.PutUint16(buf, uint16(int16(clamp(raw, math.MinInt16, math.MaxInt16))))
	case Uint16:
		binary.BigEndian.PutUint16(buf, uint16(clamp(raw, 0, math.MaxUint16)))
	case Int32:
		binary.BigEndian.PutUint32(buf, uint32(int32(clamp(raw, math.MinInt32, math.MaxInt32))))
	case Uint32:
		binary.BigEndian.PutUint32(buf, uint32(clamp(raw, 0, math.MaxUint32)))
	case Float32:
		binary.BigEndian.PutUint32(buf, math.Float32bits(float32(raw)))
	case Float64:
		binary.BigEndian.PutUint64(buf, math.Float64bits(raw))
	}
	return ordered(buf, r.WordOrder, r.ByteOrder)
}

// shortest32 widens f to the float64 of its shortest decimal form, so a
// meter's 0.95 reads as 0.95, not 0.949999988, and a counter of 31.057 kWh
// as exactly 31.057 before it is rounded to Wh.
func shortest32(f float32) float64 {
	var buf [32]byte
	v, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)), 64)
	if err != nil { // unreachable for a finite float32; NaN is caught by the caller
		return float64(f)
	}
	return v
}

func scale(r Register) float64 {
	if r.Scale == 0 {
		return 1
	}
	return r.Scale
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, math.Round(v)))
}

// ordered converts between wire order and big-endian (its own inverse).
func ordered(b []byte, words, bytes Order) []byte {
	if words != Little && bytes != Little {
		return b
	}
	out := make([]byte, len(b))
	n := len(b) / 2
	for i := 0; i < n; i++ {
		src := i
		if words == Little {
			src = n - 1 - i
		}
		hi, lo := b[2*src], b[2*src+1]
		if bytes == Little {
			hi, lo = lo, hi
		}
		out[2*i], out[2*i+1] = hi, lo
	}
	return out
}
