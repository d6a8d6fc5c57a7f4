package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this package writes.
const SchemaVersion = 2

// DefaultLockTimeout bounds the wait for the file lock when Options leave it 0.
const DefaultLockTimeout = 5 * time.Second

var (
	bucketMeta      = []byte("meta")
	bucketLatest    = []byte("latest")    // meter id → JSON Reading
	bucketIntervals = []byte("intervals") // meter id, 0, start (unix s, BE) → Wh (int64, BE)
	// Schema 2: the ledger.
	bucketAccounts = []byte("accounts")    // account id → JSON Account
	bucketEntries  = []byte("entries")     // entry id (uint64 BE, one sequence) → JSON Entry
	bucketByAcct   = []byte("by_account")  // account id → sub-bucket: entry id → nothing
	bucketRefs     = []byte("topup_refs")  // payment reference → entry id
	bucketMeters   = []byte("meter_state") // meter id → the billing state the pipeline keeps
	bucketEvents   = []byte("events")      // event id (uint64 BE, one sequence) → JSON Event
	bucketControl  = []byte("control")     // enforcement state: accounts' policy status, meters' relay control
	keySchema      = []byte("schema_version")
)

// buckets lists every top-level bucket of the current schema.
func buckets() [][]byte {
	return [][]byte{bucketLatest, bucketIntervals, bucketAccounts, bucketEntries, bucketByAcct, bucketRefs, bucketMeters, bucketEvents, bucketControl}
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock; without
	// it bbolt would wait forever. 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// ReadOnly opens the file for reading only (mallgrid verify, backups):
	// no upgrade is attempted, and a file of another schema is refused.
	ReadOnly bool
}

// DB is the gateway's database. Its methods are safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
}

// migration upgrades a file from version-1 to version.
type migration struct {
	version int
	apply   func(tx *bolt.Tx) error
}

// migrations lists every upgrade in order; version 1 is the first layout.
func migrations() []migration {
	return []migration{
		{version: 1, apply: createBuckets(bucketLatest, bucketIntervals)},
		{version: 2, apply: func(tx *bolt.Tx) error {
			if err := createBuckets(bucketAccounts, bucketEntries, bucketByAcct, bucketRefs, bucketMeters, bucketEvents, bucketControl)(tx); err != nil {
				return err
			}
			return latestToBinary(tx)
		}},
	}
}

func createBuckets(names ...[]byte) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		for _, b := range names {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}
}

// Open opens (creating if needed) the database at path and brings its schema
// to SchemaVersion. It returns ErrLocked if the lock is held past the timeout
// and ErrSchemaTooNew for a file from a newer gateway.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path}
	check := db.migrate
	if opts.ReadOnly {
		check = db.checkSchema
	}
	if err := check(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func (db *DB) migrate() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		have := 0
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 4 {
				return fmt.Errorf("schema version: %w", ErrCorrupt)
			}
			have = int(binary.BigEndian.Uint32(v))
		}
		if have > SchemaVersion {
			return fmt.Errorf("%w: file is version %d, this gateway knows %d", ErrSchemaTooNew, have, SchemaVersion)
		}
		for _, m := range migrations() {
			if m.version <= have {
				continue
			}
			if err := m.apply(tx); err != nil {
				return fmt.Errorf("migrate to schema %d: %w", m.version, err)
			}
		}
		// A file that claims this version but lacks a bucket was damaged or
		// edited by hand: refuse it here rather than fail on first use.
		for _, b := range buckets() {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s missing: %w", b, ErrCorrupt)
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
}

// checkSchema is migrate's read-only twin: the file must already be of
// this gateway's schema.
func (db *DB) checkSchema() error {
	v, err := db.SchemaVersion()
	if err != nil {
		return err
	}
	switch {
	case v > SchemaVersion:
		return fmt.Errorf("%w: file is schema %d, this gateway knows %d", ErrSchemaTooNew, v, SchemaVersion)
	case v < SchemaVersion:
		return fmt.Errorf("%w: file is schema %d, this gateway reads %d", ErrSchemaOld, v, SchemaVersion)
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		for _, b := range buckets() {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s missing: %w", b, ErrCorrupt)
			}
		}
		return nil
	})
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// SchemaVersion returns the version recorded in the file.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("no schema version: %w", ErrCorrupt)
		}
		raw := meta.Get(keySchema)
		if len(raw) != 4 {
			return fmt.Errorf("schema version: %w", ErrCorrupt)
		}
		v = int(binary.BigEndian.Uint32(raw))
		return nil
	})
	return v, err
}

// Close closes the file; pending transactions finish first.
func (db *DB) Close() error { return db.bolt.Close() }

// UsedBytes is the data the file holds: its size less the free pages that
// bbolt keeps for reuse (the file never shrinks; compact it offline).
func (db *DB) UsedBytes() (int64, error) {
	var size int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	st := db.bolt.Stats()
	return size - int64(st.FreePageN+st.PendingPageN)*int64(db.bolt.Info().PageSize), err
}
