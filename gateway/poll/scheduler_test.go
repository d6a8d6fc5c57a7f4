package poll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

type captureSink struct {
	mu     sync.Mutex
	cycles []Cycle
}

func (s *captureSink) Cycle(_ context.Context, c Cycle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cycles = append(s.cycles, c)
}

func (s *captureSink) snapshot() []Cycle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Cycle(nil), s.cycles...)
}

// bus serves simulated KPM33Bs at present on a pseudo-terminal and returns
// a scheduler for meters at every address in polled.
func bus(t *testing.T, cfg Config, present []uint8, polled []uint8) (*Scheduler, map[uint8]*sim.Meter, *captureSink) {
	t.Helper()
	return busWith(t, cfg, present, polled)
}

// busWith is bus with options for the present meters.
func busWith(t *testing.T, cfg Config, present []uint8, polled []uint8, opts ...sim.Option) (*Scheduler, map[uint8]*sim.Meter, *captureSink) {
	t.Helper()
	sb, err := sim.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	sims := make(map[uint8]*sim.Meter)
	for _, a := range present {
		m, err := sim.NewMeter(meter.KPM33B(), a, append([]sim.Option{sim.WithProfile(sim.Constant(2000))}, opts...)...)
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
	var meters []Meter
	for _, a := range polled {
		meters = append(meters, Meter{ID: "M" + string('0'+a), Address: a, Model: meter.KPM33B()})
	}
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	sink := &captureSink{}
	s, err := New(cfg, tr, meters, sink)
	if err != nil {
		t.Fatal(err)
	}
	return s, sims, sink
}

func runFor(t *testing.T, s *Scheduler) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return stop
}

// An absent meter is backed off: after two misses it is probed ever more
// rarely, while its neighbours are read every cycle; probes of several
// absent meters are spread over cycles.
func TestScheduler_BacksOffAbsentMeter(t *testing.T) {
	s, _, sink := bus(t, Config{Bus: "t", Interval: 100 * time.Millisecond, MaxBackoff: time.Hour}, []uint8{1, 2}, []uint8{1, 2, 3, 4, 5})
	stop := runFor(t, s)
	// The first two cycles take two tries of every absent meter each.
	time.Sleep(6 * time.Second)
	if took := stop(); took > time.Second {
		t.Errorf("Run took %v to stop; want well under a second", took)
	}
	cycles := sink.snapshot()
	if len(cycles) < 5 {
		t.Fatalf("only %d cycles in 6s", len(cycles))
	}
	tries := map[string]int{}
	for _, c := range cycles {
		for _, r := range c.Results {
			tries[r.Meter]++
			if (r.Meter == "M1" || r.Meter == "M2") && r.Err != nil {
				t.Errorf("present meter %s failed: %v", r.Meter, r.Err)
			}
			if r.Meter != "M1" && r.Meter != "M2" && !errors.Is(r.Err, modbus.ErrTimeout) {
				t.Errorf("absent meter: err = %v; want ErrTimeout", r.Err)
			}
		}
	}
	// The cycle under way when Run was stopped is handed on with the reads
	// it finished (the stop may fall between M1 and M2): every cycle
	// before it read both.
	whole := cycles[:len(cycles)-1]
	read := map[string]int{}
	for _, c := range whole {
		for _, r := range c.Results {
			read[r.Meter]++
		}
	}
	if read["M1"] != len(whole) || read["M2"] != len(whole) {
		t.Errorf("present meters read %d and %d times in the %d cycles before the stop; want every cycle", read["M1"], read["M2"], len(whole))
	}
	// Probes at cycle 1, 2, then after 1, 2, 4, … intervals: far fewer than cycles.
	for _, id := range []string{"M3", "M4", "M5"} {
		if tries[id] > 6 || tries[id] >= len(cycles) {
			t.Errorf("absent meter %s probed %d times in %d cycles; want it backed off", id, tries[id], len(cycles))
		}
	}
	for i, c := range cycles[2:] {
		absent := 0
		for _, r := range c.Results {
			if r.Err != nil {
				absent++
			}
		}
		if absent > 1 {
			t.Errorf("cycle %d probed %d absent meters; want at most one per cycle once they are backed off", i+2, absent)
		}
	}
	for _, st := range s.Status() {
		if st.ID == "M3" && (st.Online || st.NextProbe.IsZero()) {
			t.Errorf("M3 status = %+v; want offline with a next probe time", st)
		}
		if st.ID == "M1" && (!st.Online || st.Stats.Requests == 0 || st.Stats.P50 <= 0) {
			t.Errorf("M1 status = %+v; want online with latency stats", st)
		}
	}
}

