package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// bypassTrial is one meter's story: a load of watts, read every interval,
// cut off by a command; after the cut-off the counter stays still, or — a
// bridged relay — keeps rising at bypassW.
type bypassTrial struct {
	id       string
	model    string // kpm33b: counts in 0.01 kWh steps; sdm630: every float32 kWh
	watts    float64
	interval time.Duration
	startWh  float64
	bypassW  float64 // 0: an honest cut-off
}

// step is something that happens at a moment: a cycle committed, or a
// relay command read back.
type step struct {
	at     time.Time
	result *poll.Result
	meter  string // a read-back of meter's relay, open
}

// story plays tr out as the bus and enforcement would: each reading takes
// a few hundred milliseconds, its counter and relay registers read at
// different moments of it (in either order), and a cut-off command served
// between two of its transactions. It returns the steps in time order.
func (tr bypassTrial) story(rng *rand.Rand, t0 time.Time, readings int) []step {
	cutAt := t0.Add(time.Duration(3+rng.IntN(3))*tr.interval + time.Duration(rng.Int64N(int64(tr.interval))))
	openAt := cutAt.Add(30 * time.Millisecond) // the command's turnaround
	readBack := openAt.Add(40 * time.Millisecond)
	energyWh := func(at time.Time) float64 { // what the meter has counted by at
		if at.Before(openAt) {
			return tr.startWh + tr.watts*at.Sub(t0).Hours()
		}
		return tr.startWh + tr.watts*openAt.Sub(t0).Hours() + tr.bypassW*at.Sub(openAt).Hours()
	}
	steps := []step{{at: readBack.Add(time.Duration(rng.IntN(50)) * time.Millisecond), meter: tr.id}}
	for k := range readings {
		start := t0.Add(time.Duration(k) * tr.interval)
		took := time.Duration(50+rng.IntN(450)) * time.Millisecond
		if took >= tr.interval {
			took = tr.interval / 2
		}
		end := start.Add(took)
		counterAt := start.Add(time.Duration(rng.Int64N(int64(took))))
		relayAt := start.Add(time.Duration(rng.Int64N(int64(took))))
		var rd meter.Reading
		rd.Set(meter.Import, tr.registerKWh(energyWh(counterAt)))
		rd.Set(meter.VoltageA, 230)
		rd.Meter, rd.Time, rd.Relay = tr.id, end, meter.RelayClosed
		if !relayAt.Before(openAt) {
			rd.Relay = meter.RelayOpen
		}
		steps = append(steps, step{at: end.Add(5 * time.Millisecond), result: &poll.Result{Meter: tr.id, Start: start, Reading: rd}})
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at.Before(steps[j].at) })
	return steps
}

// registerKWh is what the meter's float32 register holds for wh: counted
// in whole 0.01 kWh (kpm33b here), or to the float's own precision.
func (tr bypassTrial) registerKWh(wh float64) float64 {
	if tr.model == "kpm33b" {
		return float64(float32(math.Floor(wh/10) / 100))
	}
	return float64(float32(wh / 1000))
}

func newBypassPipeline(t *testing.T, trials []bypassTrial) (*Pipeline, *live.Picture, *store.DB) {
	t.Helper()
	var b strings.Builder
	b.WriteString("site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\nmeters:\n")
	for i, tr := range trials {
		fmt.Fprintf(&b, "  - {id: %s, bus: b, address: %d, model: %s, role: public, rated_current: 2000}\n", tr.id, i+1, tr.model)
	}
	cfg, err := config.Parse("t.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "b.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t.Cleanup(func() { checkEventTexts(t, db) })
	lv := live.New(cfg, "test", db.Path(), time.Now)
	p, err := New(db, cfg, lv, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return p, lv, db
}

// play runs every trial's steps, interleaved in time, through p.
func play(p *Pipeline, lv *live.Picture, steps []step) {
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at.Before(steps[j].at) })
	for _, s := range steps {
		if s.result == nil {
			lv.SetRelay(s.meter, meter.RelayOpen.String(), s.at)
			continue
		}
		p.Cycle(context.Background(), poll.Cycle{Bus: "b", Start: s.result.Start, End: s.result.Reading.Time, Results: []poll.Result{*s.result}})
	}
}

