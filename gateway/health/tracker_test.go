package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// clock is a fake clock moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// published keeps what the tracker hands to live subscribers.
type published struct {
	mu  sync.Mutex
	evs []store.Event
}

func (p *published) Publish(evs []store.Event) {
	p.mu.Lock()
	p.evs = append(p.evs, evs...)
	p.mu.Unlock()
}

// rig is a tracker over bus "a" (meters M-1, M-2) and bus "b" (M-3) that
// records into a real database under t.TempDir.
type rig struct {
	t     *testing.T
	clk   *clock
	db    *store.DB
	pub   *published
	log   *bytes.Buffer
	tr    *Tracker
	seen  int // events already returned by newEvents
	start time.Time
}

var testBuses = []Bus{
	{Name: "a", Port: "/dev/ttyUSB0", Meters: []Meter{{ID: "M-1", Tenant: "T-1", Address: 1}, {ID: "M-2", Tenant: "T-2", Address: 2}}},
	{Name: "b", Port: "/dev/ttyUSB1", Meters: []Meter{{ID: "M-3", Address: 1}}},
	{Name: "empty", Port: "/dev/ttyUSB2"},
}

func newRig(t *testing.T, seed ...store.Event) *rig {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "h.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t.Cleanup(func() { checkEventTexts(t, db) })
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	r := &rig{t: t, clk: &clock{t: start}, db: db, pub: &published{}, log: &bytes.Buffer{}, start: start}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	r.tr = New(Options{Buses: testBuses, Now: r.clk.Now, Location: shanghai, Log: zerolog.New(r.log),
		Recorder: db, Publisher: r.pub})
	if len(seed) > 0 {
		r.tr.Restore(seed)
	}
	return r
}

var errTimeout = fmt.Errorf("meter addr 1: %w", modbus.ErrTimeout)

// cycle feeds bus one cycle at the clock's time: ok meters answer, the
// others time out.
func (r *rig) cycle(bus string, ok []string, failed []string) {
	now := r.clk.Now()
	c := poll.Cycle{Bus: bus, Start: now, End: now}
	for _, id := range ok {
		c.Results = append(c.Results, poll.Result{Meter: id, Start: now, Reading: meter.Reading{Meter: id, Time: now}})
	}
	for _, id := range failed {
		c.Results = append(c.Results, poll.Result{Meter: id, Start: now, Err: errTimeout})
	}
	r.tr.Cycle(c)
}

