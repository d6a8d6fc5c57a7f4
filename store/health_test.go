package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

func TestDB_Update_RefusedOnceFileDeleted(t *testing.T) {
	db, path := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	if err := db.Health(); err != nil {
		t.Fatalf("Health of a working database = %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan)); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("top-up after the file was deleted = %v; want ErrUnavailable saying so", err)
	}
	if _, err := db.CommitCycle(Cycle{Readings: []Reading{{Meter: "M-1", Time: t0, ImportWh: 1}}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("cycle after the file was deleted = %v; want ErrUnavailable", err)
	}
	if err := db.Health(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Health = %v; want ErrUnavailable", err)
	}
	// Reads go on from the open file: the status page still shows balances.
	if a, err := db.Account("T-1"); err != nil || a.Balance != billing.Yuan {
		t.Errorf("read after deletion = %+v, %v", a, err)
	}
	// Putting a file back at the path does not bring writes back: it is not
	// the file that is open.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEvents(Event{Kind: "x"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("write after a file reappeared = %v; want ErrUnavailable still", err)
	}
}

func TestDB_Update_RefusedOnceFileReplaced(t *testing.T) {
	db, path := openTemp(t)
	other := filepath.Join(t.TempDir(), "other.db")
	odb, err := Open(other, Options{})
	if err != nil {
		t.Fatal(err)
	}
	odb.Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "another file") {
		t.Errorf("top-up after the file was replaced = %v; want ErrUnavailable saying so", err)
	}
	if err := db.Health(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Health = %v; want ErrUnavailable", err)
	}
}

func TestDB_WatchFile_NoticesDeletionAndStops(t *testing.T) {
	db, path := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lost := make(chan error, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.WatchFile(ctx, 10*time.Millisecond, func(reason error) { lost <- reason })
	}()
	time.Sleep(30 * time.Millisecond) // a few quiet checks first
	select {
	case err := <-lost:
		t.Fatalf("lost called while the file is there: %v", err)
	default:
	}
	removed := time.Now()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("reason = %v; want ErrUnavailable", err)
		}
		if took := time.Since(removed); took > time.Second {
			t.Errorf("noticed after %v; want within the interval", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deletion not noticed")
	}
	select {
	case <-done: // it returns once it has told
	case <-time.After(time.Second):
		t.Fatal("WatchFile still running after reporting the loss")
	}
	if len(lost) != 0 {
		t.Error("lost called twice")
	}
	// The event of the loss is still stored in the open file, with an id.
	ev, err := db.RecordLoss(Event{Time: t0, Kind: "database_unavailable", Text: "gone"})
	if err != nil || ev.ID == 0 {
		t.Errorf("RecordLoss = %+v, %v; want an id", ev, err)
	}
}

func TestDB_WatchFile_ExitsOnCancel(t *testing.T) {
	db, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.WatchFile(ctx, time.Hour, func(error) { t.Error("lost called") })
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("WatchFile did not return on cancel")
	}
}

func TestNoSpace_Classifies(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, true},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EFBIG}, true},
		{fmt.Errorf("file resize error: %s", syscall.EFBIG), true}, // bbolt's grow drops the errno
		{fmt.Errorf("file sync error: %s", syscall.ENOSPC), true},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EIO}, false},
		{ErrRefConflict, false},
	} {
		if got := noSpace(c.err); got != c.want {
			t.Errorf("noSpace(%v) = %v; want %v", c.err, got, c.want)
		}
	}
}

// inChild runs the calling test again in a child process with env set,
// and reports whether this is that child. The parent fails if the child
// does. Tests that change process-wide limits run so.
func inChild(t *testing.T, env string) bool {
	t.Helper()
	if os.Getenv(env) != "" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
	return false
}

