package sim

import (
	"math"
	"math/bits"
	"time"
)

// whUnits is one watt-hour in milliwatt-nanoseconds, the unit energy is
// integrated in: power is held in whole mW and time in ns, so every step
// adds an exact integer and the remainder below one Wh is carried, never
// rounded away. 1 Wh = 1000 mW × 3.6e12 ns.
const whUnits = 3_600_000_000_000_000

// maxPowerW bounds what a profile may ask for, so that one step's product of
// power and time always fits the 128-bit arithmetic below.
const maxPowerW = 1e9

// Meter-side time-of-use rates, indexes into counters.rateWh.
const (
	rateSharp = iota
	ratePeak
	rateFlat
	rateValley
)

// rateAt is the simulated meter's own time-of-use table by hour of day:
// sharp 19–21, peak 08–11 and 17–19, flat 07–08, 11–17 and 21–23,
// valley 23–07. It is a fixed rule so tests can predict every counter.
func rateAt(t time.Time) int {
	switch h := t.Hour(); {
	case h >= 19 && h < 21:
		return rateSharp
	case h >= 8 && h < 11, h >= 17 && h < 19:
		return ratePeak
	case h >= 23, h < 7:
		return rateValley
	default:
		return rateFlat
	}
}

// counters are a meter's energy registers, exact to the Wh, with the
// sub-Wh remainders that make them exact over any number of steps.
type counters struct {
	importWh, exportWh   int64
	importRem, exportRem uint64 // mW·ns below one Wh, < whUnits
	rateWh               [4]int64
}

// add integrates p milliwatts over dt. Imported Wh also go to the rate
// counter of the step: a step never spans an hour boundary, so a rate is
// charged exactly the Wh that crossed a whole-Wh mark inside its hours, and
// the four rates always add up to what the import counter gained.
func (c *counters) add(pmW int64, dt time.Duration, rate int) {
	if pmW == 0 || dt <= 0 {
		return
	}
	if pmW > 0 {
		wh := accumulate(&c.importRem, uint64(pmW), uint64(dt))
		c.importWh += wh
		c.rateWh[rate] += wh
		return
	}
	c.exportWh += accumulate(&c.exportRem, uint64(-pmW), uint64(dt))
}

// accumulate adds p×dt (mW·ns) to *rem and returns the whole Wh it makes,
// leaving the rest in *rem. The product needs 128 bits: 100 kW for one
// minute is already 6e18 mW·ns. With p ≤ 1e12 mW and dt ≤ 1 h the high word
// stays far below whUnits, so Div64 cannot overflow.
func accumulate(rem *uint64, p, dt uint64) int64 {
	hi, lo := bits.Mul64(p, dt)
	var carry uint64
	lo, carry = bits.Add64(lo, *rem, 0)
	hi += carry
	q, r := bits.Div64(hi, lo, whUnits)
	*rem = r
	return int64(q)
}

// milliwatts turns a profile's watts into the integer the integrator uses;
// NaN from a faulty profile counts as no load rather than poisoning counters.
func milliwatts(w float64) int64 {
	if math.IsNaN(w) {
		return 0
	}
	w = math.Max(-maxPowerW, math.Min(maxPowerW, w))
	return int64(math.Round(w * 1000))
}

// advanceLocked integrates the load from m.last up to now. The clock may be
// a test's fake; if it goes backwards nothing is integrated and m.last keeps
// the later time, so energy is never counted twice or taken back.
// Steps end at every minute (the profile's sampling) or, for a constant
// load, at every hour of the clock's location (the rate boundaries).
func (m *Meter) advanceLocked(now time.Time) {
	if !now.After(m.last) {
		return
	}
	t := m.last
	for t.Before(now) {
		var end time.Time
		if m.constantLocked() {
			y, mo, d := t.Date()
			end = time.Date(y, mo, d, t.Hour()+1, 0, 0, 0, t.Location())
		} else {
			end = t.Truncate(time.Minute).Add(time.Minute)
		}
		if !end.After(t) { // a time zone transition; never loop forever
			end = t.Add(time.Minute)
		}
		if end.After(now) {
			end = now
		}
		m.energy.add(milliwatts(m.powerLocked(t)), end.Sub(t), rateAt(t))
		t = end
	}
	m.last = now
}

// constantLocked reports whether the power cannot change within an hour.
func (m *Meter) constantLocked() bool { return !m.relayClosed || m.fixedLoad }

// powerLocked is the active power in W at t: nothing with the relay open,
// the knob's value if SetLoad fixed it, else the profile at the minute's
// start.
func (m *Meter) powerLocked(t time.Time) float64 {
	switch {
	case !m.relayClosed:
		return 0
	case m.fixedLoad:
		return m.load
	}
	w := m.profile(t.Truncate(time.Minute))
	if math.IsNaN(w) || math.IsInf(w, 0) {
		return 0
	}
	return math.Max(-maxPowerW, math.Min(maxPowerW, w))
}