// newEvents returns the kinds and subjects ("meter_offline M-1",
// "bus_down a") stored since the last call, checking each was also
// published with the same id.
func (r *rig) newEvents() []string {
	r.t.Helper()
	evs, err := r.db.EventsAfter(0, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	r.pub.mu.Lock()
	pub := slices.Clone(r.pub.evs)
	r.pub.mu.Unlock()
	if len(pub) != len(evs) {
		r.t.Fatalf("%d events stored, %d published; want each stored event published", len(evs), len(pub))
	}
	var out []string
	for i, e := range evs[r.seen:] {
		if pub[r.seen+i].ID != e.ID {
			r.t.Fatalf("published event %d has id %d; stored %d", r.seen+i, pub[r.seen+i].ID, e.ID)
		}
		subject := e.Meter
		if strings.HasPrefix(e.Kind, "bus_") {
			subject = e.Bus
			if named := strings.Fields(e.Text)[1]; named != e.Bus {
				r.t.Errorf("%s event names bus %q in its text, %q in its field", e.Kind, named, e.Bus)
			}
		} else if want := busOf(e.Meter); e.Bus != want {
			r.t.Errorf("%s of %s names bus %q; want %q", e.Kind, e.Meter, e.Bus, want)
		}
		out = append(out, e.Kind+" "+subject)
	}
	r.seen = len(evs)
	return out
}

// busOf is the test bus meter id is on.
func busOf(id string) string {
	for _, b := range testBuses {
		for _, m := range b.Meters {
			if m.ID == id {
				return b.Name
			}
		}
	}
	return ""
}

func (r *rig) wantEvents(when string, want ...string) {
	r.t.Helper()
	if got := r.newEvents(); !slices.Equal(got, want) {
		r.t.Errorf("%s: events %q; want %q", when, got, want)
	}
}

func TestTracker_MeterOffline_AfterReadsAndTime(t *testing.T) {
	r := newRig(t)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	r.cycle("b", []string{"M-3"}, nil)
	// Three failed reads within seconds: not yet an outage.
	for range 3 {
		r.clk.Add(time.Second)
		r.cycle("a", []string{"M-2"}, []string{"M-1"})
	}
	r.wantEvents("after 3 failures in 3s")
	// The poller backs it off: no more results, only time passes.
	r.clk.Add(DefaultOfflineAfter - 4*time.Second)
	r.tr.Check()
	r.wantEvents("29s after its last answer")
	r.clk.Add(time.Second)
	r.tr.Check()
	r.wantEvents("30s after its last answer", "meter_offline M-1")
	// Neither time nor more failures repeat it.
	for range 10 {
		r.clk.Add(time.Minute)
		r.cycle("a", []string{"M-2"}, []string{"M-1"})
		r.cycle("b", []string{"M-3"}, nil)
		r.tr.Check()
	}
	r.wantEvents("ten more minutes")
	if p := r.tr.Problems(); p != nil {
		t.Errorf("problems with one meter of two offline = %q; want none: the bus has a live meter", p)
	}
	// Online at its first good reading.
	r.clk.Add(time.Second)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	r.wantEvents("first good reading", "meter_online M-1")
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	r.tr.Check()
	r.wantEvents("more good readings")

	evs, err := r.db.LastEvents(2)
	if err != nil {
		t.Fatal(err)
	}
	off := evs[0]
	if off.Tenant != "T-1" || !off.Time.Equal(r.start.Add(DefaultOfflineAfter)) ||
		!strings.Contains(off.Text, "M-1 (bus a, address 1) stopped answering 30s ago: 3 reads failed") ||
		!strings.Contains(off.Text, "modbus: timeout") {
		t.Errorf("offline event = %+v; want tenant T-1, the time of the check, the reads, the silence and the last error", off)
	}
	if on := evs[1]; on.Kind != KindMeterOnline || on.Tenant != "T-1" || on.Text != "Meter M-1 (bus a, address 1) answers again." {
		t.Errorf("online event = %+v", on)
	}
}

// TestTracker_NoisyMeter_NoFlapping: a meter that fails most reads but
// answers now and then, and one that fails three in a row but answers
// within the debounce time, raise nothing.
func TestTracker_NoisyMeter_NoFlapping(t *testing.T) {
	r := newRig(t)
	for i := range 600 { // ten minutes at one cycle a second
		r.clk.Add(time.Second)
		var ok, failed []string
		if i%5 == 0 {
			ok = append(ok, "M-1") // one read in five answers
		} else {
			failed = append(failed, "M-1")
		}
		if i%20 < 10 { // ten failures in a row, then ten answers
			failed = append(failed, "M-2")
		} else {
			ok = append(ok, "M-2")
		}
		r.cycle("a", ok, failed)
		r.cycle("b", []string{"M-3"}, nil)
		r.tr.Check()
	}
	r.wantEvents("ten noisy minutes")
}

func TestTracker_BusDown_AllMetersSilent(t *testing.T) {
	r := newRig(t)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	r.cycle("b", []string{"M-3"}, nil)
	if p := r.tr.Problems(); p != nil {
		t.Fatalf("problems with every bus live = %q; want none", p)
	}
	for range 5 {
		r.clk.Add(10 * time.Second)
		r.cycle("a", nil, []string{"M-1", "M-2"})
		r.cycle("b", []string{"M-3"}, nil)
	}
	// The meters first, then what it means for their bus.
	// At 30s, the third failed read of each.
	r.wantEvents("50s silence", "meter_offline M-1", "meter_offline M-2", "bus_down a")
	p := r.tr.Problems()
	if len(p) != 1 || p[0] != "bus a: no meter has answered since 2026-11-30T18:00:00+08:00 (meter addr 1: modbus: timeout)" {
		t.Errorf("problems = %q; want bus a alone, its last answer in the site's zone and the last error", p)
	}
	evs, _ := r.db.LastEvents(1)
	if !strings.HasPrefix(evs[0].Text, "Bus a is down: none of its 2 meters has answered for 30s (the last error: meter addr 1: modbus: timeout).") {
		t.Errorf("bus_down text = %q", evs[0].Text)
	}
	for range 5 {
		r.clk.Add(time.Minute)
		r.cycle("a", nil, []string{"M-1", "M-2"})
		r.tr.Check()
	}
	r.wantEvents("five more silent minutes")

	r.clk.Add(time.Second)
	r.cycle("a", []string{"M-2"}, []string{"M-1"})
	r.wantEvents("M-2 answers", "bus_up a", "meter_online M-2")
	if p := r.tr.Problems(); p != nil {
		t.Errorf("problems once M-2 answers = %q; want none", p)
	}
}

func TestTracker_BusDown_PortCannotBeOpened(t *testing.T) {
	r := newRig(t)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	r.cycle("b", []string{"M-3"}, nil)
	r.clk.Add(time.Second)
	gone := errors.New("open /dev/ttyUSB1: no such file or directory")
	r.tr.PortFailed("b", gone)
	r.wantEvents("first open failure", "bus_down b") // at once: no debounce
	// The runBus loop retries: nothing new is said.
	for range 5 {
		r.clk.Add(time.Minute)
		r.tr.PortFailed("b", gone)
		r.tr.Check()
	}
	r.wantEvents("retries")
	want := "bus b: port /dev/ttyUSB1 cannot be opened since 2026-11-30T18:00:01+08:00: open /dev/ttyUSB1: no such file or directory"
	if p := r.tr.Problems(); len(p) != 1 || p[0] != want {
		t.Errorf("problems = %q; want [%q]", p, want)
	}
	// Opened, but up only once a meter answers.
	r.tr.PortOpened("b")
	r.tr.Check()
	r.wantEvents("port opened")
	if p := r.tr.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "bus b: no meter has answered since") {
		t.Errorf("problems after the port opened = %q; want bus b still without a live meter", p)
	}
	r.clk.Add(time.Second)
	r.cycle("b", []string{"M-3"}, nil)
	r.wantEvents("M-3 answers", "bus_up b")
	if p := r.tr.Problems(); p != nil {
		t.Errorf("problems = %q; want none", p)
	}
}