// A relay command jumps the queue: it is carried out while the bus is being
// polled, the relay is read back, and the simulated load really drops.
func TestScheduler_RelayCommandJumpsTheQueue(t *testing.T) {
	present := []uint8{1, 2, 3, 4, 5, 6}
	s, sims, _ := bus(t, Config{Bus: "t", Interval: 10 * time.Millisecond}, present, present)
	runFor(t, s)
	time.Sleep(200 * time.Millisecond) // the bus is busy polling

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	out, err := s.SwitchRelay(ctx, "M4", false)
	took := time.Since(start)
	if err != nil || out.State != meter.RelayOpen {
		t.Fatalf("SwitchRelay(M4, open) = %v, %v; want open", out.State, err)
	}
	if out.Wait > took || out.Took > took || out.Took <= 0 {
		t.Errorf("outcome wait %v took %v; want parts of the %v the call took", out.Wait, out.Took, took)
	}
	if snap := sims[4].Snapshot(); snap.RelayClosed || snap.Power != 0 {
		t.Errorf("simulated M4 after cut-off: relay closed %v, power %v W; want open, 0", snap.RelayClosed, snap.Power)
	}
	// Three transactions of its own (mode, coil, read back) plus at most
	// the poll transaction on the wire; on a pty each is a few ms.
	if took > 500*time.Millisecond {
		t.Errorf("relay command took %v while polling; want it to jump the queue", took)
	}
	if _, err := s.SwitchRelay(ctx, "M9", true); err == nil {
		t.Error("SwitchRelay on an unknown meter succeeded")
	}
}

// A command whose caller gave up waiting is not carried out later: the
// caller may have reported a failure or queued the opposite command.
func TestScheduler_RelayCommandHonoursContext(t *testing.T) {
	s, sims, _ := bus(t, Config{Bus: "t"}, []uint8{1}, []uint8{1})
	// Run is not started: nobody serves the lane.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.SwitchRelay(ctx, "M1", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SwitchRelay with nobody polling: err = %v; want DeadlineExceeded", err)
	}
	stop := runFor(t, s)
	time.Sleep(300 * time.Millisecond) // the lane is served at once when Run starts
	stop()
	if !sims[1].Snapshot().RelayClosed {
		t.Error("the relay opened for a command whose caller had given up")
	}
}

// A meter that timed out and now answers with bad frames is there: it
// leaves backoff, and does not take every probe from an absent neighbour.
func TestScheduler_ProbesAreShared(t *testing.T) {
	s, sims, sink := bus(t, Config{Bus: "t", Interval: 50 * time.Millisecond, MaxBackoff: time.Hour}, []uint8{1}, []uint8{1, 2})
	// Two reads time out, each on both of its tries.
	if err := sims[1].InjectNext(sim.NoReply, 4); err != nil {
		t.Fatal(err)
	}
	if err := sims[1].SetFaultRates(map[sim.FaultKind]float64{sim.BadCRC: 1}); err != nil {
		t.Fatal(err)
	}
	stop := runFor(t, s)
	time.Sleep(5 * time.Second)
	stop()
	probes := 0
	for _, c := range sink.snapshot() {
		for _, r := range c.Results {
			if r.Meter == "M2" {
				probes++
			}
		}
	}
	// Cycles 1 and 2 (about 2.4 s with two reads of two tries each), then
	// 1 s of backoff; the next comes 2 s later, past the end.
	if probes < 3 {
		t.Errorf("absent M2 probed %d times in 5 s; want at least 3", probes)
	}
}

