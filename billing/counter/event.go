package counter

import (
	"fmt"
	"time"
)

// EventKind names what happened to a meter's counter.
type EventKind string

// Event kinds, each raised once per episode.
const (
	// EventCounterLower: the first reading below the baseline; not billed
	// until a reset is proven or an exchange is recorded.
	EventCounterLower EventKind = "counter_lower"
	// EventLowerCleared: the counter came back to its baseline; the lower
	// readings were glitches and were not billed.
	EventLowerCleared EventKind = "lower_cleared"
	// EventReset: a run of lower readings was accepted as a reset; the
	// energy between the old baseline and the run's first reading is not
	// billed unless an exchange is recorded.
	EventReset EventKind = "reset"
	// EventSpike: a rise above what the circuit can draw is held.
	EventSpike EventKind = "spike_quarantined"
	// EventSpikeDropped: the counter came back below the held jump and
	// within the limit, so the jump was a glitch and is discarded.
	EventSpikeDropped EventKind = "spike_dropped"
	// EventReleased: an operator released a held jump; it is billed.
	EventReleased EventKind = "spike_released"
	// EventExchange: an operator's meter-exchange record was applied.
	EventExchange EventKind = "exchange"
	// EventClockBack: a reading older than the latest one held was
	// refused.
	EventClockBack EventKind = "clock_back"
)

// Event is something about a meter's counter an operator must hear about.
// Fields that do not apply to its Kind are zero.
type Event struct {
	Kind EventKind
	At   time.Time // gateway time of the reading or of the operator's action
	// Wh is the counter that raised the event (for spike_dropped, the
	// discarded held counter; for exchange, the old meter's final reading).
	Wh         int64
	BaselineWh int64         // the baseline it was judged against
	Limit      int64         // spike_quarantined: the largest plausible rise
	Latest     time.Time     // clock_back: the latest reading already held
	Readings   int           // lower readings so far (counter_lower, reset, lower_cleared)
	Needed     int           // counter_lower: lower readings that make a reset
	FirstWh    int64         // reset: the run's first counter; exchange: the new meter's start
	DroppedWh  int64         // reset: a held jump of the old counter, discarded (0: none)
	BilledWh   int64         // spike_released, exchange: the energy billed by the action
	Note       string        // exchange: which case of the record was applied
	Case       string        // exchange: Note as a code: pending, after_reset, before_first
	Elapsed    time.Duration // spike_quarantined: time since the baseline
}

// String writes the event as a sentence for a log or an operator's screen.
func (e Event) String() string {
	switch e.Kind {
	case EventCounterLower:
		return fmt.Sprintf("counter %s kWh is below the last accepted %s kWh: not billed; %d consecutive lower readings make a reset",
			kwh(e.Wh), kwh(e.BaselineWh), e.Needed)
	case EventLowerCleared:
		return fmt.Sprintf("counter back at %s kWh, not below %s kWh: %d lower reading(s) were glitches and were not billed",
			kwh(e.Wh), kwh(e.BaselineWh), e.Readings)
	case EventReset:
		s := fmt.Sprintf("counter reset accepted after %d lower readings: %s kWh → %s kWh; billed from %s kWh; energy between %s kWh on the old counter and %s kWh on the new is not billed without an exchange record",
			e.Readings, kwh(e.BaselineWh), kwh(e.Wh), kwh(e.FirstWh), kwh(e.BaselineWh), kwh(e.FirstWh))
		if e.DroppedWh != 0 {
			s += fmt.Sprintf("; held jump to %s kWh discarded", kwh(e.DroppedWh))
		}
		return s
	case EventSpike:
		return fmt.Sprintf("counter jumped %s kWh → %s kWh in %s, more than the circuit can draw (%s kWh): held until an operator releases it",
			kwh(e.BaselineWh), kwh(e.Wh), e.Elapsed, kwh(e.Limit))
	case EventSpikeDropped:
		return fmt.Sprintf("held jump to %s kWh discarded: the counter came back within the limit of %s kWh", kwh(e.Wh), kwh(e.BaselineWh))
	case EventReleased:
		return fmt.Sprintf("operator released the jump %s kWh → %s kWh: %s kWh billed", kwh(e.BaselineWh), kwh(e.Wh), kwh(e.BilledWh))
	case EventExchange:
		return fmt.Sprintf("meter exchange applied (%s): old meter %s → %s kWh, new meter from %s kWh; %s kWh billed",
			e.Note, kwh(e.BaselineWh), kwh(e.Wh), kwh(e.FirstWh), kwh(e.BilledWh))
	case EventClockBack:
		return fmt.Sprintf("reading at %s is older than the latest held at %s: refused", e.At.Format(time.RFC3339), e.Latest.Format(time.RFC3339))
	}
	return string(e.Kind)
}

// kwh writes Wh as exact kWh with three decimals.
func kwh(wh int64) string {
	sign := ""
	u := uint64(wh)
	if wh < 0 {
		sign, u = "-", uint64(-(wh+1))+1
	}
	return fmt.Sprintf("%s%d.%03d", sign, u/1000, u%1000)
}
