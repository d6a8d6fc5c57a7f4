package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/backup"
	"mallgrid/gateway/verify"
	"mallgrid/store"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// openDaemon opens a database as the daemon does (read-write, with its
// marker: the file's lock held) and closes it at the end of the test.
func openDaemon(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "mallgrid.db"), store.Options{Marker: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func topUp(t *testing.T, db *store.DB, i int) store.Entry {
	t.Helper()
	e, _, err := db.PostTopUp(store.Entry{Account: fmt.Sprintf("T-%d", i%5), Amount: billing.Money(i+1) * billing.Yuan,
		Ref: fmt.Sprintf("PAY-%d", i), Channel: "cash", Time: t0.Add(time.Duration(i) * time.Second), Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// serve starts the control socket for db and stops it at the end of the
// test, checking that Run returned nil.
func serve(t *testing.T, db backup.Source, path string) *backup.Server {
	t.Helper()
	srv, err := backup.Listen(path, db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v; want nil after cancel", err)
		}
	})
	return srv
}

// A backup taken over the socket while top-ups are being written is a
// sound database (verify finds nothing), is the daemon's (same identity),
// and holds every top-up acknowledged before the backup was asked for.
func TestTake_WhileTheGatewayWrites(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	serve(t, db, backup.SocketPath(db.Path()))
	for i := range 50 {
		topUp(t, db, i)
	}
	var (
		acked atomic.Int64 // the highest entry id acknowledged so far
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 50; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			acked.Store(int64(topUp(t, db, i).ID))
		}
	}()
	for round := range 3 {
		time.Sleep(20 * time.Millisecond) // let writes pile up between copies
		before := acked.Load()
		out := filepath.Join(t.TempDir(), "copy.db")
		taken, err := backup.Take(context.Background(), db.Path(), out, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !taken.FromDaemon {
			t.Errorf("round %d: copy not from the daemon", round)
		}
		if taken.Info.ID != db.ID() || taken.Info.Schema != store.SchemaVersion {
			t.Errorf("round %d: copy is %s schema %d; want %s schema %d", round, taken.Info.ID, taken.Info.Schema, db.ID(), store.SchemaVersion)
		}
		if taken.Info.Newest == nil || int64(taken.Info.Newest.ID) < before {
			t.Errorf("round %d: newest entry in the copy %+v; want at least %d, acknowledged before the backup", round, taken.Info.Newest, before)
		}
		report, err := verify.File(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(report.Violations) > 0 || int64(report.Entries) < before {
			t.Errorf("round %d: verify = %d entries, violations %v; want at least %d, none", round, report.Entries, report.Violations, before)
		}
	}
	close(stop)
	wg.Wait()
}

// Without a daemon, Take reads the file itself; with a daemon holding the
// lock but no socket, it says so rather than wait or copy nothing.
func TestTake_NoDaemon(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	topUp(t, db, 1)
	id, path := db.ID(), db.Path()

	_, err := backup.Take(context.Background(), path, filepath.Join(dir, "held.db"), time.Second)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "stop it (systemctl stop mallgrid)") {
		t.Errorf("Take of a held file with no socket: %v; want ErrLocked saying to stop the gateway", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "held.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed backup left its file: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "copy.db")
	taken, err := backup.Take(context.Background(), path, out, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if taken.FromDaemon || taken.Info.ID != id || taken.Info.Entries != 1 {
		t.Errorf("Take = %+v; want from the file, database %s, 1 entry", taken, id)
	}
}

func TestListen_SocketMode(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	path := backup.SocketPath(db.Path())
	srv, err := backup.Listen(path, db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v; want a socket, 0600", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".ctl-") {
			t.Errorf("temporary socket %s left", e.Name())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after stop: %v; want it removed", err)
	}
}

// A socket left by a killed daemon is replaced; a live one, or a file that
// is not a socket, is not touched.
func TestListen_Stale(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	path := backup.SocketPath(db.Path())

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Listen(path, db, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "another process answers") {
		t.Errorf("Listen over a live socket: %v; want refused", err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // as a daemon killed with SIGKILL leaves it
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	serve(t, db, path)
	var buf bytes.Buffer
	if _, err := backup.Fetch(context.Background(), path, &buf, time.Second); err != nil {
		t.Errorf("Fetch from the socket that replaced a stale one: %v", err)
	}

	other := filepath.Join(dir, "other.ctl")
	if err := os.WriteFile(other, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Listen(other, db, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v; want refused", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "keep me" {
		t.Errorf("the regular file was changed: %q", b)
	}
}

func TestListen_PathTooLong(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	long := filepath.Join(dir, strings.Repeat("d", 120)+".ctl")
	_, err := backup.Listen(long, db, zerolog.Nop())
	if !errors.Is(err, backup.ErrSocketPath) || !strings.Contains(err.Error(), "storage.path") {
		t.Errorf("Listen(%d bytes) = %v; want ErrSocketPath naming storage.path", len(long), err)
	}
}

// bigSource sends a copy far larger than a socket's buffers, and says
// how its write ended.
type bigSource struct {
	backup.Source
	ended chan error
}

func (b *bigSource) WriteBackup(w io.Writer, size func(int64) error) (int64, error) {
	const total = 64 << 20
	if err := size(total); err != nil {
		return 0, err
	}
	n, err := io.CopyN(w, zeros{}, total)
	b.ended <- err
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A client that asks and then stops reading is cut off by the write
// deadline: the daemon's copy (its read transaction) ends, and Run stops.
func TestServer_StalledClient(t *testing.T) {
	dir := t.TempDir()
	src := &bigSource{Source: openDaemon(t, dir), ended: make(chan error, 1)}
	path := filepath.Join(dir, "m.ctl")
	srv, err := backup.Listen(path, src, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv.Timeout = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "backup\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-src.ended:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the copy ended with %v; want the write deadline", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the copy to a client that stopped reading did not end")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return")
	}
}

// A client that reads steadily but too slowly is cut off when the whole
// copy's deadline passes, though each write meets its own.
func TestServer_SlowClient(t *testing.T) {
	dir := t.TempDir()
	src := &bigSource{Source: openDaemon(t, dir), ended: make(chan error, 1)}
	path := filepath.Join(dir, "m.ctl")
	srv, err := backup.Listen(path, src, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv.Timeout, srv.MaxCopy = time.Second, 300*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Run(ctx) }()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "backup\n"); err != nil {
		t.Fatal(err)
	}
	go func() { // 64 KiB every 50 ms: each write waits far less than Timeout
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case err := <-src.ended:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the copy ended with %v; want the copy's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a slow client held the copy past MaxCopy")
	}
}

func TestFetch_Refusals(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if _, err := backup.Fetch(context.Background(), filepath.Join(dir, "none.ctl"), &buf, time.Second); !errors.Is(err, backup.ErrNoDaemon) {
		t.Errorf("Fetch with no socket: %v; want ErrNoDaemon", err)
	}
	// A daemon that dies part way: the copy is reported short.
	path := filepath.Join(dir, "short.ctl")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Read(make([]byte, 16))
		_, _ = io.WriteString(c, "ok 8192 0123456789abcdef0123456789abcdef 9\nhalf")
		c.Close()
	}()
	if _, err := backup.Fetch(context.Background(), path, &buf, time.Second); !errors.Is(err, backup.ErrShort) {
		t.Errorf("Fetch of a cut stream: %v; want ErrShort", err)
	}
}

// With no gateway running, a file of an older schema is copied as it is:
// the backup taken before an upgrade.
func TestTake_OlderSchema(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "store", "testdata", "schema", "v5.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := backup.Take(context.Background(), path, filepath.Join(t.TempDir(), "copy.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if taken.FromDaemon || taken.Info.Schema != 5 || taken.Info.Entries != 8 {
		t.Errorf("Take = %+v; want from the file, schema 5, its 8 entries", taken)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(after, raw) {
		t.Errorf("the file copied was changed (%v)", err)
	}
}

// Another user than the gateway's is refused by the socket's mode.
func TestListen_OtherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	const python = "/usr/bin/python3" // not a shim in root's home, which nobody cannot run
	if _, err := os.Stat(python); err != nil {
		t.Skip("no python3 to connect as another user")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // nobody may reach the socket, its mode decides
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	db := openDaemon(t, dir)
	path := backup.SocketPath(db.Path())
	serve(t, db, path)
	connect := func(uid uint32) (string, error) {
		cmd := exec.Command(python, "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')", path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := connect(65534); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("connect as nobody: %v %s; want permission denied", err, out)
	}
	if out, err := connect(0); err != nil || !strings.Contains(out, "connected") {
		t.Errorf("connect as root: %v %s; want connected", err, out)
	}
}

// endlessSource is a database too large to copy before the gateway stops:
// its copy is written in 32 KiB pieces, 10 ms apart, until a write fails
// (or 64 MiB, to bound a test that fails).
type endlessSource struct {
	*store.DB
	started chan struct{} // closed at the first piece written
	once    sync.Once
}

func newEndless(db *store.DB) *endlessSource {
	return &endlessSource{DB: db, started: make(chan struct{})}
}

func (e *endlessSource) WriteBackup(w io.Writer, size func(int64) error) (int64, error) {
	const piece, most = 32 << 10, 64 << 20
	if size != nil {
		if err := size(most); err != nil {
			return 0, err
		}
	}
	buf := make([]byte, piece)
	var n int64
	for n < most {
		m, err := w.Write(buf)
		n += int64(m)
		if err != nil {
			return n, err
		}
		e.once.Do(func() { close(e.started) })
		time.Sleep(10 * time.Millisecond)
	}
	return n, nil
}

// The gateway's stop ends a backup being served: Run returns at once, not
// when the client's write deadline or the copy's MaxCopy runs out, and the
// client learns that its copy is short.
func TestServer_StopEndsCopies(t *testing.T) {
	dir := t.TempDir()
	src := newEndless(openDaemon(t, dir))
	srv, err := backup.Listen(backup.SocketPath(src.Path()), src, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv.MaxCopy = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	// One client stops reading after the header (the server blocks in a
	// write, up to its 10 s deadline); one reads slowly (its copy would go
	// on until MaxCopy).
	stalled, err := net.Dial("unix", srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := io.WriteString(stalled, "backup\n"); err != nil {
		t.Fatal(err)
	}
	slowErr := make(chan error, 1)
	go func() {
		_, err := backup.Fetch(context.Background(), srv.Path(), slowWriter{}, 0)
		slowErr <- err
	}()
	<-src.started
	time.Sleep(300 * time.Millisecond) // both copies under way, the stalled one's buffers full

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waits for the copies 5 s after its ctx ended")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run returned %v after its ctx ended; want at once (under 2 s)", took)
	}
	select {
	case err := <-slowErr:
		if err == nil {
			t.Error("the slow client's copy ended whole; want it cut short")
		}
	case <-time.After(5 * time.Second):
		t.Error("the slow client still reads 5 s after the gateway stopped")
	}
}

// slowWriter takes what it is given at about 1 MiB/s.
type slowWriter struct{}

func (slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(len(p)) * time.Microsecond)
	return len(p), nil
}
