package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"mallgrid/billing"
	"mallgrid/store"
)

// bigDB returns the cached database of at least o.bigDB bytes for this mall
// and this store's schema, making it first if there is none the gateway
// would open as it is (a few minutes; then the description of how long it
// took). The cache is never run on: runCopy gives each run its own copy.
// A cancelled ctx stops the making and leaves no file behind.
func bigDB(ctx context.Context, o options) (path, made string, err error) {
	path = cachePath(o)
	if st, err := os.Stat(path); err == nil && st.Size() >= o.bigDB && opensAsIs(path) {
		return path, "", nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", err
	}
	os.Remove(path)
	os.Remove(store.MarkerPath(path))
	t := time.Now()
	if err := prepareDB(ctx, path, o.buses, o.perBus, o.bigDB); err != nil {
		os.Remove(path)
		os.Remove(store.MarkerPath(path))
		return "", "", err
	}
	removeOtherSchemas(o)
	return path, time.Since(t).Round(time.Second).String(), nil
}

// removeOtherSchemas removes the caches of this mall and size made for
// another schema (and one from before the schema was in the name, with
// the before-schema snapshots its runs upgraded into it): a GB each, in
// $TMPDIR, none of them ever used again.
func removeOtherSchemas(o options) {
	dir := filepath.Dir(cachePath(o))
	old := filepath.Join(o.cache, fmt.Sprintf("%dx%d-%d", o.buses, o.perBus, o.bigDB))
	others, _ := filepath.Glob(old + "-schema*")
	for _, d := range append(others, old) {
		if d != dir {
			os.RemoveAll(d)
		}
	}
}

// cachePath is where bigDB keeps the database for o. A directory of its
// own: the store refuses to start a database beside another gateway's
// (store.ErrNotHere). The schema is in its name: a file of an older one
// would be upgraded at the gateway's start, which first copies the whole
// file to a before-schema snapshot — the start-up measured would be that.
func cachePath(o options) string {
	return filepath.Join(o.cache, fmt.Sprintf("%dx%d-%d-schema%d", o.buses, o.perBus, o.bigDB, store.SchemaVersion), "mallgrid.db")
}

// opensAsIs reports whether the gateway would open the database at path
// as it is: its marker beside it, not damaged, of this store's schema (an
// older one would be upgraded first, a newer one refused).
func opensAsIs(path string) bool {
	db, err := store.Open(path, store.Options{ReadOnly: true, Marker: true})
	if err != nil {
		return false
	}
	return db.Close() == nil
}

// runCopy copies the database at src and its marker into dir/large for
// one run and returns the copy's path: the gateway writes to the file it
// runs on (a run's readings and charges, an upgrade after a store change),
// and the cache must stay as it was made. The copy shares the cache's
// blocks where the file system can (a reflink: btrfs, XFS); elsewhere it
// is a full copy, which needs the room, and which the run's directory
// takes away at its end.
func runCopy(ctx context.Context, src, dir string) (string, error) {
	dst := filepath.Join(dir, "large", filepath.Base(src))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := copyFile(ctx, src, dst); err != nil {
		os.Remove(dst)
		return "", err
	}
	if err := copyFile(ctx, store.MarkerPath(src), store.MarkerPath(dst)); err != nil {
		os.Remove(dst)
		return "", err
	}
	return dst, nil
}

// copyFile copies src to a new file dst, as a reflink where the file
// system has them, else in chunks with ctx checked between them.
func copyFile(ctx context.Context, src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return nil
	}
	const chunk = 64 << 20
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := io.CopyN(out, in, chunk); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
}

// prepareDB makes the gateway's database at path as the gateway would (its
// marker beside it), credits every tenant ¥100,000 so that none is cut off
// during a run, and, for history > 0, writes the history of a mall that
// has run for days until the file reaches history bytes: per meter and
// 15-minute slot the interval's energy, one charge and 15 one-minute power
// samples, committed one bus cycle (125 meters) per transaction as the
// pipeline does, from 30 days ago onwards. A cancelled ctx stops it
// between two slots with ctx's error.
func prepareDB(ctx context.Context, path string, buses, perBus int, history int64) error {
	db, err := store.Open(path, store.Options{Marker: true})
	if err != nil {
		return err
	}
	now := time.Now()
	for b := 1; b <= buses; b++ {
		if err := ctx.Err(); err != nil {
			db.Close()
			return err
		}
		for a := 1; a <= perBus; a++ {
			_, _, err := db.PostTopUp(store.Entry{Time: now.Add(-31 * 24 * time.Hour), Account: tenantID(b, a), Kind: store.TopUp,
				Amount: 100_000 * billing.Yuan, Ref: "FOOTPRINT-" + tenantID(b, a), Channel: "bank", Actor: "footprint"})
			if err != nil {
				db.Close()
				return fmt.Errorf("top-up of %s: %w", tenantID(b, a), err)
			}
		}
	}
	if history > 0 {
		if err := writeHistory(ctx, db, path, buses, perBus, history, now); err != nil {
			db.Close()
			return err
		}
	}
	return db.Close()
}

func writeHistory(ctx context.Context, db *store.DB, path string, buses, perBus int, history int64, now time.Time) error {
	price, err := billing.ParsePrice("1.00")
	if err != nil {
		return err
	}
	const slotWh = 1250 // 5 kW for 15 minutes
	counter := map[string]int64{}
	for slot := now.Add(-30 * 24 * time.Hour).Truncate(store.IntervalLength); slot.Add(store.IntervalLength).Before(now); slot = slot.Add(store.IntervalLength) {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := slot.Add(store.IntervalLength)
		for b := 1; b <= buses; b++ {
			var c store.Cycle
			for a := 1; a <= perBus; a++ {
				m, ten := meterID(b, a), tenantID(b, a)
				from := counter[m]
				to := from + slotWh
				counter[m] = to
				c.Energy = append(c.Energy, store.IntervalEnergy{Meter: m, Time: slot, Wh: slotWh})
				for i := range 15 {
					c.Samples = append(c.Samples, store.Sample{Meter: m, Minute: slot.Add(time.Duration(i) * time.Minute),
						Readings: 2, AvgW: 5000 + int64(a%7), MinW: 4900, MaxW: 5100 + int64(i), ImportWh: from + int64(i)*slotWh/15})
				}
				s, e := slot, end
				c.Charges = append(c.Charges, store.Entry{Time: end, Account: ten, Kind: store.Charge,
					Amount: -billing.Money(slotWh) * billing.Fen / 10, // ¥1.00/kWh: 1,250 Wh is ¥1.25
					Meter:  m, FromWh: from, ToWh: to, Wh: slotWh, From: &s, To: &e, Window: "flat", UnitPrice: price})
			}
			if _, err := db.CommitCycle(c); err != nil {
				return fmt.Errorf("history at %s: %w", slot.Format(time.RFC3339), err)
			}
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.Size() >= history {
			return nil
		}
	}
	return nil
}
