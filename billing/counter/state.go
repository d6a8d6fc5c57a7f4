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
	// Chain numbers the meter's counter chains: 0 from its first reading,
	// one more at each reset or exchange. Every billed span lies on one
	// chain, and the caller records the chain with the charge so that a
	// ledger check can follow each counter on its own.
	Chain int `json:"chain,omitempty"`
	// Exchange is the last exchange record applied on this chain, or nil:
	// the same record sent again is recognised (ErrRepeated), and a jump
	// back to the old meter's level is not released as new energy.
	Exchange *ExchangeMark `json:"exchange,omitempty"`
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

// ExchangeMark is an applied exchange record.
type ExchangeMark struct {
	At         time.Time `json:"at"`
	OldFinalWh int64     `json:"old_final_wh"`
	NewStartWh int64     `json:"new_start_wh"`
}

// Span is energy billed on one counter chain: the counter rose from FromWh
// to ToWh over [From, To).
type Span struct {
	Chain        int
	FromWh, ToWh int64
	From, To     time.Time
	// RatesWh is the rise of the meter's own rate counters over the span,
	// or nil (see Outcome.RatesWh).
	RatesWh *[4]int64
}

// Wh is the span's energy.
func (s Span) Wh() int64 { return s.ToWh - s.FromWh }

// Break is where a counter chain starts: the meter's first reading
// (chain 0), a reset or an exchange. OldEndWh is the last counter billed on
// the chain before (for chain 0, nothing), NewStartWh the first billed on
// the new one. An exchange entered after its reset was accepted on evidence
// Amends that reset's break: the chain stays, its ends move to what the
// operator recorded.
type Break struct {
	Chain      int
	Kind       Verdict // Baseline, Reset or Exchanged
	At         time.Time
	OldEndWh   int64
	NewStartWh int64
	Amends     bool
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
	if st.Exchange != nil {
		x := *st.Exchange
		st.Exchange = &x
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
