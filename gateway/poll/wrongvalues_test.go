package poll

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// clockRecorder is a simulated meter's clock: real time, remembering the
// first reading, so the test knows when the meter's counter started.
type clockRecorder struct {
	mu    sync.Mutex
	first time.Time
}

func (c *clockRecorder) now() time.Time {
	t := time.Now()
	c.mu.Lock()
	if c.first.IsZero() {
		c.first = t
	}
	c.mu.Unlock()
	return t
}

// TestNoWrongValues polls a shared bus of meters whose every value is
// predictable — a constant load of its own per meter, so the counter is a
// straight line in time — while 5 % of transactions are faulted: late
// replies, replies from the wrong slave, bad CRCs, garbage, truncated
// frames. Every reading that comes out must carry, for every value, what
// its meter held between the start and the end of the read.
//
// Late replies come after the timeout but within the quiet time that
// follows it. On RTU nothing tells a reply later than that from an answer
// (shared/NOTES.md): the timeout must exceed the meter's worst response.
//
// With one meter the scheduler asks the same meter the same question right
// after a fault, which is where a leftover reply would do harm; with eight,
// a leftover lands in a neighbour's transaction.
func TestNoWrongValues(t *testing.T) {
	for _, meters := range []int{1, 8} {
		t.Run(fmt.Sprintf("%d meters", meters), func(t *testing.T) { noWrongValues(t, meters) })
	}
}

func noWrongValues(t *testing.T, meters int) {
	const (
		faultRate   = 0.01 // per kind; five kinds make 5 %
		baseStartWh = 1_000_000
		timeout     = 150 * time.Millisecond
		quiet       = 150 * time.Millisecond
	)
	bus, err := sim.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	loads := map[string]float64{}
	clocks := map[string]*clockRecorder{}
	starts := map[string]int64{}
	var sims []*sim.Meter
	var polled []Meter
	for a := 1; a <= meters; a++ {
		id := fmt.Sprintf("M%d", a)
		clk := &clockRecorder{}
		// 120 kW × a: the counter rises 33 Wh/s per unit of a, so a value
		// from even one timeout ago is off by many Wh.
		load := float64(a) * 120_000
		start := int64(a) * baseStartWh
		m, err := sim.NewMeter(meter.KPM33B(), uint8(a), sim.WithClock(clk.now), sim.WithProfile(sim.Constant(load)), sim.WithImportWh(start), sim.WithSeed(int64(a)))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetFaultRates(map[sim.FaultKind]float64{
			sim.Late: faultRate, sim.WrongSlave: faultRate, sim.BadCRC: faultRate, sim.Garbage: faultRate, sim.Truncated: faultRate,
		}); err != nil {
			t.Fatal(err)
		}
		m.SetLateDelay(timeout + quiet/3)
		if err := bus.Add(m); err != nil {
			t.Fatal(err)
		}
		loads[id], clocks[id], starts[id] = load, clk, start
		sims = append(sims, m)
		polled = append(polled, Meter{ID: id, Address: uint8(a), Model: meter.KPM33B()})
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- bus.ServeRTU(ctx, pty.Master) }()
	tr, err := modbus.Open(modbus.Config{Kind: modbus.RTU, Address: pty.Path, Timeout: timeout, Quiet: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(); cancel(); <-served; pty.Close() })

	sink := &checkSink{t: t, loads: loads, clocks: clocks, starts: starts}
	sched, err := New(Config{Bus: "noisy", Interval: time.Millisecond, Log: zerolog.Nop()}, tr, polled, sink)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- sched.Run(runCtx) }()

	transactions := func() (n, faults uint64) {
		for _, m := range sims {
			st := m.Stats()
			n += st.Requests
			for _, f := range st.Faults {
				faults += f
			}
		}
		return n, faults
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		time.Sleep(100 * time.Millisecond)
		if n, _ := transactions(); n >= noWrongValuesTransactions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("too slow: not enough transactions in 10 minutes")
		}
	}
	stopRun()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	n, faults := transactions()
	good, bad := sink.counts()
	t.Logf("%d transactions, %d faults injected (%.1f %%), %d readings accepted, %d reads failed", n, faults, 100*float64(faults)/float64(n), good, bad)
	if faults < n/40 {
		t.Errorf("only %d faults in %d transactions; the test wants about 5 %%", faults, n)
	}
	if good < int(n)/10 {
		t.Errorf("only %d readings from %d transactions", good, n)
	}
}

// checkSink checks every reading against the meters' straight lines.
type checkSink struct {
	t      *testing.T
	loads  map[string]float64
	clocks map[string]*clockRecorder
	starts map[string]int64

	mu        sync.Mutex
	good, bad int
}

func (s *checkSink) counts() (good, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.good, s.bad
}

func (s *checkSink) Cycle(_ context.Context, c Cycle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range c.Results {
		if r.Err != nil {
			s.bad++
			continue
		}
		s.good++
		s.check(r)
	}
}

// whAt is the counter of meter id at t: start + load × elapsed, floored to
// the Wh, as the simulator integrates it.
func (s *checkSink) whAt(id string, t time.Time) int64 {
	first := s.clocks[id].first
	hours := t.Sub(first).Hours()
	return s.starts[id] + int64(math.Floor(s.loads[id]*hours))
}

func (s *checkSink) check(r Result) {
	t := s.t
	id := r.Meter
	wh, ok := r.Reading.ImportWh()
	if !ok {
		t.Errorf("%s: reading without an import counter", id)
		return
	}
	// The counter went out as float32 kWh: allow its rounding (under
	// 1 Wh at these values) on either side of the read's time window.
	lo, hi := s.whAt(id, r.Start)-2, s.whAt(id, r.Reading.Time)+2
	if wh < lo || wh > hi {
		t.Errorf("%s: import %d Wh, but the meter held %d..%d Wh during the read (%v..%v)",
			id, wh, lo+2, hi-2, r.Start.Format("15:04:05.000"), r.Reading.Time.Format("15:04:05.000"))
	}
	if p, _ := r.Reading.Value(meter.Power); p != s.loads[id] {
		t.Errorf("%s: power %v W; the meter draws %v W", id, p, s.loads[id])
	}
	if v, _ := r.Reading.Value(meter.VoltageA); v < 220 || v > 240 {
		t.Errorf("%s: voltage %v V; the meter holds 230 ± 3", id, v)
	}
	if r.Reading.Relay != meter.RelayClosed {
		t.Errorf("%s: relay %v; the meter's is closed", id, r.Reading.Relay)
	}
}
