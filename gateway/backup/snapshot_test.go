package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/backup"
	"mallgrid/store"
)

func TestSnapshotter_Next(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	s := &backup.Snapshotter{At: 3*60 + 30}
	cases := []struct{ now, want time.Time }{
		{time.Date(2026, 12, 1, 1, 0, 0, 0, shanghai), time.Date(2026, 12, 1, 3, 30, 0, 0, shanghai)},
		{time.Date(2026, 12, 1, 3, 30, 0, 0, shanghai), time.Date(2026, 12, 2, 3, 30, 0, 0, shanghai)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, shanghai), time.Date(2027, 1, 1, 3, 30, 0, 0, shanghai)},
	}
	for _, c := range cases {
		if got := s.Next(c.now); !got.Equal(c.want) {
			t.Errorf("Next(%v) = %v; want %v", c.now, got, c.want)
		}
	}
}

// Ten days of snapshots with keep 3: the three newest are there, each a
// database of the daemon's identity; the one before an upgrade is never
// rotated away.
func TestSnapshotter_Rotation(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	snaps := filepath.Join(dir, "snapshots")
	up, err := backup.PreUpgrade(db, snaps, 8, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &backup.Snapshotter{DB: db, Dir: snaps, Keep: 3, Log: zerolog.Nop()}
	var taken []string
	for day := range 10 {
		topUp(t, db, day)
		p, err := s.Take(context.Background(), t0.AddDate(0, 0, day))
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, p)
	}
	got, err := s.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	want := taken[7:]
	if len(got) != len(want) {
		t.Fatalf("snapshots %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("snapshot %d = %s; want %s", i, got[i], want[i])
		}
	}
	if filepath.Base(got[2]) != "daily-20261210T100000Z.db" {
		t.Errorf("newest snapshot named %s", filepath.Base(got[2]))
	}
	info, err := store.Inspect(got[2])
	if err != nil || info.ID != db.ID() || info.Entries != 10 {
		t.Errorf("newest snapshot %+v, %v; want database %s with 10 entries", info, err, db.ID())
	}
	if _, err := store.Inspect(up); err != nil {
		t.Errorf("the pre-upgrade snapshot %s: %v; want kept", up, err)
	}
	if filepath.Base(up) != "before-schema-8-20261201T090000Z.db" {
		t.Errorf("pre-upgrade snapshot named %s", filepath.Base(up))
	}
}

// slowSource holds WriteBackup until released, to catch a second
// snapshot started while one is being written.
type slowSource struct {
	backup.Source
	started chan struct{}
	release chan struct{}
}

func (s *slowSource) WriteBackup(w io.Writer, size func(int64) error) (int64, error) {
	close(s.started)
	<-s.release
	return s.Source.WriteBackup(w, size)
}

func TestSnapshotter_NeverTwoAtOnce(t *testing.T) {
	dir := t.TempDir()
	src := &slowSource{Source: openDaemon(t, dir), started: make(chan struct{}), release: make(chan struct{})}
	s := &backup.Snapshotter{DB: src, Dir: filepath.Join(dir, "snapshots"), Keep: 7, Log: zerolog.Nop()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.Take(context.Background(), t0); err != nil {
			t.Error(err)
		}
	}()
	<-src.started
	if _, err := s.Take(context.Background(), t0.Add(time.Minute)); !errors.Is(err, backup.ErrBusy) {
		t.Errorf("second Take while one runs: %v; want ErrBusy", err)
	}
	close(src.release)
	wg.Wait()
}

