package enforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/live"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

var sh = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// enfFixture is tenant meter M-1 (T-1, no credit rating) on a real
// database, with its pipeline for the balances.
type enfFixture struct {
	cfg  *config.Config
	db   *store.DB
	path string
	pipe *pipeline.Pipeline
}

func newEnfFixture(t *testing.T, tariffYAML string) *enfFixture {
	t.Helper()
	src := "site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1, rated_current: 60}]\n" +
		"tenants: [{id: T-1, name: Shop, tariff: t}]\ntariffs:\n" + tariffYAML
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &enfFixture{cfg: cfg, path: filepath.Join(t.TempDir(), "e.db")}
	if f.db, err = store.Open(f.path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	t.Cleanup(func() { checkEventTexts(t, f.db) })
	if f.pipe, err = pipeline.New(f.db, cfg, live.New(cfg, "t", f.path, time.Now), nil, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestClockStep_Recorded(t *testing.T) {
	f := newEnfFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	e, err := New(f.cfg, f.db, live.New(f.cfg, "t", f.path, time.Now), live.NewHub(f.db, f.cfg), zerolog.Nop(), time.Now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	e.clockStep(time.Second+30*time.Second, time.Second, at) // 30 s off: within the limit
	e.clockStep(-2*time.Hour+time.Second, time.Second, at)   // stepped back two hours
	e.clockStep(25*time.Hour, time.Second, at)               // forward a day
	evs, err := f.db.LastEvents(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != "clock_step" || !strings.Contains(evs[0].Text, "-2h0m0s") || !strings.Contains(evs[1].Text, "24h59m59s") {
		t.Errorf("events = %+v; want two clock_step events, -2h and +25h", evs)
	}
}

// A tenant moved off prepaid (no credit rating any more) gets its power
// back: a stored cut-off is lifted, not kept by no one.
func TestEnforcement_UnratedTenantReleased(t *testing.T) {
	f := newEnfFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	raw, _ := json.Marshal(&relayControl{PolicyOpen: true})
	if _, err := f.db.PutControl(map[string][]byte{ControlMeterPrefix + "M-1": raw}); err != nil {
		t.Fatal(err)
	}
	e, err := New(f.cfg, f.db, live.New(f.cfg, "t", f.path, time.Now), live.NewHub(f.db, f.cfg), zerolog.Nop(), time.Now, Options{Available: f.pipe.Available})
	if err != nil {
		t.Fatal(err)
	}
	if closed, _ := e.desired("M-1", time.Now()); closed {
		t.Fatal("the stored cut-off was not loaded")
	}
	e.evaluateAccounts(time.Now())
	if closed, _ := e.desired("M-1", time.Now()); !closed {
		t.Error("an unrated tenant's meter stays cut off")
	}
	evs, _ := f.db.LastEvents(5)
	if len(evs) != 1 || evs[0].Kind != "cutoff_cancelled" {
		t.Errorf("events = %+v; want one cutoff_cancelled", evs)
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

// The reconciler tells its supervisor it moves at each pass: a woken pass
// too, not only the second's tick.
func TestEnforcer_ProgressEachPass(t *testing.T) {
	f := newEnfFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	passes := make(chan struct{}, 16)
	e, err := New(f.cfg, f.db, live.New(f.cfg, "t", f.path, time.Now), live.NewHub(f.db, f.cfg), zerolog.Nop(), time.Now,
		Options{Available: f.pipe.Available, Progress: func() { passes <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-passes:
		case <-time.After(500 * time.Millisecond): // passes come a second apart by the tick alone
			t.Fatalf("no Progress call %s within 500 ms", what)
		}
	}
	wait("at the first pass")
	e.Wake()
	wait("at a woken pass")
}

// relayBus is a bus whose relay commands answer err.
type relayBus struct{ err error }

func (b relayBus) SwitchRelay(_ context.Context, _ string, closed bool) (poll.RelayOutcome, error) {
	state := meter.RelayOpen
	if closed {
		state = meter.RelayClosed
	}
	if b.err != nil {
		return poll.RelayOutcome{State: meter.RelayUnknown, Err: b.err}, b.err
	}
	return poll.RelayOutcome{State: state}, nil
}

func (relayBus) Status() []poll.MeterStatus { return nil }

// Every relay command sent is told, with what it asked and how it ended.
func TestEnforcer_CommandedTold(t *testing.T) {
	f := newEnfFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	var told []string
	e, err := New(f.cfg, f.db, live.New(f.cfg, "t", f.path, time.Now), live.NewHub(f.db, f.cfg), zerolog.Nop(), time.Now,
		Options{Commanded: func(closed bool, err error) { told = append(told, fmt.Sprintf("closed=%v err=%v", closed, err)) }})
	if err != nil {
		t.Fatal(err)
	}
	m := f.cfg.Meters[0]
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	e.command(context.Background(), relayBus{}, m, false, relayWhy{"credit exhausted", "exhausted", "", ""}, now)
	e.command(context.Background(), relayBus{err: errors.New("no answer")}, m, true, relayWhy{"automatic: the account may draw power", "may_draw", "", ""}, now)
	if want := []string{"closed=false err=<nil>", "closed=true err=no answer"}; !slices.Equal(told, want) {
		t.Errorf("commands told: %q; want %q", told, want)
	}
}

// stoppingBus is a bus whose relay commands wait until their context ends,
// as one queued behind a busy bus does when the gateway stops, or answer
// poll.ErrStopped at once, as the commands still queued when a bus stops.
type stoppingBus struct{ refuse bool }

func (b stoppingBus) SwitchRelay(ctx context.Context, id string, _ bool) (poll.RelayOutcome, error) {
	if b.refuse {
		err := fmt.Errorf("relay command for %s: %w", id, poll.ErrStopped)
		return poll.RelayOutcome{State: meter.RelayUnknown, Err: err}, err
	}
	<-ctx.Done()
	return poll.RelayOutcome{State: meter.RelayUnknown, Err: ctx.Err()}, ctx.Err()
}

func (stoppingBus) Status() []poll.MeterStatus { return nil }

// A command cut short by the stop of its generation (a reload, a
// shutdown) was never carried out by the meter: it is not told as a failed
// command, and the relay's control keeps no failure or backoff for it —
// the next generation sends it again at its first pass.
func TestEnforcer_CommandCutShortByStop(t *testing.T) {
	f := newEnfFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	var told []string
	e, err := New(f.cfg, f.db, live.New(f.cfg, "t", f.path, time.Now), live.NewHub(f.db, f.cfg), zerolog.Nop(), time.Now,
		Options{Commanded: func(closed bool, err error) { told = append(told, fmt.Sprintf("closed=%v err=%v", closed, err)) }})
	if err != nil {
		t.Fatal(err)
	}
	m := f.cfg.Meters[0]
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	why := relayWhy{"automatic: the account may draw power", "may_draw", "", ""}

	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(50*time.Millisecond, cancel)
	defer stop.Stop()
	e.command(ctx, stoppingBus{}, m, true, why, now) // waits until the stop
	e.command(context.Background(), stoppingBus{refuse: true}, m, true, why, now)
	if len(told) != 0 {
		t.Errorf("commands told: %q; want none (neither was carried out)", told)
	}
	e.mu.Lock()
	rc := *e.control(m.ID)
	e.mu.Unlock()
	if rc.Failures != 0 || !rc.NextTry.IsZero() {
		t.Errorf("relay control after two commands cut short: %d failures, next try %v; want 0 and none", rc.Failures, rc.NextTry)
	}
	if !e.due(m, true, rc, now) {
		t.Error("the relay is not due for its command again; want it sent at the next pass")
	}
}
