package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/store"
)

// Snapshot file names: the prefix, the UTC time taken, the suffix.
const (
	dailyPrefix   = "daily-"
	upgradePrefix = "before-schema-"
	snapSuffix    = ".db"
	stampLayout   = "20060102T150405Z"
)

// Snapshotter takes one snapshot of the database a day when the site's
// clock passes At, into Dir, and keeps the newest Keep of them.
type Snapshotter struct {
	DB   Source
	Dir  string
	Keep int // at least 1
	// At is the time of day, minutes after the site's midnight.
	At int
	// Now is the site's clock (times in the site's zone).
	Now func() time.Time
	// After waits; nil is time.After. Tests pass a fake that they fire.
	After func(time.Duration) <-chan time.Time
	// Free returns the bytes free to the gateway's user on the file
	// system of a directory; nil is statfs. Tests pass a fake.
	Free func(dir string) (int64, error)
	Log  zerolog.Logger

	mu sync.Mutex // held while a snapshot is written: never two at once
}

// Next returns the first time after now at which the site's clock (now's
// zone) reads At.
func (s *Snapshotter) Next(now time.Time) time.Time {
	y, m, d := now.Date()
	at := time.Date(y, m, d, s.At/60, s.At%60, 0, 0, now.Location())
	if !at.After(now) {
		at = time.Date(y, m, d+1, s.At/60, s.At%60, 0, 0, now.Location())
	}
	return at
}

// Run takes a snapshot each day at At until ctx ends; it returns nil then,
// a snapshot being written ended (and its temporary file removed). At
// start it takes one at once if the newest is more than a day old.
// A snapshot that fails is logged at error level and tried again the next
// day: it never stops the gateway.
func (s *Snapshotter) Run(ctx context.Context) error {
	after := s.After
	if after == nil {
		after = time.After
	}
	if s.behind(s.Now()) {
		if _, err := s.Take(ctx, s.Now()); err != nil && ctx.Err() == nil {
			s.Log.Error().Err(err).Str("dir", s.Dir).Msg("snapshot at start failed; the next is tried at its time")
		}
	}
	for {
		now := s.Now()
		next := s.Next(now)
		select {
		case <-ctx.Done():
			return nil
		case <-after(next.Sub(now)):
		}
		if _, err := s.Take(ctx, s.Now()); err != nil && ctx.Err() == nil {
			s.Log.Error().Err(err).Str("dir", s.Dir).Msg("daily snapshot failed; the next is tried tomorrow")
		}
	}
}

// behind says whether the newest daily snapshot is more than a day old at
// now: the gateway was stopped when one was due, so one is taken at start.
// With none at all (a new installation) the first waits for At.
func (s *Snapshotter) behind(now time.Time) bool {
	snaps, err := s.daily()
	if err != nil || len(snaps) == 0 {
		return false
	}
	return now.Sub(snaps[len(snaps)-1].taken) > 24*time.Hour
}

// Take writes a snapshot now, daily-TIME.db in Dir (made 0700 if missing),
// atomically, then deletes the oldest daily snapshots beyond Keep. The new
// one is written before any is deleted, and only where Dir's file system
// has room for it and the database's reserve (Source.Reserve) besides:
// with Dir beside the database, a snapshot that filled the disk would stop
// the ledger's writes. It returns the snapshot's path, an error wrapping
// ErrNoRoom when there is no room (nothing is written or deleted), and
// ErrBusy while another is being written. ctx ending stops the writing
// (the temporary file is removed): a snapshot of a large database does not
// hold up the gateway's stop.
func (s *Snapshotter) Take(ctx context.Context, now time.Time) (string, error) {
	if !s.mu.TryLock() {
		return "", ErrBusy
	}
	defer s.mu.Unlock()
	free := s.Free
	if free == nil {
		free = statfsFree
	}
	room := func(size int64) error {
		have, err := free(s.Dir)
		if err != nil {
			return nil // a file system that cannot say: the write finds out
		}
		if reserve := s.DB.Reserve(); have < size+reserve {
			return fmt.Errorf("%w: %d bytes free in %s, the copy needs %d and the database's reserve %d more; "+
				"free some space or move storage.snapshots.dir", ErrNoRoom, have, s.Dir, size, reserve)
		}
		return nil
	}
	path, n, err := write(ctx, s.DB, s.Dir, dailyPrefix, now, room)
	if err != nil {
		return "", err
	}
	s.Log.Info().Str("snapshot", path).Int64("bytes", n).Msg("daily snapshot written")
	removed, err := s.rotate()
	for _, r := range removed {
		s.Log.Info().Str("snapshot", r).Msg("old snapshot deleted")
	}
	if err != nil {
		return path, fmt.Errorf("rotate snapshots in %s: %w", s.Dir, err)
	}
	return path, nil
}