// Run takes one snapshot each time the clock passes At, and a failed one
// is logged, not fatal: Run goes on to the next day.
func TestSnapshotter_Run(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	var (
		mu    sync.Mutex
		now   = time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
		waits = make(chan time.Duration)
		fire  = make(chan time.Time)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := &backup.Snapshotter{DB: db, Dir: filepath.Join(dir, "snapshots"), Keep: 7, At: 3 * 60, Now: clock, Log: zerolog.Nop(),
		After: func(d time.Duration) <-chan time.Time { waits <- d; return fire }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if d := <-waits; d != 2*time.Hour {
		t.Errorf("first wait %v; want 2h (01:00 to 03:00)", d)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	fire <- now
	if d := <-waits; d != 24*time.Hour {
		t.Errorf("second wait %v; want 24h", d)
	}
	got, _ := s.Snapshots()
	if len(got) != 1 {
		t.Fatalf("snapshots after one day: %v; want 1", got)
	}
	// The directory unwritable (a file in its place): the snapshot fails,
	// Run goes on.
	s.Dir = got[0]
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	fire <- now
	if d := <-waits; d != 24*time.Hour {
		t.Errorf("wait after a failed snapshot %v; want 24h", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A gateway stopped over the snapshot's time takes one at start when the
// newest is more than a day old; not when it is recent, nor on a new
// installation with none.
func TestSnapshotter_CatchUp(t *testing.T) {
	cases := []struct {
		name  string
		had   []time.Time // snapshots taken before
		start time.Time
		want  int // snapshots once Run waits for the first At
	}{
		{"none", nil, t0, 0},
		{"recent", []time.Time{t0.Add(-20 * time.Hour)}, t0, 1},
		{"two days old", []time.Time{t0.Add(-72 * time.Hour), t0.Add(-49 * time.Hour)}, t0, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db := openDaemon(t, dir)
			waits := make(chan time.Duration)
			s := &backup.Snapshotter{DB: db, Dir: filepath.Join(dir, "snapshots"), Keep: 7, At: 3 * 60, Log: zerolog.Nop(),
				Now:   func() time.Time { return c.start },
				After: func(d time.Duration) <-chan time.Time { waits <- d; return nil }}
			for _, at := range c.had {
				if _, err := s.Take(context.Background(), at); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			<-waits
			got, _ := s.Snapshots()
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(got) != c.want {
				t.Errorf("snapshots at the first wait: %v; want %d", got, c.want)
			}
		})
	}
}

// A backup put in the snapshot directory by hand, even named daily-….db,
// is not a snapshot: never counted against Keep, never deleted, and the
// catch-up at start still reads the newest snapshot's time. Snapshots taken
// within one second are ordered by their number: the newer is kept.
func TestSnapshotter_OnlyItsOwnNames(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	snaps := filepath.Join(dir, "snapshots")
	if err := os.MkdirAll(snaps, 0o700); err != nil {
		t.Fatal(err)
	}
	foreign := []string{"daily-manual.db", "daily-20261201T100000Z-1.db", "daily-20261201T100000Z-02.db", "daily-2026-12-01.db"}
	for _, name := range foreign {
		if err := os.WriteFile(filepath.Join(snaps, name), []byte("a backup of my own"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waits := make(chan time.Duration)
	s := &backup.Snapshotter{DB: db, Dir: snaps, Keep: 2, At: 3 * 60, Log: zerolog.Nop(),
		After: func(d time.Duration) <-chan time.Time { waits <- d; return nil }}
	for day := range 3 {
		if _, err := s.Take(context.Background(), t0.AddDate(0, 0, day)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daily-20261202T100000Z.db", "daily-20261203T100000Z.db"}; !sameNames(got, want) {
		t.Errorf("snapshots with keep 2 = %v; want %v", got, want)
	}

	// Started five days later: one is taken at once.
	start := t0.AddDate(0, 0, 5)
	s.Now = func() time.Time { return start }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-waits
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ = s.Snapshots()
	if want := []string{"daily-20261203T100000Z.db", "daily-20261206T100000Z.db"}; !sameNames(got, want) {
		t.Errorf("snapshots after a start five days later = %v; want %v (one taken at start)", got, want)
	}

	// Three in one second: the last two are kept, the first rotated away.
	again := start.Add(time.Hour)
	var taken []string
	for range 3 {
		p, err := s.Take(context.Background(), again)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, filepath.Base(p))
	}
	got, _ = s.Snapshots()
	if want := []string{"daily-20261206T110000Z-2.db", "daily-20261206T110000Z-3.db"}; !sameNames(got, want) {
		t.Errorf("after taking %v in one second, snapshots = %v; want %v", taken, got, want)
	}
	for _, name := range foreign {
		if _, err := os.Stat(filepath.Join(snaps, name)); err != nil {
			t.Errorf("%s put there by hand: %v; want left alone", name, err)
		}
	}
}

func sameNames(paths, names []string) bool {
	if len(paths) != len(names) {
		return false
	}
	for i := range paths {
		if filepath.Base(paths[i]) != names[i] {
			return false
		}
	}
	return true
}

// A snapshot is written only where it leaves the database's reserve free:
// with one byte less it is skipped, logged at error level, and nothing is
// written or rotated; with exactly that much it is taken.
func TestSnapshotter_NoRoom(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	for i := range 200 {
		topUp(t, db, i)
	}
	snaps := filepath.Join(dir, "snapshots")
	var free atomic.Int64
	free.Store(1 << 40)
	var logged bytes.Buffer
	waits := make(chan time.Duration)
	s := &backup.Snapshotter{DB: db, Dir: snaps, Keep: 2, At: 3 * 60, Log: zerolog.New(&syncWriter{w: &logged}),
		Free:  func(string) (int64, error) { return free.Load(), nil },
		After: func(d time.Duration) <-chan time.Time { waits <- d; return nil }}
	for day := range 2 {
		if _, err := s.Take(context.Background(), t0.AddDate(0, 0, day)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.Snapshots()
	st, err := os.Stat(before[1])
	if err != nil {
		t.Fatal(err)
	}
	need := st.Size() + db.Reserve() // nothing written since: the next copy is as large
	if db.Reserve() < 4<<20 {
		t.Errorf("Reserve = %d; want at least 4 MiB", db.Reserve())
	}

	free.Store(need - 1)
	if _, err := s.Take(context.Background(), t0.AddDate(0, 0, 2)); !errors.Is(err, backup.ErrNoRoom) {
		t.Errorf("Take with %d free, %d needed: %v; want ErrNoRoom", need-1, need, err)
	}
	// Started four days later, the catch-up snapshot is skipped the same way.
	s.Now = func() time.Time { return t0.AddDate(0, 0, 4) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-waits
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := filepath.Glob(filepath.Join(snaps, "*")); !slices.Equal(got, before) {
		t.Errorf("snapshot directory after the skipped snapshots: %v; want %v as before", got, before)
	}
	if log := logged.String(); !strings.Contains(log, `"level":"error"`) || !strings.Contains(log, "no room for the snapshot") {
		t.Errorf("log of the skipped snapshot at start:\n%s\nwant an error saying there is no room", log)
	}

	free.Store(need)
	if _, err := s.Take(context.Background(), t0.AddDate(0, 0, 5)); err != nil {
		t.Errorf("Take with exactly %d free: %v", need, err)
	}
	if got, _ := s.Snapshots(); !sameNames(got, []string{filepath.Base(before[1]), "daily-20261206T100000Z.db"}) {
		t.Errorf("snapshots after one with room = %v", got)
	}
}

// syncWriter lets the test read a log written by another goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// The gateway's stop ends a snapshot being written: Run returns at once,
// and the temporary file is gone; a stop is not logged as a failure.
func TestSnapshotter_StopEndsSnapshot(t *testing.T) {
	dir := t.TempDir()
	src := newEndless(openDaemon(t, dir))
	snaps := filepath.Join(dir, "snapshots")
	if err := os.MkdirAll(snaps, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(snaps, "daily-20261125T100000Z.db") // a week old: one is taken at start
	if err := os.WriteFile(old, []byte("last week's"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	s := &backup.Snapshotter{DB: src, Dir: snaps, Keep: 7, At: 3 * 60, Log: zerolog.New(&syncWriter{w: &logged}),
		Now:   func() time.Time { return t0 },
		After: func(time.Duration) <-chan time.Time { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-src.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot started at start")
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still writes its snapshot 5 s after its ctx ended")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run returned %v after its ctx ended; want at once (under 2 s)", took)
	}
	if got, _ := filepath.Glob(filepath.Join(snaps, "*")); !slices.Equal(got, []string{old}) {
		t.Errorf("snapshot directory after the stop: %v; want only %s", got, old)
	}
	if strings.Contains(logged.String(), `"level":"error"`) {
		t.Errorf("a snapshot ended by the stop logged as a failure:\n%s", logged.String())
	}
}
