package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/backup"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// snapshotBeforeUpgrade is store.Options.BeforeUpgrade for the daemon: a
// file of an older schema is copied to the snapshot directory before it
// is upgraded, so that going back to the older package is restoring that
// copy. A copy that cannot be written stops the start: the upgrade is
// not made without the way back.
func snapshotBeforeUpgrade(cfg *config.Config, log zerolog.Logger, clock func() time.Time) func(int, *store.DB) error {
	return func(from int, db *store.DB) error {
		path, err := backup.PreUpgrade(db, cfg.Storage.SnapshotDir(), from, clock())
		if err != nil {
			return fmt.Errorf("%w; the database was not upgraded (check storage.snapshots.dir)", err)
		}
		log.Warn().Str("db", db.Path()).Str("snapshot", path).Int("from", from).Int("to", store.SchemaVersion).
			Msg("database schema upgraded; the copy from before the upgrade is the way back to the older package")
		return nil
	}
}

// startBackups starts what copies the database for the life of the
// process: the control socket `mallgrid backup` asks, and the daily
// snapshots (storage.snapshots.keep > 0), once the temporary files of
// copies killed midway are removed. The returned stop ends both, a copy
// being sent or written among them, and waits for them; it is called
// before the database is closed.
func startBackups(ctx context.Context, cfg *config.Config, db *store.DB, log zerolog.Logger, now func() time.Time) (stop func(), err error) {
	// Each as large as the database: left by a copy that was killed
	// midway (a stop that outlasted TimeoutStopSec, a power cut). Before
	// Listen: while another gateway answers on the socket (one still
	// running on a file moved away from the path) nothing is removed, and
	// Listen then refuses to start.
	removed, err := backup.RemoveStale(db.Path(), cfg.Storage.SnapshotDir())
	for _, path := range removed {
		log.Warn().Str("file", path).Msg("removed a file left by a copy or restore stopped midway")
	}
	if err != nil {
		log.Warn().Err(err).Msg("temporary files left by a copy stopped midway: not all removed")
	}
	srv, err := backup.Listen(backup.SocketPath(db.Path()), db, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			log.Error().Err(err).Msg("control socket stopped; `mallgrid backup` cannot reach this gateway")
		}
	}()
	if keep := cfg.Storage.SnapshotKeep(); keep > 0 {
		snap := &backup.Snapshotter{DB: db, Dir: cfg.Storage.SnapshotDir(), Keep: keep, At: cfg.Storage.SnapshotAt(), Now: now, Log: log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = snap.Run(ctx) // returns nil on cancel; a failed snapshot is logged inside
		}()
	}
	return func() { cancel(); wg.Wait() }, nil
}
