package counter_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/counter"
)

// The pipeline's loop for one meter: check each reading, charge what is
// accepted with the remainder carried in the State, keep the next State.
func Example() {
	price, _ := billing.ParsePrice("1.05")
	lim := counter.CircuitLimits(60, 3)
	start := time.Date(2026, 1, 12, 17, 0, 0, 0, time.UTC)
	var (
		st     counter.State
		posted billing.Money
	)
	for i, r := range []counter.Reading{
		{Wh: 31_057, At: start, MeterTime: start},
		{ZeroFrame: true, At: start.Add(time.Second)},
		{Wh: 31_057, At: start.Add(2 * time.Second), MeterTime: start}, // delivered again
		{Wh: 32_101, At: start.Add(15 * time.Minute), MeterTime: start.Add(15 * time.Minute)},
		{Wh: 990_000, At: start.Add(30 * time.Minute), MeterTime: start.Add(30 * time.Minute)},
		{Wh: 33_000, At: start.Add(45 * time.Minute), MeterTime: start.Add(45 * time.Minute)},
	} {
		o := counter.Check(st, r, lim)
		if o.Wh > 0 {
			fen, rem, err := billing.Charge(o.Next.Remainder, o.Wh, price)
			if err != nil {
				fmt.Println(err)
				return
			}
			posted, o.Next.Remainder = posted+fen, rem
		}
		fmt.Printf("%d: %-11s %4d Wh", i, o.Verdict, o.Wh)
		if o.Event != nil {
			fmt.Printf("  [%s]", o.Event.Kind)
		}
		fmt.Println()
		st = o.Next
	}
	fmt.Println("posted", posted, "remainder", st.Remainder)
	// Output:
	// 0: baseline       0 Wh
	// 1: zero_frame     0 Wh
	// 2: duplicate      0 Wh
	// 3: accepted    1044 Wh
	// 4: quarantined    0 Wh  [spike_quarantined]
	// 5: accepted     899 Wh  [spike_dropped]
	// posted 2.04 remainder 0.000150000
}

func TestEvent_String(t *testing.T) {
	at := time.Date(2026, 1, 12, 17, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		e    counter.Event
		want string
	}{
		{counter.Event{Kind: counter.EventCounterLower, Wh: 31_000, BaselineWh: 31_057, Needed: 3}, "counter 31.000 kWh is below the last accepted 31.057 kWh"},
		{counter.Event{Kind: counter.EventLowerCleared, Wh: 31_070, BaselineWh: 31_057, Readings: 2}, "2 lower reading(s) were glitches"},
		{counter.Event{Kind: counter.EventReset, Wh: 900, BaselineWh: 100_000, FirstWh: 0, Readings: 3, DroppedWh: 900_000}, "held jump to 900.000 kWh discarded"},
		{counter.Event{Kind: counter.EventSpike, Wh: 41_000, BaselineWh: 1_000, Limit: 16_885, Elapsed: 15 * time.Minute}, "in 15m0s, more than the circuit can draw (16.885 kWh)"},
		{counter.Event{Kind: counter.EventSpikeDropped, Wh: 41_000, BaselineWh: 1_000}, "held jump to 41.000 kWh discarded"},
		{counter.Event{Kind: counter.EventReleased, Wh: 41_000, BaselineWh: 1_000, BilledWh: 40_000}, "40.000 kWh billed"},
		{counter.Event{Kind: counter.EventExchange, Note: "before the new meter's first reading", Wh: 101_400, BaselineWh: 101_000, BilledWh: 400}, "old meter 101.000 → 101.400 kWh"},
		{counter.Event{Kind: counter.EventClockBack, At: at, Latest: at.Add(time.Hour)}, "2026-01-12T17:00:00Z is older than the latest held at 2026-01-12T18:00:00Z"},
		{counter.Event{Kind: "something_new"}, "something_new"},
		{counter.Event{Kind: counter.EventSpike, Wh: -1_500}, "-1.500 kWh"},
	} {
		if got := tt.e.String(); !strings.Contains(got, tt.want) {
			t.Errorf("%s: String() = %q; want it to contain %q", tt.e.Kind, got, tt.want)
		}
	}
}
