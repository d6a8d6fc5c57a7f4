package pipeline

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// pipeFixture is a pipeline on a real bbolt file for meter M-1 on a 10 A
// circuit: at most 10 A × 250 V × 3 × 1.5 = 11,250 Wh in an hour.
type pipeFixture struct {
	t    *testing.T
	path string
	cfg  *config.Config
	db   *store.DB
	pipe *Pipeline
	t0   time.Time
}

func newPipeFixture(t *testing.T) *pipeFixture {
	t.Helper()
	src := "site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, role: public, rated_current: 10}]\n"
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &pipeFixture{t: t, path: filepath.Join(t.TempDir(), "p.db"), cfg: cfg, t0: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	f.open()
	t.Cleanup(func() { f.db.Close() })
	t.Cleanup(func() { checkEventTexts(t, f.db) })
	return f
}

// open (re)opens the database and builds a pipeline on it, as a restart does.
func (f *pipeFixture) open() {
	f.t.Helper()
	db, err := store.Open(f.path, store.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.db = db
	f.pipe, err = New(db, f.cfg, live.New(f.cfg, "test", f.path, time.Now), nil, zerolog.Nop())
	if err != nil {
		f.t.Fatal(err)
	}
}

// feed commits one cycle with M-1's counter at wh, at minute min.
func (f *pipeFixture) feed(min int, wh int64) {
	var rd meter.Reading
	rd.Set(meter.Import, float64(wh)/1000)
	rd.Meter, rd.Time = "M-1", f.t0.Add(time.Duration(min)*time.Minute)
	f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: rd}}})
}

// energy returns the interval energy stored for M-1.
func (f *pipeFixture) energy() int64 {
	f.t.Helper()
	slots, err := f.db.Intervals("M-1", f.t0.Add(-time.Hour), f.t0.Add(24*time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	var sum int64
	for _, s := range slots {
		sum += s.Wh
	}
	return sum
}

func TestPipeline_CounterRules(t *testing.T) {
	f := newPipeFixture(t)
	steps := []struct {
		name       string
		min        int
		wh         int64
		wantEnergy int64 // total interval energy after the step
	}{
		{"first reading is a baseline", 0, 100_000, 0},
		{"a rise is energy", 10, 101_500, 1_500},
		{"a counter that went down is refused", 20, 50, 1_500},
		{"a jump past the circuit's rating is refused", 30, 900_000, 1_500},
		{"the real counter goes on from the old baseline", 40, 103_000, 3_000},
		{"a duplicate adds nothing", 41, 103_000, 3_000},
	}
	for _, s := range steps {
		f.feed(s.min, s.wh)
		if got := f.energy(); got != s.wantEnergy {
			t.Fatalf("%s: interval energy %d Wh; want %d", s.name, got, s.wantEnergy)
		}
	}
	latest, err := f.db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	if got := latest["M-1"].ImportWh; got != 103_000 {
		t.Errorf("stored baseline %d Wh; want 103000 (refused readings never move it)", got)
	}
}

// After a restart the baseline comes from the database: the energy since
// the last committed reading is counted once, not again from zero.
func TestPipeline_RestartCountsOnce(t *testing.T) {
	f := newPipeFixture(t)
	f.feed(0, 10_000)
	f.feed(5, 10_400)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.open()
	f.feed(10, 10_900)
	if got := f.energy(); got != 900 {
		t.Errorf("energy across a restart = %d Wh; want 900", got)
	}
}

// A cycle whose commit fails leaves the baseline: the next cycle's rise
// still covers its energy.
func TestPipeline_FailedCommitKeepsBaseline(t *testing.T) {
	f := newPipeFixture(t)
	f.feed(0, 10_000)
	good := f.db
	if err := good.Close(); err != nil {
		t.Fatal(err)
	}
	f.feed(5, 10_400) // the database is closed: the commit fails
	// The same pipeline goes on once the disk is back (no restart).
	db, err := store.Open(f.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.pipe.db = db, db
	f.feed(10, 10_900)
	if got := f.energy(); got != 900 {
		t.Errorf("energy after a failed commit = %d Wh; want 900, all of it, once", got)
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

// Each committed cycle's commit is told with its time; a failed one is not.
func TestPipeline_ObserveCommits(t *testing.T) {
	f := newPipeFixture(t)
	var took []time.Duration
	f.pipe.ObserveCommits(func(d time.Duration) { took = append(took, d) })
	f.feed(0, 10_000)
	f.feed(5, 10_400)
	if len(took) != 2 || took[0] <= 0 || took[1] <= 0 {
		t.Fatalf("commits observed: %v; want two, each with its time", took)
	}
	good := f.db
	if err := good.Close(); err != nil {
		t.Fatal(err)
	}
	f.feed(10, 10_900) // the database is closed: the commit fails
	if len(took) != 2 {
		t.Errorf("commits observed after a failed one: %v; want still two", took)
	}
}

// Each failed commit is told with its error; a committed one is not.
func TestPipeline_ObserveCommitFailures(t *testing.T) {
	f := newPipeFixture(t)
	var failed []error
	f.pipe.ObserveCommitFailures(func(err error) { failed = append(failed, err) })
	f.feed(0, 10_000)
	if len(failed) != 0 {
		t.Fatalf("failures told after a committed cycle: %v; want none", failed)
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.feed(5, 10_400) // the database is closed: the commit fails
	f.feed(10, 10_900)
	if len(failed) != 2 || failed[0] == nil || failed[1] == nil {
		t.Errorf("failures told after two failed commits: %v; want two, each with its error", failed)
	}
}