func bypassEvents(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	evs, err := db.LastEvents(10_000)
	if err != nil {
		t.Fatal(err)
	}
	n := make(map[string]int)
	for _, e := range evs {
		if e.Kind == "bypass_suspected" {
			n[e.Meter]++
		}
	}
	return n
}

// Ordinary cut-offs under any load, at any interval, raise no bypass
// alarm: loads from 1 kW to 1 MW, read every 1 to 60 s, on an integer and
// a float32 counter, with the command landing anywhere in a reading. The
// same stories with the relay bridged after the cut-off are each flagged
// once.
func TestBypass_NoFalseAlarmOnCutOff(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var honest, bridged []bypassTrial
	for i := range 60 {
		tr := bypassTrial{
			id:       fmt.Sprintf("M-%d", i),
			model:    []string{"kpm33b", "sdm630"}[i%2],
			watts:    1000 * math.Pow(1000, rng.Float64()), // 1 kW … 1 MW, log-uniform
			interval: time.Duration(1+rng.IntN(60)) * time.Second,
			startWh:  float64(rng.Int64N(500_000_000)), // up to 500 MWh on the counter
		}
		if i < 4 { // the ends of the range, every time
			tr.watts = []float64{1000, 1e6, 1000, 1e6}[i]
			tr.interval = []time.Duration{time.Second, time.Second, time.Minute, time.Minute}[i]
		}
		honest = append(honest, tr)
		tr.id = fmt.Sprintf("B-%d", i)
		tr.bypassW = tr.watts
		bridged = append(bridged, tr)
	}
	p, lv, db := newBypassPipeline(t, append(append([]bypassTrial{}, honest...), bridged...))
	var steps []step
	for _, tr := range honest {
		steps = append(steps, tr.story(rng, t0, 12)...)
	}
	for _, tr := range bridged {
		// Enough readings for the bridged load to move the counter by more
		// than its resolution after the baseline reading.
		res := float64(meterModel(t, tr.model).ResolutionWh(int64(tr.startWh)+int64(tr.watts), 1))
		need := int(math.Ceil(2*res/(tr.bypassW*tr.interval.Hours()))) + 8
		steps = append(steps, tr.story(rng, t0, max(12, need))...)
	}
	play(p, lv, steps)
	got := bypassEvents(t, db)
	for _, tr := range honest {
		if got[tr.id] != 0 {
			t.Errorf("%s (%s, %.0f W every %s): %d bypass_suspected after an ordinary cut-off; want none", tr.id, tr.model, tr.watts, tr.interval, got[tr.id])
		}
	}
	for _, tr := range bridged {
		if got[tr.id] != 1 {
			t.Errorf("%s (%s, %.0f W every %s, bridged): %d bypass_suspected; want 1", tr.id, tr.model, tr.watts, tr.interval, got[tr.id])
		}
	}
}

