package history

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/store"
)

// Pruner deletes meters' power samples older than Keep, in batches, so
// that no transaction holds the database's write lock for long: a bus
// cycle waits for at most one batch. Set its fields before Run.
type Pruner struct {
	DB   *store.DB
	Keep time.Duration // storage.samples_keep; 0 keeps every sample
	Now  func() time.Time
	Log  zerolog.Logger
	// Every is how often it looks; 0 means an hour (samples are stored by
	// the hour, so looking more often finds nothing new).
	Every time.Duration
	// Batch is how many stored hours one transaction deletes at most; 0
	// means DefaultBatch.
	Batch int
	// Pause is the wait between two batches, leaving the write lock to
	// the buses; 0 means 50 ms.
	Pause time.Duration
}

// DefaultBatch is Pruner.Batch's default: 500 meter-hours, about 300 KB of
// samples, deleted in a few milliseconds.
const DefaultBatch = 500

// Run prunes at once and then every Every until ctx ends; it returns nil
// then. A failed batch is logged and tried again at the next look.
func (p *Pruner) Run(ctx context.Context) error {
	every := p.Every
	if every <= 0 {
		every = time.Hour
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := p.Prune(ctx); err != nil && !errors.Is(err, context.Canceled) {
			p.Log.Error().Err(err).Msg("prune power samples")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Prune deletes every stored hour of samples that ended Keep or longer
// before Now, batch by batch, and returns how many it deleted; with Keep 0
// it deletes nothing. It stops
// early, with ctx's error, when ctx ends.
func (p *Pruner) Prune(ctx context.Context) (int, error) {
	if p.Keep <= 0 {
		return 0, nil // never "everything before now"
	}
	batch := p.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	pause := p.Pause
	if pause <= 0 {
		pause = 50 * time.Millisecond
	}
	before := p.Now().Add(-p.Keep)
	total := 0
	for {
		n, err := p.DB.PruneSamples(before, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < batch {
			if total > 0 {
				p.Log.Info().Int("hours", total).Time("before", before).Msg("power samples pruned")
			}
			return total, nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, ctx.Err()
		case <-t.C:
		}
	}
}
