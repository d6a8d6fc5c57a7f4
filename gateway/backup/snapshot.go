package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	Log   zerolog.Logger

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

// Run takes a snapshot each day at At until ctx ends; it returns nil then.
// At start it takes one at once if the newest is more than a day old.
// A snapshot that fails is logged at error level and tried again the next
// day: it never stops the gateway.
func (s *Snapshotter) Run(ctx context.Context) error {
	after := s.After
	if after == nil {
		after = time.After
	}
	if s.behind(s.Now()) {
		if _, err := s.Take(s.Now()); err != nil {
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
		if _, err := s.Take(s.Now()); err != nil {
			s.Log.Error().Err(err).Str("dir", s.Dir).Msg("daily snapshot failed; the next is tried tomorrow")
		}
	}
}

// behind says whether the newest daily snapshot is more than a day old at
// now: the gateway was stopped when one was due, so one is taken at start.
// With none at all (a new installation) the first waits for At.
func (s *Snapshotter) behind(now time.Time) bool {
	names, err := s.Snapshots()
	if err != nil || len(names) == 0 {
		return false
	}
	stamp := strings.TrimPrefix(filepath.Base(names[len(names)-1]), dailyPrefix)
	taken, err := time.Parse(stampLayout, stamp[:min(len(stamp), len(stampLayout))])
	return err == nil && now.Sub(taken) > 24*time.Hour
}

// Take writes a snapshot now, daily-TIME.db in Dir (made 0700 if missing),
// atomically, then deletes the oldest daily snapshots beyond Keep. It
// returns the snapshot's path, and ErrBusy while another is being written.
func (s *Snapshotter) Take(now time.Time) (string, error) {
	if !s.mu.TryLock() {
		return "", ErrBusy
	}
	defer s.mu.Unlock()
	path, n, err := write(s.DB, s.Dir, dailyPrefix, now)
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

// Snapshots lists the daily snapshots in Dir, oldest first.
func (s *Snapshotter) Snapshots() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(s.Dir, dailyPrefix+"*"+snapSuffix))
	if err != nil {
		return nil, err
	}
	// Named by their UTC time: the names sort as the times do.
	slices.Sort(names)
	return names, nil
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
	path, _, err := write(db, dir, fmt.Sprintf("%s%d-", upgradePrefix, from), now)
	return path, err
}

// write writes a copy of db to dir as prefix-TIME.db, atomically.
func write(db Source, dir, prefix string, now time.Time) (string, int64, error) {
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
		n, err = db.WriteBackup(f, nil)
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return path, n, nil
}
