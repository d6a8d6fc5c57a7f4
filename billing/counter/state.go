package counter

import (
	"slices"
	"time"

	"mallgrid/billing"
)

// State is what the gateway remembers of one meter's counter between
// readings. It is plain data, persisted with the meter's charges in one
// transaction; the zero State is a meter never read.
type State struct {
	// Known is false until the first plausible reading.
	Known bool `json:"known"`
	// Baseline is the last accepted reading: the next rise is measured
	// from its counter and billed from its At.
	Baseline Sample `json:"baseline,omitzero"`
	// Lower holds the current run of consecutive readings below the
	// baseline, oldest first: the evidence of a reset, at most
	// Limits.ResetAfter − 1 long.
	Lower []Sample `json:"lower,omitempty"`
	// Quarantine is a jump held until an operator releases it, or nil.
	Quarantine *Quarantine `json:"quarantine,omitempty"`
	// AutoReset remembers the last reset accepted on evidence, so that an
	// exchange record entered afterwards can bill what the reset could
	// not: the old meter's last energy and the new one's first. Nil once
	// an exchange has used it.
	AutoReset *AutoReset `json:"auto_reset,omitempty"`
	// Remainder is what the meter's charges came to below a whole fen,
	// carried to its next charge. Check leaves it alone; the caller sets
	// it from billing.Charge.
	Remainder billing.Remainder `json:"remainder"`
}

// Sample is one reading as the State keeps it.
type Sample struct {
	Wh        int64     `json:"wh"`                  // import counter
	At        time.Time `json:"at"`                  // gateway time
	MeterTime time.Time `json:"meter_time,omitzero"` // the meter's clock, if it has one
	// RatesWh are the meter's sharp, peak, flat and valley counters, when
	// HasRates.
	RatesWh  [4]int64 `json:"rates_wh,omitzero"`
	HasRates bool     `json:"has_rates,omitempty"`
}

// Quarantine is a held jump: a counter that rose faster than the circuit
// can draw, kept out of billing until an operator releases it.
type Quarantine struct {
	// Held is the latest reading at the jumped level; a release bills
	// from the baseline up to it.
	Held Sample `json:"held"`
	// Since is the gateway time of the first reading of the jump.
	Since time.Time `json:"since"`
}

// AutoReset records a reset accepted on evidence.
type AutoReset struct {
	Old   Sample `json:"old"`   // the baseline before the reset: the old counter's last accepted reading
	First Sample `json:"first"` // the first reading of the new counter
}

func sampleOf(r Reading) Sample {
	s := Sample{Wh: r.Wh, At: r.At, MeterTime: r.MeterTime}
	if r.RatesWh != nil {
		s.RatesWh, s.HasRates = *r.RatesWh, true
	}
	return s
}

// clone copies what Check may change, so that the caller's State is never
// touched through a shared slice or pointer.
func (st State) clone() State {
	st.Lower = slices.Clone(st.Lower)
	if st.Quarantine != nil {
		q := *st.Quarantine
		st.Quarantine = &q
	}
	if st.AutoReset != nil {
		a := *st.AutoReset
		st.AutoReset = &a
	}
	return st
}

// latest is the gateway time of the newest reading the State holds.
func (st State) latest() time.Time {
	t := st.Baseline.At
	if n := len(st.Lower); n > 0 && st.Lower[n-1].At.After(t) {
		t = st.Lower[n-1].At
	}
	if st.Quarantine != nil && st.Quarantine.Held.At.After(t) {
		t = st.Quarantine.Held.At
	}
	return t
}

// rateDeltas is the rise of each rate counter from a to b, or nil when
// either lacks them or one went down (the meter's rate counters were
// reset, so their rise says nothing).
func rateDeltas(a, b Sample) *[4]int64 {
	if !a.HasRates || !b.HasRates {
		return nil
	}
	var d [4]int64
	for i := range d {
		if b.RatesWh[i] < a.RatesWh[i] {
			return nil
		}
		d[i] = b.RatesWh[i] - a.RatesWh[i]
	}
	return &d
}
