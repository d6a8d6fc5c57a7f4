package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	_ "time/tzdata" // the test must not depend on the machine's zoneinfo

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	db, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func TestOpen_RecordsSchemaVersion(t *testing.T) {
	db, _ := openTemp(t)
	got, err := db.SchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	if got != SchemaVersion {
		t.Errorf("schema version = %d; want %d", got, SchemaVersion)
	}
}

func TestOpen_LockedFile(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 150 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v; want ErrLocked", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("second Open waited %v; want about the 150ms lock timeout", waited)
	}
}

func TestOpen_SchemaTooNew(t *testing.T) {
	db, path := openTemp(t)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer file: err = %v; want ErrSchemaTooNew", err)
	}
}

func TestCommitCycle_RoundTripAcrossReopen(t *testing.T) {
	db, path := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 7, 0, 0, time.UTC)
	cycle := Cycle{
		Readings: []Reading{
			{Meter: "M-101", Time: t0, ImportWh: 123456, Values: []Value{{"voltage_a", 229.5}, {"power", 3120}}, Counters: []Counter{{"export_kwh", 7}}, Relay: "closed"},
			{Meter: "M-102", Time: t0, ImportWh: 99, Values: []Value{{"power", 0}}, Relay: "open"},
		},
		Energy: []IntervalEnergy{
			{Meter: "M-101", Time: t0, Wh: 40},
			{Meter: "M-101", Time: t0.Add(5 * time.Minute), Wh: 2},  // same slot 10:00-10:15
			{Meter: "M-101", Time: t0.Add(10 * time.Minute), Wh: 7}, // next slot
		},
	}
	if _, err := db.CommitCycle(cycle); err != nil {
		t.Fatalf("CommitCycle: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()

	latest, err := db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range cycle.Readings {
		got := latest[want.Meter]
		if !got.Time.Equal(want.Time) || got.ImportWh != want.ImportWh || got.Relay != want.Relay ||
			!reflect.DeepEqual(got.Values, want.Values) || !reflect.DeepEqual(got.Counters, want.Counters) {
			t.Errorf("latest %s = %+v; want %+v", want.Meter, got, want)
		}
	}
	slots, err := db.Intervals("M-101", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []Interval{
		{Start: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Wh: 42},
		{Start: time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC), Wh: 7},
	}
	if len(slots) != len(want) {
		t.Fatalf("intervals = %+v; want %+v", slots, want)
	}
	for i := range want {
		if !slots[i].Start.Equal(want[i].Start) || slots[i].Wh != want[i].Wh {
			t.Errorf("interval %d = %+v; want %+v", i, slots[i], want[i])
		}
	}
}

// A cycle that fails part-way must leave nothing behind: readings and
// energy of one cycle are one transaction.
func TestCommitCycle_AllOrNothing(t *testing.T) {
	db, _ := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	_, err := db.CommitCycle(Cycle{
		Readings: []Reading{{Meter: "M-1", Time: t0, ImportWh: 5}},
		Energy: []IntervalEnergy{
			{Meter: "M-1", Time: t0, Wh: 5},
			{Meter: "", Time: t0, Wh: 1}, // bbolt refuses an empty key
		},
	})
	if err == nil {
		t.Fatal("CommitCycle with an empty meter id succeeded; want an error")
	}
	latest, err := db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 0 {
		t.Errorf("after a failed cycle latest = %v; want nothing", latest)
	}
	slots, err := db.Intervals("M-1", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 0 {
		t.Errorf("after a failed cycle intervals = %v; want none", slots)
	}
}

func TestIntervalStart_Shanghai(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	got := IntervalStart(time.Date(2026, 1, 1, 0, 14, 59, 0, sh))
	want := time.Date(2026, 1, 1, 0, 0, 0, 0, sh)
	if !got.Equal(want) {
		t.Errorf("IntervalStart = %v; want %v", got, want)
	}
}

func TestOpen_MissingBucketIsCorrupt(t *testing.T) {
	db, path := openTemp(t)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketLatest) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a file without its latest bucket: err = %v; want ErrCorrupt", err)
	}
}

