package store

// Schema 1's fixture: made by `go test -run TestMakeFixture ./store/` in a
// worktree of the last commit at schema 1 (see ../README).

import (
	"os"
	"testing"
	"time"
)

var fixtureT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func TestMakeFixture(t *testing.T) {
	out := os.Getenv("FIXTURE_OUT")
	if out == "" {
		t.Skip("FIXTURE_OUT not set")
	}
	db, err := Open(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 4 {
		at := fixtureT0.Add(time.Duration(i) * 15 * time.Minute)
		err := db.CommitCycle(Cycle{
			Readings: []Reading{
				{Meter: "M-1", Time: at, ImportWh: 1000 + int64(i)*250, EnergyWh: map[string]int64{"export_kwh": 7}, Values: map[string]float64{"voltage_a": 229.5, "power": 1000}, Relay: "closed"},
				{Meter: "M-2", Time: at, ImportWh: 5000 + int64(i)*100, Values: map[string]float64{"power": 400}, Relay: "open"},
			},
			Energy: []IntervalEnergy{{Meter: "M-1", Time: at, Wh: 250}, {Meter: "M-2", Time: at, Wh: 100}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
