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
