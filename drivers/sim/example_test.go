package sim_test

import (
	"fmt"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
)

// A fake clock drives a meter's energy: 2 kW for 90 minutes is 3 kWh, and
// nothing more while the relay is open.
func ExampleMeter_Snapshot() {
	now := time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC)
	m, err := sim.NewMeter(meter.KPM33B(), 1, sim.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	m.SetLoad(2000)
	now = now.Add(90 * time.Minute)
	m.SetRelay(false)
	now = now.Add(time.Hour)
	s := m.Snapshot()
	fmt.Println(s.ImportWh, "Wh;", s.Power, "W; relay closed:", s.RelayClosed)
	// Output: 3000 Wh; 0 W; relay closed: false
}
