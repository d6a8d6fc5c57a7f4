package sim

import (
	"math"
	"time"
)

// Profile is a meter's load: the active power in W it draws at t while its
// relay is closed. A negative value is power sent back to the grid (it counts
// on the export counter). A Meter samples its profile once a minute, at the
// start of the minute, the way a demand interval does: energy between two
// reads is then an exact sum that does not depend on how often the meter is
// read, which is what lets a test predict a counter to the watt-hour.
type Profile func(t time.Time) float64

// Constant returns a profile that always draws w watts.
func Constant(w float64) Profile {
	return func(time.Time) float64 { return w }
}

// MallProfile returns the default load of a shop in a mall: base watts
// shaped by the opening hours (about 15 % at night for refrigeration and
// standby, ramping up from 09:00, busiest in the evening, down after 21:00)
// with ±10 % noise that changes once a minute. The noise comes from seed
// through a hash of the minute, not from a generator with state, so the
// power at any instant is the same whichever order the meter is read in.
// The hour of day is t's own (the location of the clock's times).
func MallProfile(base float64, seed int64) Profile {
	return func(t time.Time) float64 {
		h := float64(t.Hour()) + float64(t.Minute())/60
		return base * dayShape(h) * (1 + 0.1*noise(seed, minuteIndex(t), 0))
	}
}

// dayShape is the share of the base load drawn at hour h (0 ≤ h < 24),
// interpolated linearly between the hourly points below.
func dayShape(h float64) float64 {
	// Shops closed 22:00–09:00; lunch and evening peaks.
	points := [25]float64{
		0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.15, // 00–07
		0.2, 0.5, 0.9, 1.0, 1.1, 1.1, 1.0, 1.0, // 08–15
		1.0, 1.0, 1.2, 1.3, 1.3, 1.0, 0.4, 0.15, // 16–23
		0.15, // 24 = 00, to interpolate the last hour
	}
	if h < 0 || h >= 24 || math.IsNaN(h) {
		return points[0]
	}
	i := int(h)
	f := h - float64(i)
	return points[i]*(1-f) + points[i+1]*f
}

// minuteIndex numbers the minute t falls in (floor, also before 1970).
func minuteIndex(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 59) / 60
	}
	return s / 60
}

// noise returns a deterministic value in [-1, 1) for a seed, a minute and a
// channel (so voltage, frequency and load of one meter vary independently).
func noise(seed, minute int64, channel uint64) float64 {
	x := uint64(seed)*0x9E3779B97F4A7C15 ^ uint64(minute)*0xBF58476D1CE4E5B9 ^ channel*0x94D049BB133111EB
	x = splitmix64(x)
	return float64(x>>11)/(1<<52) - 1
}

// splitmix64 is the finaliser of SplitMix64: a fast hash with good avalanche.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}