// TestTracker_NeverAnswered: a bus none of whose meters has answered since
// the start is a problem at once (there is nothing to vouch for it) and
// raises its events once, after the debounce counted from the start.
func TestTracker_NeverAnswered(t *testing.T) {
	r := newRig(t)
	if p := r.tr.Problems(); len(p) != 2 || !strings.HasPrefix(p[0], "bus a: no meter has answered yet since the gateway started at 2026-11-30T18:00:00+08:00") ||
		!strings.HasPrefix(p[1], "bus b:") {
		t.Errorf("problems at the start = %q; want buses a and b, not yet live", p)
	}
	r.cycle("a", []string{"M-1"}, []string{"M-2"})
	for range 3 {
		r.clk.Add(15 * time.Second)
		r.cycle("a", []string{"M-1"}, []string{"M-2"})
		r.cycle("b", nil, []string{"M-3"})
	}
	r.wantEvents("45s", "meter_offline M-2", "meter_offline M-3", "bus_down b")
	evs, _ := r.db.LastEvents(3)
	if !strings.Contains(evs[0].Text, "has not answered since the gateway started 30s ago: 3 reads failed in a row") {
		t.Errorf("text = %q", evs[0].Text)
	}
	if p := r.tr.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "bus b: no meter has answered since the gateway started at ") {
		t.Errorf("problems = %q; want bus b only", p)
	}
}