// A schema 3 file (before the audit log and the power samples) is upgraded
// in place: its data kept, the new buckets made, the version moved on.
func TestOpen_UpgradesSchema3(t *testing.T) {
	db, path := openTemp(t)
	if _, err := db.PostEvents(Event{Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Kind: "k", Text: "kept"}); err != nil {
		t.Fatal(err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAudit, bucketSamples} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 3))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema 3 file: %v", err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(); v != SchemaVersion {
		t.Errorf("schema after upgrade = %d; want %d", v, SchemaVersion)
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAudit, bucketSamples} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing after the upgrade", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := db.LastEvents(10); err != nil || len(evs) != 1 || evs[0].Text != "kept" {
		t.Errorf("events after the upgrade = %v, %v; want the one kept", evs, err)
	}
}

// Interval energy an earlier build left nested in a file it took past
// schema 3 (the migrations that flatten it did not then) is made flat at
// the file's next read-write open, added to a slot's flat energy — and
// only once: the file is not scanned at every start.
func TestOpen_FlattensNestedIntervalsOnce(t *testing.T) {
	path := copyFixture(t, "v9")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// As that build left it: three of M-1's four slots nested, the fourth
	// flat with 5 Wh more nested for the same slot, and no sign of a pass.
	nest := func(b *bolt.DB, clearMark bool) {
		t.Helper()
		err := b.Update(func(tx *bolt.Tx) error {
			intervals := tx.Bucket(bucketIntervals)
			sub, err := intervals.CreateBucketIfNotExists([]byte("M-1"))
			if err != nil {
				return err
			}
			var flat [][]byte
			c := intervals.Cursor()
			prefix := []byte("M-1\x00")
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				flat = append(flat, bytes.Clone(k))
			}
			for i, k := range flat {
				start := k[len(prefix):]
				if i == len(flat)-1 {
					if err := sub.Put(start, binary.BigEndian.AppendUint64(nil, 5)); err != nil {
						return err
					}
					continue
				}
				if err := sub.Put(start, intervals.Get(k)); err != nil {
					return err
				}
				if err := intervals.Delete(k); err != nil {
					return err
				}
			}
			if clearMark {
				return tx.Bucket(bucketMeta).Delete(keyIntervalsFlat)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	nest(b, true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	slots := func() (int, int64, bool) {
		t.Helper()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		iv, err := db.Intervals("M-1", fixtureT0.Add(-time.Hour), fixtureT0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var wh int64
		for _, i := range iv {
			wh += i.Wh
		}
		nested := false
		_ = db.bolt.View(func(tx *bolt.Tx) error {
			nested = tx.Bucket(bucketIntervals).Bucket([]byte("M-1")) != nil
			return nil
		})
		return len(iv), wh, nested
	}
	if n, wh, nested := slots(); n != 4 || wh != 1005 || nested {
		t.Errorf("M-1 after the open: %d slots, %d Wh, nested bucket left %v; want 4 slots, 1005 Wh, none nested", n, wh, nested)
	}

	// Once done, never again: a nested bucket put back by hand stays.
	b, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	nest(b, false)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, nested := slots(); !nested {
		t.Error("the nested intervals were looked for again at a later open; want once per file")
	}
}

// nestedIntervals finds every meter's bucket among the flat slots of the
// meters around it, skipping the slots.
func TestNestedIntervals(t *testing.T) {
	db, _ := openTemp(t)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		intervals := tx.Bucket(bucketIntervals)
		for _, m := range []string{"A", "M-1", "M-10", "M-1x", "Z"} {
			for s := range 3 {
				if err := intervals.Put(intervalKey(m, fixtureT0.Add(time.Duration(s)*15*time.Minute)), binary.BigEndian.AppendUint64(nil, 1)); err != nil {
					return err
				}
			}
		}
		for _, m := range []string{"M-1", "M-1x", "Z", "ZZ"} {
			if _, err := intervals.CreateBucket([]byte(m)); err != nil {
				return err
			}
		}
		got := nestedIntervals(intervals)
		if want := [][]byte{[]byte("M-1"), []byte("M-1x"), []byte("Z"), []byte("ZZ")}; !reflect.DeepEqual(got, want) {
			t.Errorf("nestedIntervals = %q; want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