// A relay opened by hand at the meter (no command, no read-back) is judged
// from the reading after the one that first showed it open: a small load
// left on is flagged, once; a counter that only rounds up by its last
// unit (1 Wh for a float32 kWh counter near 100 kWh) is not.
func TestBypass_OpenedWithoutCommand(t *testing.T) {
	trials := []bypassTrial{{id: "M-1", model: "kpm33b"}, {id: "M-2", model: "kpm33b"}}
	p, _, db := newBypassPipeline(t, trials)
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	feed := func(id string, k int, wh int64, relay meter.RelayState) {
		var rd meter.Reading
		rd.Set(meter.Import, float64(wh)/1000)
		rd.Set(meter.VoltageA, 230)
		start := t0.Add(time.Duration(k) * 10 * time.Second)
		rd.Meter, rd.Time, rd.Relay = id, start.Add(200*time.Millisecond), relay
		p.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: id, Start: start, Reading: rd}}})
	}
	for k, wh := range []int64{100_000, 100_500, 101_000} {
		feed("M-1", k, wh, meter.RelayClosed)
		feed("M-2", k, wh, meter.RelayClosed)
	}
	// M-1: opened during reading 3, which still counted 400 Wh of load;
	// then 1 Wh (one unit: rounding) and then a 40 Wh rise.
	feed("M-1", 3, 101_400, meter.RelayOpen)
	feed("M-1", 4, 101_400, meter.RelayOpen)
	feed("M-1", 5, 101_401, meter.RelayOpen)
	if n := bypassEvents(t, db)["M-1"]; n != 0 {
		t.Fatalf("%d bypass_suspected after the open reading's own energy and one unit of rounding; want none", n)
	}
	feed("M-1", 6, 101_440, meter.RelayOpen)
	feed("M-1", 7, 101_900, meter.RelayOpen)
	if n := bypassEvents(t, db)["M-1"]; n != 1 {
		t.Errorf("%d bypass_suspected after a 40 Wh rise behind an open relay; want 1", n)
	}
	// M-2: closed again, then opened again — a new spell, judged afresh.
	feed("M-2", 3, 101_400, meter.RelayOpen)
	feed("M-2", 4, 101_400, meter.RelayOpen)
	feed("M-2", 5, 101_500, meter.RelayOpen)
	feed("M-2", 6, 101_600, meter.RelayClosed)
	feed("M-2", 7, 102_000, meter.RelayOpen)
	feed("M-2", 8, 102_000, meter.RelayOpen)
	feed("M-2", 9, 102_300, meter.RelayOpen)
	if n := bypassEvents(t, db)["M-2"]; n != 2 {
		t.Errorf("%d bypass_suspected over two bridged spells; want 2", n)
	}
}

func meterModel(t *testing.T, name string) *meter.Model {
	t.Helper()
	c, err := meter.NewCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A relay restored and cut again between two readings (60 s apart) starts
// a new spell at the second read-back: the energy used while power was
// back is no theft.
func TestBypass_RecutBetweenReadings(t *testing.T) {
	p, lv, db := newBypassPipeline(t, []bypassTrial{{id: "M-1", model: "kpm33b"}})
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	feed := func(k int, wh int64, relay meter.RelayState) {
		var rd meter.Reading
		rd.Set(meter.Import, float64(wh)/1000)
		rd.Set(meter.VoltageA, 230)
		start := t0.Add(time.Duration(k) * time.Minute)
		rd.Meter, rd.Time, rd.Relay = "M-1", start.Add(200*time.Millisecond), relay
		p.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Start: start, Reading: rd}}})
	}
	feed(0, 100_000, meter.RelayClosed)
	feed(1, 101_000, meter.RelayClosed)
	lv.SetRelay("M-1", "open", t0.Add(90*time.Second)) // cut off
	feed(2, 101_500, meter.RelayOpen)
	feed(3, 101_500, meter.RelayOpen)
	feed(4, 101_500, meter.RelayOpen)                     // the spell's base
	lv.SetRelay("M-1", "closed", t0.Add(250*time.Second)) // restored…
	lv.SetRelay("M-1", "open", t0.Add(285*time.Second))   // …and cut again, 35 s of use later
	feed(5, 101_600, meter.RelayOpen)
	feed(6, 101_600, meter.RelayOpen)
	if n := bypassEvents(t, db)["M-1"]; n != 0 {
		t.Errorf("%d bypass_suspected for energy used between a restore and a new cut-off; want none", n)
	}
	feed(7, 101_700, meter.RelayOpen) // and a bridge after it is still caught
	if n := bypassEvents(t, db)["M-1"]; n != 1 {
		t.Errorf("%d bypass_suspected after the new spell's counter rose 100 Wh; want 1", n)
	}
}