// TestTracker_Restore: what was reported before a restart is not reported
// again; a change since is.
func TestTracker_Restore(t *testing.T) {
	before := []store.Event{
		{Kind: KindMeterOffline, Meter: "M-1"},
		{Kind: KindMeterOffline, Meter: "M-2"},
		{Kind: KindBusDown, Text: "Bus a is down: none of its 2 meters has answered for 30s."},
		{Kind: KindMeterOffline, Meter: "M-3"},
		{Kind: KindBusDown, Text: "Bus b is down: …"},
		{Kind: KindMeterOnline, Meter: "M-3"},
		{Kind: KindBusUp, Text: "Bus b is up: meter M-3 answered."},
		{Kind: KindBusDown, Text: "Bus gone is down: a bus no longer configured"},
		// Events name their bus: the field, not the sentence, says which.
		{Kind: KindBusDown, Bus: "b", Text: "the converter's power failed"},
		{Kind: KindMeterOffline, Meter: "M-gone"},
	}
	r := newRig(t, before...)
	if p := r.tr.Problems(); len(p) != 2 || !strings.HasPrefix(p[0], "bus a: no meter has answered since the gateway started") {
		t.Errorf("problems after the restart = %q; want bus a down and b not yet live", p)
	}
	for range 6 {
		r.clk.Add(10 * time.Second)
		r.cycle("a", []string{"M-2"}, []string{"M-1"})
		r.cycle("b", nil, []string{"M-3"})
		r.tr.Check()
	}
	// M-1 is still offline: nothing; M-2 answers: online, and so is bus a.
	// M-3 was online before the restart: its silence is new; bus b was
	// down by the last event about it.
	r.wantEvents("a minute after the restart", "bus_up a", "meter_online M-2", "meter_offline M-3")
}

// TestTracker_StoreFails: an event that cannot be stored is logged, with
// what it says, and not streamed without an id.
func TestTracker_StoreFails(t *testing.T) {
	var log bytes.Buffer
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	pub := &published{}
	tr := New(Options{Buses: testBuses, Now: clk.Now, Log: zerolog.New(&log), Recorder: failing{}, Publisher: pub})
	tr.PortFailed("a", errors.New("open /dev/ttyUSB0: permission denied"))
	if len(pub.evs) != 0 {
		t.Errorf("published %d events that were not stored; want none", len(pub.evs))
	}
	out := log.String()
	if !strings.Contains(out, `"event":"bus_down"`) || !strings.Contains(out, "permission denied") ||
		!strings.Contains(out, "could not store the meter and bus events above") || !strings.Contains(out, "disk full") {
		t.Errorf("log = %s; want the event and why it was not stored", out)
	}
}

type failing struct{}

func (failing) PostEvents(...store.Event) ([]store.Event, error) {
	return nil, errors.New("disk full")
}