// Snapshots lists the daily snapshots in Dir, oldest first: the files
// named as the snapshotter names them, daily-TIME.db or daily-TIME-N.db.
// Any other file there, even one named daily-….db (a backup put there by
// hand), is not one of them: never counted, never deleted.
func (s *Snapshotter) Snapshots() ([]string, error) {
	snaps, err := s.daily()
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(snaps))
	for i, d := range snaps {
		paths[i] = d.path
	}
	return paths, nil
}

// dailySnapshot is a daily snapshot's file and what its name says.
type dailySnapshot struct {
	path  string
	taken time.Time // UTC, to the second
	n     int       // 1, or N of a later one taken in the same second
}

// daily returns the daily snapshots in Dir, oldest first: by the time in
// their names, then by N (a name sorts -10 before -2, and -2 before the
// first one of its second).
func (s *Snapshotter) daily() ([]dailySnapshot, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var snaps []dailySnapshot
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if taken, n, ok := parseDaily(e.Name()); ok {
			snaps = append(snaps, dailySnapshot{path: filepath.Join(s.Dir, e.Name()), taken: taken, n: n})
		}
	}
	slices.SortFunc(snaps, func(a, b dailySnapshot) int {
		if c := a.taken.Compare(b.taken); c != 0 {
			return c
		}
		return cmp.Compare(a.n, b.n)
	})
	return snaps, nil
}

// parseDaily reads a name write gives a daily snapshot: daily-TIME.db (n
// is 1) or daily-TIME-N.db with N from 2. Anything else is not one.
func parseDaily(name string) (taken time.Time, n int, ok bool) {
	rest, ok1 := strings.CutPrefix(name, dailyPrefix)
	rest, ok2 := strings.CutSuffix(rest, snapSuffix)
	if !ok1 || !ok2 {
		return time.Time{}, 0, false
	}
	stamp, num, numbered := strings.Cut(rest, "-")
	taken, err := time.Parse(stampLayout, stamp)
	if err != nil || taken.Format(stampLayout) != stamp {
		return time.Time{}, 0, false
	}
	n = 1
	if numbered {
		n, err = strconv.Atoi(num)
		if err != nil || n < 2 || strconv.Itoa(n) != num {
			return time.Time{}, 0, false
		}
	}
	return taken, n, true
}

// rotate deletes the oldest daily snapshots beyond Keep.
func (s *Snapshotter) rotate() ([]string, error) {
	names, err := s.Snapshots()
	if err != nil || len(names) <= max(s.Keep, 1) {
		return nil, err
	}
	var removed []string
	for _, name := range names[:len(names)-max(s.Keep, 1)] {
		if err := os.Remove(name); err != nil {
			return removed, err
		}
		removed = append(removed, name)
	}
	return removed, store.SyncDir(s.Dir)
}

// PreUpgrade writes the snapshot taken before a schema upgrade from
// schema from: before-schema-FROM-TIME.db in dir, which rotation never
// deletes. Going back to the package that wrote schema from is restoring
// it (README "Backups and upgrades"). It returns the snapshot's path.
func PreUpgrade(db Source, dir string, from int, now time.Time) (string, error) {
	// Not stopped midway: the start waits for it (TimeoutStartSec), and a
	// start stopped by force leaves a temporary that the next removes.
	path, _, err := write(context.Background(), db, dir, fmt.Sprintf("%s%d-", upgradePrefix, from), now, nil)
	return path, err
}

// write writes a copy of db to dir as prefix-TIME.db, atomically, until
// ctx ends. room, if not nil, is given the copy's size before anything is
// written; its error ends the snapshot.
func write(ctx context.Context, db Source, dir, prefix string, now time.Time, room func(size int64) error) (string, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("snapshot: %w", err)
	}
	path := filepath.Join(dir, prefix+now.UTC().Format(stampLayout)+snapSuffix)
	for i := 2; ; i++ { // two in one second (a test, a clock set back): never over one
		if _, err := os.Lstat(path); os.IsNotExist(err) {
			break
		}
		path = filepath.Join(dir, fmt.Sprintf("%s%s-%d%s", prefix, now.UTC().Format(stampLayout), i, snapSuffix))
	}
	var n int64
	err := store.WriteFileAtomic(path, func(f *os.File) error {
		var err error
		n, err = db.WriteBackup(ctxWriter{ctx: ctx, w: f}, room)
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return path, n, nil
}

// statfsFree returns the bytes free to an unprivileged user (statfs's
// available blocks, without those kept for root) on the file system of dir.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	// Bsize is an int32 on 32-bit ARM (armhf) and an int64 elsewhere.
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// ctxWriter fails every write once ctx has ended: the copy, one read
// transaction written out, stops within a write of it.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}