// setFileSizeLimit sets the process's file size limit (RLIMIT_FSIZE) and
// returns a function that puts the old one back. Past the limit a write
// fails with EFBIG, as a full disk fails it with ENOSPC; SIGXFSZ, which
// would kill the process instead, is ignored.
func setFileSizeLimit(t *testing.T, n uint64) (restore func()) {
	t.Helper()
	signal.Ignore(syscall.SIGXFSZ)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDB_Update_NoSpace fills the disk for real: a child process whose
// file size limit is below every data page of the database, so that each
// commit's page writes fail (EFBIG) as they would on a full disk. The top-up
// fails with ErrNoSpace, Health fails, nothing of it is kept; with space
// back, the same payment sent again is credited once and Health recovers.
func TestDB_Update_NoSpace(t *testing.T) {
	if !inChild(t, "MALLGRID_TEST_FSIZE_CHILD") {
		return
	}
	db, path := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 10*billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	pageSize := uint64(db.bolt.Info().PageSize)
	restore := setFileSizeLimit(t, 2*pageSize) // the two meta pages only
	_, _, err := db.PostTopUp(topUp("T-1", "PAY-2", 5*billing.Yuan))
	if !errors.Is(err, ErrNoSpace) {
		restore()
		t.Fatalf("top-up on a full disk = %v; want ErrNoSpace", err)
	}
	t.Logf("top-up on a full disk: %v", err)
	if err := db.Health(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Health on a full disk = %v; want ErrNoSpace", err)
	}
	if _, err := db.PostEvents(Event{Kind: "x"}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("event on a full disk = %v; want ErrNoSpace", err)
	}
	// A write refused for a ledger rule commits nothing and says nothing
	// about the disk: Health stays failing.
	if _, _, err := db.PostTopUp(topUp("T-2", "PAY-1", 10*billing.Yuan)); !errors.Is(err, ErrRefConflict) && !errors.Is(err, ErrNoSpace) {
		t.Errorf("conflicting reference on a full disk = %v", err)
	}
	if err := db.Health(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Health after a refused write = %v; want ErrNoSpace still", err)
	}
	if a, err := db.Account("T-1"); err != nil || a.Balance != 10*billing.Yuan || a.Entries != 1 {
		t.Errorf("account after the failed top-up = %+v, %v; want 10.00 in one entry", a, err)
	}
	restore()

	e, existing, err := db.PostTopUp(topUp("T-1", "PAY-2", 5*billing.Yuan))
	if err != nil || existing || e.Balance != 15*billing.Yuan {
		t.Fatalf("the same top-up with space back = %+v, existing %v, %v; want it credited now", e, existing, err)
	}
	if err := db.Health(); err != nil {
		t.Errorf("Health after a write succeeded = %v; want nil", err)
	}
	if _, existing, err := db.PostTopUp(topUp("T-1", "PAY-2", 5*billing.Yuan)); err != nil || !existing {
		t.Errorf("sent a third time = existing %v, %v; want the original entry", existing, err)
	}
	db.Close()
	// The file survived the failed commits whole: reopened, it passes the
	// consistency check and holds each payment once.
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after the full disk: %v", err)
	}
	defer db.Close()
	var refs []string
	if err := db.EachEntry(func(e Entry) error { refs = append(refs, e.Ref); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(refs, ",") != "PAY-1,PAY-2" {
		t.Errorf("ledger holds %v; want PAY-1,PAY-2 once each", refs)
	}
}

// closeWithin closes db and fails the test if Close takes longer than d.
func closeWithin(t *testing.T, db *DB, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Close still waiting after %v", d)
		return nil
	}
}

// testChangedInPlace changes the open database's file in place (same
// inode: what the path check cannot see) and requires the change to be
// noticed before bbolt reads the file: Health, reads and writes return
// ErrUnavailable saying so, and Close returns.
func testChangedInPlace(t *testing.T, change func(t *testing.T, path string, backup []byte)) {
	db, path := openTemp(t)
	backup := readFile(t, path) // a copy of it as it was before the top-up
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	change(t, path, backup)
	if err := db.Health(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "changed behind the gateway's back") {
		t.Errorf("Health = %v; want ErrUnavailable saying the file was changed behind the gateway's back", err)
	}
	if _, err := db.Account("T-1"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("read = %v; want ErrUnavailable", err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("top-up = %v; want ErrUnavailable", err)
	}
	if !db.Broken() {
		t.Error("Broken = false")
	}
	if _, err := db.Rescue(t0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Rescue of a changed file = %v; want ErrUnavailable: there is nothing sound to save", err)
	}
	if err := closeWithin(t, db, 2*time.Second); err != nil {
		t.Logf("Close: %v", err)
	}
}

func TestDB_FileEmptiedInPlace(t *testing.T) {
	testChangedInPlace(t, func(t *testing.T, path string, _ []byte) {
		if err := os.Truncate(path, 0); err != nil { // `: > FILE`
			t.Fatal(err)
		}
	})
}

func TestDB_FileOverwrittenInPlaceWithBackup(t *testing.T) {
	testChangedInPlace(t, func(t *testing.T, path string, backup []byte) {
		// A backup of this very database, taken before the top-up,
		// copied over it the way cp does: same inode, an older
		// transaction, and a file bbolt's freelist knows nothing of.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(backup); err != nil {
			t.Fatal(err)
		}
		f.Close()
	})
}

func TestDB_FileOverwrittenInPlaceWithAnother(t *testing.T) {
	testChangedInPlace(t, func(t *testing.T, path string, _ []byte) {
		other := filepath.Join(t.TempDir(), "other.db")
		db, err := Open(other, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"PAY-1", "PAY-2", "PAY-3"} { // as many transactions, or more
			if _, _, err := db.PostTopUp(topUp("T-9", ref, billing.Yuan)); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		if err := os.WriteFile(path, readFile(t, other), 0o600); err != nil { // O_TRUNC: same inode
			t.Fatal(err)
		}
	})
}

// TestDB_FaultInsideBbolt: a fault bbolt takes while it holds its own
// locks (the file cut short between the gateway's check and bbolt's read)
// breaks the database for good: nothing calls bbolt again, so reads and
// writes return at once, and Close does not wait for bbolt's locks.
func TestDB_FaultInsideBbolt(t *testing.T) {
	db, path := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Past the check, straight into bbolt: its beginTx faults on the
	// meta page with its metalock held.
	err := db.call(false, func(*bolt.Tx) error { return nil })
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read through bbolt of an emptied file = %v; want ErrUnavailable and ErrCorrupt", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := db.Account("T-1"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("read after the fault = %v; want ErrUnavailable", err)
		}
		if _, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("write after the fault = %v; want ErrUnavailable", err)
		}
		if err := db.Health(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Health after the fault = %v; want ErrUnavailable", err)
		}
		// A call that got past the checks just before the fault goes into
		// bbolt and waits on the locks the fault left held: it is given up
		// on, and its transaction never runs.
		for _, writable := range []bool{false, true} {
			if err := db.call(writable, func(*bolt.Tx) error {
				t.Error("a transaction ran on the broken database")
				return nil
			}); !errors.Is(err, ErrUnavailable) {
				t.Errorf("call into bbolt after the fault (writable %v) = %v; want ErrUnavailable", writable, err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a read or write after the fault hangs")
	}
	if err := closeWithin(t, db, 2*time.Second); err == nil {
		t.Error("Close after a fault = nil; want it to say bbolt did not finish")
	}
	// The file's lock was released: the path can be opened again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the broken Close: %v", err)
	}
	again.Close()
}

// TestDB_Rescue: once the file is deleted under the gateway, what it
// acknowledged is only in the open file; Rescue saves it beside the path.
func TestDB_Rescue(t *testing.T) {
	db, path := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 7*billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := db.Health(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Health = %v", err)
	}
	if _, err := db.RecordLoss(Event{Time: t0, Kind: "database_unavailable", Text: "gone"}); err != nil {
		t.Fatal(err)
	}
	rescued, err := db.Rescue(t0)
	if err != nil {
		t.Fatalf("Rescue: %v", err)
	}
	if want := path + ".rescued-20261127T100000Z"; rescued != want {
		t.Errorf("rescued to %s; want %s", rescued, want)
	}
	second, err := db.Rescue(t0)
	if err != nil || second == rescued {
		t.Errorf("second Rescue = %s, %v; want a name of its own", second, err)
	}
	r, err := Open(rescued, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the rescued copy: %v", err)
	}
	defer r.Close()
	if r.ID() != db.ID() {
		t.Errorf("rescued copy is database %s; want %s", r.ID(), db.ID())
	}
	if a, err := r.Account("T-1"); err != nil || a.Balance != 7*billing.Yuan {
		t.Errorf("rescued account = %+v, %v; want 7.00", a, err)
	}
	if ev, err := r.LastEvents(1); err != nil || len(ev) != 1 || ev[0].Kind != "database_unavailable" {
		t.Errorf("rescued copy's last event = %+v, %v; want the loss", ev, err)
	}
}

// TestDB_Health_FreeSpaceReserve: on a nearly full disk bbolt still
// commits what fits in pages it freed before, so a committed write says
// nothing about the next top-up. Health fails while the file system has
// less free than the reserve, and a no-space failure clears only when a
// write commits with the reserve free again.
func TestDB_Health_FreeSpaceReserve(t *testing.T) {
	db, _ := openTemp(t)
	var free int64 = 1 << 30
	db.free = func(string) (int64, error) { return free, nil }
	if err := db.Health(); err != nil {
		t.Fatalf("Health with 1 GiB free = %v", err)
	}
	free = minReserve - 1
	if err := db.Health(); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "reserve") {
		t.Errorf("Health below the reserve = %v; want ErrNoSpace naming the reserve", err)
	}
	db.health.mu.Lock()
	db.health.noSpace = fmt.Errorf("%w: a write failed", ErrNoSpace) // as a failed commit leaves it
	db.health.mu.Unlock()
	if _, err := db.PostEvents(Event{Kind: "x"}); err != nil {
		t.Fatal(err)
	}
	free = 1 << 30
	if err := db.Health(); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "a write failed") {
		t.Errorf("Health after a commit made below the reserve = %v; want the write's failure still", err)
	}
	if _, err := db.PostEvents(Event{Kind: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Health(); err != nil {
		t.Errorf("Health after a commit with the reserve free = %v; want nil", err)
	}
}