// TestTracker_LogsOncePerTransition: one log line per event, at warn when
// something stops and info when it is back, with the bus and meter fields.
func TestTracker_LogsOncePerTransition(t *testing.T) {
	r := newRig(t)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	for range 20 {
		r.clk.Add(5 * time.Second)
		r.cycle("a", []string{"M-2"}, []string{"M-1"})
		r.tr.Check()
	}
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	lines := strings.Split(strings.TrimSpace(r.log.String()), "\n")
	want := []string{
		`{"level":"warn","bus":"a","event":"meter_offline","meter":"M-1","error":"meter addr 1: modbus: timeout","message":"Meter M-1 (bus a, address 1) stopped answering 30s ago`,
		`{"level":"info","bus":"a","event":"meter_online","meter":"M-1","message":"Meter M-1 (bus a, address 1) answers again."}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log has %d lines; want %d:\n%s", len(lines), len(want), r.log.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("log line %d = %s; want it to start %s", i, lines[i], w)
		}
	}
}

// TestTracker_Concurrent: cycles of two buses, port failures, checks and
// /healthz reads at once (run with -race).
func TestTracker_Concurrent(t *testing.T) {
	r := newRig(t)
	var wg sync.WaitGroup
	for _, f := range []func(){
		func() { r.cycle("a", []string{"M-1"}, []string{"M-2"}) },
		func() { r.cycle("b", nil, []string{"M-3"}) },
		func() { r.tr.PortFailed("b", errors.New("gone")); r.tr.PortOpened("b") },
		func() { r.tr.Check(); r.clk.Add(time.Second) },
		func() { _ = r.tr.Problems() },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				f()
			}
		}()
	}
	wg.Wait()
	// Whatever the interleaving, events of one subject alternate.
	evs, err := r.db.EventsAfter(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, e := range evs {
		subject := e.Meter
		if subject == "" {
			subject = strings.Fields(e.Text)[1]
		}
		if last[subject] == e.Kind {
			t.Errorf("%s: %s twice in a row", subject, e.Kind)
		}
		last[subject] = e.Kind
	}
}

func TestTracker_Run_StopsOnCancel(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.tr.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v; want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of cancel")
	}
}

// A dead converter in front of a dozen meters: the poller asks every meter
// twice, then probes one backed-off meter a cycle. The bus is down, and
// every meter offline, once nothing has answered for OfflineAfter — not a
// probe per meter later.
func TestTracker_BusDown_BackedOffMeters(t *testing.T) {
	var ids []string
	var ms []Meter
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("M-%02d", i)
		ids = append(ids, id)
		ms = append(ms, Meter{ID: id, Address: i})
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "h.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	tr := New(Options{Buses: []Bus{{Name: "big", Port: "tcp:10.0.0.9:502", Meters: ms}}, Now: clk.Now, Log: zerolog.Nop(), Recorder: db})
	feed := func(ok, failed []string) {
		now := clk.Now()
		c := poll.Cycle{Bus: "big", Start: now, End: now}
		for _, id := range ok {
			c.Results = append(c.Results, poll.Result{Meter: id, Start: now, Reading: meter.Reading{Meter: id, Time: now}})
		}
		for _, id := range failed {
			c.Results = append(c.Results, poll.Result{Meter: id, Start: now, Err: errTimeout})
		}
		tr.Cycle(c)
	}
	const interval = 10 * time.Second
	feed(ids, nil) // t=0: all answer
	down := time.Duration(-1)
	for k := 1; k <= 20 && down < 0; k++ {
		clk.Add(interval)
		if k <= 2 {
			feed(nil, ids) // every meter asked, until backed off
		} else {
			feed(nil, ids[(k-3)%len(ids):(k-3)%len(ids)+1]) // one probe a cycle
		}
		evs, err := db.EventsAfter(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		offline := 0
		for _, e := range evs {
			if e.Kind == "meter_offline" {
				offline++
			}
			if e.Kind == "bus_down" {
				down = clk.Now().Sub(start)
				if offline != len(ids) {
					t.Errorf("bus_down with %d meters reported offline before it; want all %d", offline, len(ids))
				}
			}
		}
	}
	if down < 0 || down > DefaultOfflineAfter+interval {
		t.Errorf("bus_down after %s; want within %s of the last answer", down, DefaultOfflineAfter+interval)
	}
}

// checkEventTexts fails t for an event db holds that cannot be told in
// every language's own words (i18n.CheckEvent): a producer here that
// leaves out an arg its sentence needs. A database the test closed is not
// read.
func checkEventTexts(t *testing.T, db *store.DB) {
	t.Helper()
	evs, err := db.EventsAfter(0, 1<<20)
	if err != nil {
		t.Logf("event texts not checked: %v", err)
		return
	}
	for _, e := range evs {
		if err := i18n.CheckEvent(e.Kind, e.Args); err != nil {
			t.Errorf("event %d (%s, %q): %v", e.ID, e.Kind, e.Text, err)
		}
	}
}

// TestTracker_Carry: a reload's new Tracker takes over the old one's
// state of the buses kept: /healthz has no "no meter has answered yet" for
// a bus whose meters answered a moment before, a meter reported offline is
// not reported again, and one that was failing goes offline on time, not
// counted again from the reload. A bus not kept, and a meter moved to
// another address, start as at a start.
func TestTracker_Carry(t *testing.T) {
	r := newRig(t)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	r.cycle("b", []string{"M-3"}, nil)
	for range 3 {
		r.clk.Add(15 * time.Second)
		r.cycle("a", []string{"M-1"}, []string{"M-2"})
		r.cycle("b", []string{"M-3"}, nil)
	}
	r.wantEvents("before the reload", "meter_offline M-2")
	r.clk.Add(5 * time.Second)

	// The reload: bus a kept with M-2 moved to address 9, bus b's port
	// changed (not kept).
	buses := []Bus{
		{Name: "a", Port: "/dev/ttyUSB0", Meters: []Meter{{ID: "M-1", Tenant: "T-1", Address: 1}, {ID: "M-2", Tenant: "T-2", Address: 9}}},
		{Name: "b", Port: "/dev/ttyUSB7", Meters: []Meter{{ID: "M-3", Address: 1}}},
	}
	next := New(Options{Buses: buses, Now: r.clk.Now, Location: r.tr.o.Location, Log: zerolog.New(r.log), Recorder: r.db, Publisher: r.pub})
	before, err := r.db.LastEvents(RestoreWindow)
	if err != nil {
		t.Fatal(err)
	}
	next.Restore(before)
	next.Carry(r.tr, []string{"a"})
	r.tr = next
	if p := r.tr.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "bus b: no meter has answered yet since the gateway started at 2026-11-30T18:00:50+08:00") {
		t.Errorf("problems right after the reload = %q; want bus b only (its port changed), counted from the reload", p)
	}
	// M-2, at its new address, answers; M-1 has stopped answering and
	// goes offline 30 s after its last answer, not 30 s after the reload.
	r.clk.Add(5 * time.Second)
	r.cycle("a", []string{"M-2"}, []string{"M-1"})
	r.cycle("b", []string{"M-3"}, nil)
	r.clk.Add(10 * time.Second)
	r.cycle("a", []string{"M-2"}, []string{"M-1"})
	r.clk.Add(10 * time.Second)
	r.cycle("a", []string{"M-2"}, []string{"M-1"})
	r.wantEvents("30 s after M-1's last answer", "meter_online M-2", "meter_offline M-1")
	if p := r.tr.Problems(); len(p) != 0 {
		t.Errorf("problems = %q; want none", p)
	}
}

// TestTracker_CarryMovedMeterFailing: a meter failing but not yet offline
// when a reload moves it to another address is a meter added — its
// failures and its last answer were those of another device — so its
// failed reads are counted again from the reload, and it goes offline
// OfflineAfter after the reload, not after its last answer at the old
// address.
func TestTracker_CarryMovedMeterFailing(t *testing.T) {
	r := newRig(t)
	r.cycle("a", []string{"M-1", "M-2"}, nil)
	for range 2 { // two failed reads, 20 s since its last answer: not yet offline
		r.clk.Add(10 * time.Second)
		r.cycle("a", []string{"M-1"}, []string{"M-2"})
	}
	r.wantEvents("M-2 failing before the reload")
	r.clk.Add(5 * time.Second)

	moved := []Bus{
		{Name: "a", Port: "/dev/ttyUSB0", Meters: []Meter{{ID: "M-1", Tenant: "T-1", Address: 1}, {ID: "M-2", Tenant: "T-2", Address: 9}}},
		{Name: "b", Port: "/dev/ttyUSB1", Meters: []Meter{{ID: "M-3", Address: 1}}},
	}
	next := New(Options{Buses: moved, Now: r.clk.Now, Location: r.tr.o.Location, Log: zerolog.New(r.log), Recorder: r.db, Publisher: r.pub})
	before, err := r.db.LastEvents(RestoreWindow)
	if err != nil {
		t.Fatal(err)
	}
	next.Restore(before)
	next.Carry(r.tr, []string{"a", "b"})
	r.tr = next
	reloaded := r.clk.Now()

	// M-2 at its new address fails on: its third failed read overall, 35 s
	// after its last answer at address 2, is its first since the reload.
	for range 2 {
		r.clk.Add(10 * time.Second)
		r.cycle("a", []string{"M-1"}, []string{"M-2"})
	}
	r.wantEvents(fmt.Sprintf("M-2 moved, two failed reads in %v since the reload", r.clk.Now().Sub(reloaded)))
	r.clk.Add(10 * time.Second)
	r.cycle("a", []string{"M-1"}, []string{"M-2"})
	r.wantEvents(fmt.Sprintf("M-2 moved, three failed reads in %v since the reload", r.clk.Now().Sub(reloaded)), "meter_offline M-2")
}