// Meters built on libmodbus ignore the frame after a request to an absent
// address; polled behind one, they are still read every cycle, because a
// request that gets no reply is sent once more at once.
func TestScheduler_LibmodbusMetersBehindAnAbsentOne(t *testing.T) {
	s, _, sink := busWith(t, Config{Bus: "t", Interval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		[]uint8{2, 4}, []uint8{1, 2, 3, 4}, sim.WithLibmodbusSlave())
	stop := runFor(t, s)
	time.Sleep(3 * time.Second)
	stop()
	reads, probes := 0, 0
	for _, c := range sink.snapshot() {
		for _, r := range c.Results {
			switch r.Meter {
			case "M2", "M4":
				reads++
				if r.Err != nil {
					t.Errorf("libmodbus meter %s behind an absent one: %v", r.Meter, r.Err)
				}
			default:
				probes++
			}
		}
	}
	if reads < 4 || probes < 4 {
		t.Errorf("%d reads of present meters, %d probes of absent ones; want at least 4 of each", reads, probes)
	}
}

// A request answered only on its second try is a success that still shows:
// a meter losing half its replies must not look clean.
func TestScheduler_RetriedTimeoutShown(t *testing.T) {
	s, sims, _ := busWith(t, Config{Bus: "t"}, []uint8{1}, []uint8{1})
	if err := sims[1].InjectNext(sim.NoReply, 1); err != nil {
		t.Fatal(err)
	}
	c, _ := s.cycle(context.Background(), time.Now())
	if len(c.Results) != 1 || c.Results[0].Err != nil {
		t.Fatalf("cycle = %+v; want M1 read on the second try", c.Results)
	}
	st := s.Status()[0].Stats
	if st.Errors[retriedKind] != 1 || st.Errors["timeout"] != 0 {
		t.Errorf("errors %v; want %s 1 and no timeout", st.Errors, retriedKind)
	}
}

// The pause is never shorter than the line's silent interval.
func TestNew_PauseAtLeastSilentInterval(t *testing.T) {
	for _, tt := range []struct {
		pause, want time.Duration
	}{
		{0, 4010417}, // 3.5 characters at 9600 8E1
		{time.Millisecond, 4010417},
		{25 * time.Millisecond, 25 * time.Millisecond},
	} {
		s, _, _ := bus(t, Config{Bus: "t", Pause: tt.pause}, nil, []uint8{1})
		if s.cfg.Pause != tt.want {
			t.Errorf("Pause %v became %v; want %v", tt.pause, s.cfg.Pause, tt.want)
		}
	}
}

func TestScheduler_QueuedCommandsAnsweredOnStop(t *testing.T) {
	s, _, _ := bus(t, Config{Bus: "t"}, []uint8{1}, []uint8{1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := s.SwitchRelay(ctx, "M1", false); errc <- err }()
	time.Sleep(50 * time.Millisecond) // queued; nobody serves it yet
	runCtx, stopRun := context.WithCancel(context.Background())
	stopRun() // Run starts already cancelled: it must answer the queue
	if err := s.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStopped) {
			t.Errorf("queued command on a stopped bus: err = %v; want ErrStopped", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("queued command never answered after Run returned")
	}
}

func TestStats_Percentiles(t *testing.T) {
	var s meterStats
	now := time.Unix(0, 0)
	for i := 1; i <= 100; i++ {
		s.record(time.Duration(i)*time.Millisecond, "", nil, now)
	}
	s.record(0, "timeout", modbus.ErrTimeout, now)
	got := s.snapshot()
	if got.P50 != 50*time.Millisecond || got.P99 != 99*time.Millisecond {
		t.Errorf("p50, p99 = %v, %v; want 50ms, 99ms", got.P50, got.P99)
	}
	if got.Requests != 101 || got.Errors["timeout"] != 1 || got.LastError == "" {
		t.Errorf("stats = %+v", got)
	}
}

// When the link itself is down (a converter unreachable) the rest of the
// cycle is skipped: one connect attempt per cycle, not one per meter.
func TestScheduler_LinkDownSkipsTheCycle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every connect is refused
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var meters []Meter
	for a := uint8(1); a <= 5; a++ {
		meters = append(meters, Meter{ID: fmt.Sprintf("M%d", a), Address: a, Model: meter.KPM33B()})
	}
	sink := &captureSink{}
	var logged bytes.Buffer
	s, err := New(Config{Bus: "lan", Log: zerolog.New(&logged)}, tr, meters, sink)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.cycle(context.Background(), time.Now())
	s.cycle(context.Background(), time.Now())
	s.cycle(context.Background(), time.Now())
	// The link going down is one line, not one per cycle.
	if n := strings.Count(logged.String(), "bus link down"); n != 1 {
		t.Errorf("%d \"bus link down\" lines over three cycles; want 1:\n%s", n, logged.String())
	}
	if len(c.Results) != 5 {
		t.Fatalf("%d results; want 5", len(c.Results))
	}
	for _, r := range c.Results {
		if !errors.Is(r.Err, modbus.ErrNoLink) {
			t.Errorf("%s: err = %v; want ErrNoLink", r.Meter, r.Err)
		}
	}
	for _, st := range s.Status() {
		if want := int64(0); st.ID != "M1" && st.Stats.Requests != want {
			t.Errorf("%s: %d requests sent; want none after the link failed", st.ID, st.Stats.Requests)
		}
		if st.ID == "M1" && st.Stats.Errors["no_link"] != 3 {
			t.Errorf("M1 errors = %v; want one no_link per cycle", st.Stats.Errors)
		}
	}
}

// Progress is called at each transaction and at least once a second while
// the bus waits, even with an hour to the next cycle: a supervisor takes
// its silence for a hang.
func TestScheduler_ProgressWhileIdle(t *testing.T) {
	var mu sync.Mutex
	var calls []time.Time
	progress := func() {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
	}
	s, _, sink := bus(t, Config{Bus: "t", Interval: time.Hour, Progress: progress}, []uint8{1}, []uint8{1})
	start := time.Now()
	stop := runFor(t, s)
	time.Sleep(1700 * time.Millisecond)
	stop()
	end := time.Now()
	if n := len(sink.snapshot()); n != 1 {
		t.Fatalf("%d cycles; want 1 (an hour's interval)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	requests := s.Status()[0].Stats.Requests
	if int64(len(calls)) < requests+2 {
		t.Errorf("Progress called %d times for %d transactions and a wait; want one per transaction and more while idle", len(calls), requests)
	}
	prev := start
	for _, c := range append(calls, end) {
		if gap := c.Sub(prev); gap > 1300*time.Millisecond {
			t.Errorf("%s without a call to Progress (at %s of %s); want one at least every %s", gap, prev.Sub(start), end.Sub(start), progressEvery)
		}
		prev = c
	}
}
