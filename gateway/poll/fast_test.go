package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// fastBus serves simulated KPM33Bs at present on a pseudo-terminal, with
// the line's wire timing, and returns a scheduler for meters (their model
// is the KPM33B).
func fastBus(t *testing.T, cfg Config, wire sim.WireTiming, present []uint8, meters []Meter) (*Scheduler, map[uint8]*sim.Meter, *captureSink) {
	t.Helper()
	sb, err := sim.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	sb.SetWireTiming(wire)
	sims := make(map[uint8]*sim.Meter)
	for _, a := range present {
		m, err := sim.NewMeter(meter.KPM33B(), a, sim.WithProfile(sim.Constant(2000)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Add(m); err != nil {
			t.Fatal(err)
		}
		sims[a] = m
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.ServeRTU(ctx, pty.Master) }()
	tr, err := modbus.Open(modbus.Config{Kind: modbus.RTU, Address: pty.Path, Timeout: 150 * time.Millisecond, Quiet: 20 * time.Millisecond, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		cancel()
		<-done
		pty.Close()
	})
	for i := range meters {
		meters[i].Model = meter.KPM33B()
	}
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	sink := &captureSink{}
	s, err := New(cfg, tr, meters, sink)
	if err != nil {
		t.Fatal(err)
	}
	return s, sims, sink
}

// reads is what a run's cycles held of each meter.
type reads struct {
	starts    map[string][]time.Time // read starts, in the order the sink got them
	inFast    map[string]int         // reads carried by Fast cycles
	fullCount int                    // cycles that were passes over the bus
}

func tally(t *testing.T, cycles []Cycle) reads {
	t.Helper()
	r := reads{starts: map[string][]time.Time{}, inFast: map[string]int{}}
	for _, c := range cycles {
		if !c.Fast {
			r.fullCount++
		}
		seen := map[string]bool{}
		for _, res := range c.Results {
			if res.Err != nil {
				continue
			}
			if seen[res.Meter] {
				t.Errorf("%s read twice in one cycle", res.Meter)
			}
			seen[res.Meter] = true
			if prev := r.starts[res.Meter]; len(prev) > 0 && !res.Start.After(prev[len(prev)-1]) {
				t.Errorf("%s: a reading begun %s reached the sink after one begun %s; want the order they were taken",
					res.Meter, res.Start.Format("15:04:05.000"), prev[len(prev)-1].Format("15:04:05.000"))
			}
			if !res.Reading.Time.After(res.Start) || res.Reading.Meter != res.Meter {
				t.Errorf("%s: reading %s at %v, begun %v", res.Meter, res.Reading.Meter, res.Reading.Time, res.Start)
			}
			r.starts[res.Meter] = append(r.starts[res.Meter], res.Start)
			if c.Fast {
				r.inFast[res.Meter]++
			}
		}
	}
	return r
}

// A meter with an interval of 1 s on a bus polled every 5 s is read about
// five times as often as its neighbours, each read in a Fast cycle of its
// own; its neighbours are still read once every cycle, and a relay command
// still jumps the queue.
func TestScheduler_FastMeterReadMoreOften(t *testing.T) {
	meters := []Meter{{ID: "M1", Address: 1, Interval: time.Second}, {ID: "M2", Address: 2}, {ID: "M3", Address: 3}, {ID: "M4", Address: 4}}
	s, sims, sink := fastBus(t, Config{Bus: "t", Interval: 5 * time.Second}, sim.WireTiming{}, []uint8{1, 2, 3, 4}, meters)
	stop := runFor(t, s)
	time.Sleep(7 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if out, err := s.SwitchRelay(ctx, "M3", false); err != nil || out.State != meter.RelayOpen {
		t.Errorf("SwitchRelay(M3, open) = %v, %v; want open", out.State, err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("relay command took %v beside a fast meter; want it to jump the queue", took)
	}
	if sims[3].Snapshot().RelayClosed {
		t.Error("M3's relay still closed")
	}
	time.Sleep(5500 * time.Millisecond) // stopped between the third cycle and the fourth
	stop()
	cycles := sink.snapshot()
	r := tally(t, cycles)
	// Cycles at 0, 5 and 10 s; M1 at 0, 1, …, 12 s.
	var full []Cycle
	for _, c := range cycles {
		if !c.Fast {
			full = append(full, c)
		}
	}
	if len(full) != 3 {
		t.Fatalf("%d cycles of the bus in 12.5 s at 5 s; want 3", len(full))
	}
	for _, id := range []string{"M2", "M3", "M4"} {
		if n := len(r.starts[id]); n != 3 || r.inFast[id] != 0 {
			t.Errorf("%s read %d times (%d in fast cycles) in 3 cycles; want once a cycle, never in a fast one", id, n, r.inFast[id])
		}
	}
	fast := r.starts["M1"]
	if r.inFast["M1"] != len(fast) {
		t.Errorf("M1 read %d times, %d of them in fast cycles; want all", len(fast), r.inFast["M1"])
	}
	// Over the two cycles from the first to the third: 10 s.
	within := 0
	for _, st := range fast {
		if !st.Before(full[0].Start) && st.Before(full[2].Start) {
			within++
		}
	}
	if within < 9 || within > 11 {
		t.Errorf("M1 read %d times over two 5 s cycles at 1 s; want about 10, five times its neighbours' 2", within)
	}
	for i := 1; i < len(fast); i++ {
		if gap := fast[i].Sub(fast[i-1]); gap < 950*time.Millisecond || gap > 1300*time.Millisecond {
			t.Errorf("M1's reads %d and %d %v apart; want about 1 s", i-1, i, gap)
		}
	}
}

// On a bus whose cycle takes longer than a fast meter's interval (eight
// KPM33Bs at 9600 baud), the fast meter is read within the cycle when it
// comes due, between two of the cycle's meters; the cycle still reads each
// of them once.
func TestScheduler_FastMeterReadWithinALongCycle(t *testing.T) {
	var meters []Meter
	var present []uint8
	for a := uint8(1); a <= 8; a++ {
		m := Meter{ID: fmt.Sprintf("M%d", a), Address: a}
		if a == 8 {
			m.Interval = 400 * time.Millisecond
		}
		meters = append(meters, m)
		present = append(present, a)
	}
	wire := sim.WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: 10 * time.Millisecond}
	s, _, sink := fastBus(t, Config{Bus: "t", Interval: 10 * time.Second}, wire, present, meters)
	stop := runFor(t, s)
	deadline := time.Now().Add(20 * time.Second)
	for {
		cycles := sink.snapshot()
		full := 0
		for _, c := range cycles {
			if !c.Fast {
				full++
			}
		}
		if full >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	cycles := sink.snapshot()
	var first *Cycle
	for i := range cycles {
		if !cycles[i].Fast {
			first = &cycles[i]
			break
		}
	}
	if first == nil {
		t.Fatal("no cycle of the bus in 20 s")
	}
	took := first.End.Sub(first.Start)
	if len(first.Results) != 7 {
		t.Fatalf("the cycle read %d meters; want the 7 without an interval of their own", len(first.Results))
	}
	// The cycle's reads without the fast ones made during it.
	var fastIn []time.Time
	for _, st := range tally(t, cycles).starts["M8"] {
		if !st.Before(first.Start) && !st.After(first.End) {
			fastIn = append(fastIn, st)
		}
	}
	t.Logf("cycle of 7 meters took %v; M8 read %d times within it", took, len(fastIn))
	if took < time.Second {
		t.Fatalf("the cycle took %v; the test needs one longer than M8's 400 ms", took)
	}
	if want := int(took / (400 * time.Millisecond)); len(fastIn) < want-1 {
		t.Errorf("M8 read %d times during a %v cycle; want about %d (every 400 ms)", len(fastIn), took, want)
	}
	// Between two of M8's reads, at most one meter's read of the cycle
	// (about 190 ms at 9600 baud) beyond its interval.
	for i := 1; i < len(fastIn); i++ {
		if gap := fastIn[i].Sub(fastIn[i-1]); gap > 400*time.Millisecond+400*time.Millisecond {
			t.Errorf("M8's reads %v apart during the cycle; want at most its interval and one neighbour's read", gap)
		}
	}
}

// A fast meter that does not answer is backed off like any other: it is
// probed ever more rarely, and its neighbours are read every cycle.
func TestScheduler_AbsentFastMeterBackedOff(t *testing.T) {
	meters := []Meter{{ID: "M1", Address: 1}, {ID: "M2", Address: 2}, {ID: "M9", Address: 9, Interval: 100 * time.Millisecond}}
	s, _, sink := fastBus(t, Config{Bus: "t", Interval: 500 * time.Millisecond, MaxBackoff: time.Hour}, sim.WireTiming{}, []uint8{1, 2}, meters)
	stop := runFor(t, s)
	time.Sleep(5 * time.Second)
	stop()
	cycles := sink.snapshot()
	r := tally(t, cycles)
	probes := 0
	for _, c := range cycles {
		for _, res := range c.Results {
			if res.Meter == "M9" {
				probes++
				if !c.Fast || !errors.Is(res.Err, modbus.ErrTimeout) {
					t.Errorf("M9 in a cycle with Fast %v: err %v; want a timeout in a fast cycle", c.Fast, res.Err)
				}
			}
		}
	}
	// Two misses, then probes after 1, 2 s (the backoff starts at a
	// second): 4 or 5 in 5 s, against 50 reads had it answered.
	if probes < 3 || probes > 6 {
		t.Errorf("absent fast meter probed %d times in 5 s; want it backed off (3 to 6)", probes)
	}
	for _, id := range []string{"M1", "M2"} {
		if len(r.starts[id]) != r.fullCount || r.fullCount < 7 {
			t.Errorf("%s read %d times in %d cycles; want every cycle, at least 7", id, len(r.starts[id]), r.fullCount)
		}
	}
}

// An interval no shorter than the bus's reads the meter in every cycle.
func TestNew_IntervalNotShorterThanTheBus(t *testing.T) {
	meters := []Meter{{ID: "M1", Address: 1, Interval: 5 * time.Second}, {ID: "M2", Address: 2, Interval: 6 * time.Second}, {ID: "M3", Address: 3, Interval: time.Second}}
	s, _, _ := fastBus(t, Config{Bus: "t", Interval: 5 * time.Second}, sim.WireTiming{}, nil, meters)
	if len(s.fast) != 1 || s.fast[0].ID != "M3" {
		var ids []string
		for _, p := range s.fast {
			ids = append(ids, p.ID)
		}
		t.Errorf("fast meters %v; want M3 alone", ids)
	}
}

// hurrySink is a Sink that hurries the readings of one meter.
type hurrySink struct {
	captureSink
	meter string
}

func (h *hurrySink) Hurry(r Result) bool { return r.Meter == h.meter }

// A reading the sink hurries is handed over before the rest of its cycle
// is read: the cycle comes in two parts, the first Partial and ending with
// that reading, the second with the same start and the rest; every meter
// is still read once.
func TestScheduler_HurriedReadingHandedOverAtOnce(t *testing.T) {
	meters := []Meter{{ID: "M1", Address: 1}, {ID: "M2", Address: 2}, {ID: "M3", Address: 3}, {ID: "M4", Address: 4}}
	s, _, _ := fastBus(t, Config{Bus: "t"}, sim.WireTiming{}, []uint8{1, 2, 3, 4}, meters)
	sink := &hurrySink{meter: "M2"}
	s.sink = sink
	rest, split := s.cycle(context.Background(), time.Now())
	got := sink.snapshot()
	if !split || len(got) != 1 {
		t.Fatalf("split %v, %d cycles handed over during the cycle; want the first part", split, len(got))
	}
	part := got[0]
	ids := func(c Cycle) (out []string) {
		for _, r := range c.Results {
			out = append(out, r.Meter)
		}
		return out
	}
	if !part.Partial || fmt.Sprint(ids(part)) != "[M1 M2]" || rest.Partial || fmt.Sprint(ids(rest)) != "[M3 M4]" {
		t.Fatalf("parts %v (partial %v) and %v (partial %v); want [M1 M2] partial, then [M3 M4]", ids(part), part.Partial, ids(rest), rest.Partial)
	}
	if !rest.Start.Equal(part.Start) || part.End.After(rest.Results[0].Start) {
		t.Errorf("first part %v..%v, rest from %v with M3 begun %v; want one start, the part handed over before M3 was read",
			part.Start, part.End, rest.Start, rest.Results[0].Start)
	}
	// The last meter hurried: the cycle still ends with a Cycle, empty.
	sink.meter = "M4"
	sink.cycles = nil
	s.sink = sink
	stop := runFor(t, s)
	time.Sleep(300 * time.Millisecond)
	stop()
	got = sink.snapshot()
	if len(got) < 2 || !got[0].Partial || len(got[0].Results) != 4 || got[1].Partial || len(got[1].Results) != 0 {
		t.Errorf("cycles %+v; want all four in a partial one, then an empty one that ends the cycle", got)
	}
}
