package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this package writes.
const SchemaVersion = 9

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
	// Schema 3: where each meter's counter chains start (first reading,
	// resets, exchanges), for verify.
	bucketBreaks = []byte("counter_breaks") // sequence (uint64 BE) → JSON Break
	// Schema 4: the control room's audit log, and each meter's power at
	// one-minute resolution for its charts.
	bucketAudit   = []byte("audit")   // sequence (uint64 BE) → record, each chained to the one before by its hash
	bucketSamples = []byte("samples") // meter id → sub-bucket: hour (unix s, BE) → its one-minute samples (samples.go)
	// Schema 5: alarms, raised and cleared by the events stored
	// (alarms.go), and the index of those still open.
	bucketAlarms     = []byte("alarms")      // alarm id (uint64 BE, one sequence) → JSON Alarm
	bucketAlarmsOpen = []byte("alarms_open") // kind, 0, subject → the open alarm's id (uint64 BE)
	// Schema 6: the notification outbox (outbox.go): deliveries in the
	// order written, their ids, and the pending ones by when they are due.
	bucketOutbox    = []byte("outbox")     // sequence (uint64 BE) → JSON Delivery
	bucketOutboxIDs = []byte("outbox_ids") // delivery id → its sequence (uint64 BE)
	bucketOutboxDue = []byte("outbox_due") // due (unix ns, uint64 BE), sequence (uint64 BE) → nothing; pending only
	// Schema 7: the outbox's deliveries by state (the notifications page
	// lists one state without reading the others) and the finished ones by
	// when they finished (kept for notify.keep, then deleted).
	bucketOutboxState = []byte("outbox_state") // state, 0, sequence (uint64 BE) → nothing
	bucketOutboxDone  = []byte("outbox_done")  // done (unix ns, uint64 BE), sequence (uint64 BE) → nothing; delivered and dead only
	// Schema 8: finance's corrections (corrections.go): the site's receipt
	// numbers, whose bucket sequence is the last one given, and which entry
	// each reversal undid (at most one reversal an entry).
	bucketReceipts = []byte("receipts") // receipt number (uint64 BE) → its top-up's entry id (uint64 BE)
	bucketReversed = []byte("reversed") // reversed entry id (uint64 BE) → the reversal's entry id (uint64 BE)
	keySchema      = []byte("schema_version")
	// keyIntervalsFlat is set once interval energy kept nested (schema 1,
	// early schema 2) has been made flat. The migrations to 2 and 3 do it
	// now, but earlier builds took such files past schema 3 without it:
	// those are flattened at their first read-write open, once.
	keyIntervalsFlat = []byte("intervals_flat")

	// Schema 9: the uplink to the mall group's broker (uplink.go,
	// uplink_commands.go) and tenants' e-invoice requests (invoices.go).
	bucketUplinkOut      = []byte("uplink_out")      // seq (uint64 BE) → JSON UplinkMessage, until the broker acknowledged it
	bucketUplinkMeta     = []byte("uplink_meta")     // the seq last given, the feed's cursors
	bucketUplinkCommands = []byte("uplink_commands") // command id → its record (result, expiry)
	bucketInvoices       = []byte("invoices")        // top-up's payment reference → JSON Invoice
)

// buckets lists every top-level bucket of the current schema.
func buckets() [][]byte {
	return [][]byte{bucketLatest, bucketIntervals, bucketAccounts, bucketEntries, bucketByAcct, bucketRefs, bucketMeters, bucketEvents, bucketControl, bucketBreaks,
		bucketAudit, bucketSamples, bucketAlarms, bucketAlarmsOpen, bucketOutbox, bucketOutboxIDs, bucketOutboxDue,
		bucketOutboxState, bucketOutboxDone, bucketReceipts, bucketReversed,
		bucketUplinkOut, bucketUplinkMeta, bucketUplinkCommands, bucketInvoices}
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock; without
	// it bbolt would wait forever. 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// ReadOnly opens the file for reading only (mallgrid verify, backups):
	// no upgrade is attempted, and a file of another schema is refused.
	ReadOnly bool
	// Marker holds the file to its marker (MarkerPath), which names the
	// database this gateway has run with. Where there is a marker, a
	// missing file (ErrMissing), a zero-length one (ErrEmpty) or another
	// database (ErrReplaced) is refused rather than started afresh: a new
	// ledger would credit old payment references again. Where there is
	// none, a read-write Open writes it. The daemon opens its database so.
	Marker bool
	// Route, if set, names the notifications each stored event causes: they
	// are queued in the outbox in the event's own transaction (see
	// Delivery). It runs inside write transactions, so it must be quick and
	// must not call the DB. nil queues none (the offline tools).
	Route Router
	// BeforeUpgrade, if set, is called by a read-write Open with the file's
	// schema version when the file is of an older schema, before anything
	// is upgraded: the daemon writes a snapshot there (WriteBackup), so that
	// going back to the older package is restoring it. An error stops Open
	// with the file untouched.
	BeforeUpgrade func(from int, db *DB) error

	// opening, if set, is called with the file a read-write Open has just
	// opened for bbolt, before bbolt waits for its lock: a test's way to
	// put another file at the path while the open waits.
	opening func(f *os.File)
}

// DB is the gateway's database. Its methods are safe for concurrent use.
type DB struct {
	bolt    *bolt.DB
	path    string
	id      string
	created bool // Open made the file: there was none
	gate    writeGate
	health  health
	free    func(dir string) (int64, error) // statfsFree; tests replace it
	route   Router
}

func newDB(b *bolt.DB, path string) *DB {
	db := &DB{bolt: b, path: path, gate: make(writeGate, 1), free: statfsFree}
	db.health.down = make(chan struct{})
	return db
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
			if err := latestToBinary(tx); err != nil {
				return err
			}
			return flattenIntervals(tx)
		}},
		// Schema 2 changed after its first files were written: its events,
		// control and meter state buckets came later, latest readings
		// became binary and interval keys flat. Such a file still lacks
		// those buckets and holds schema 1's forms: made and rewritten
		// here too (each step leaves a later schema 2 file as it is).
		{version: 3, apply: func(tx *bolt.Tx) error {
			if err := createBuckets(bucketAccounts, bucketEntries, bucketByAcct, bucketRefs, bucketMeters, bucketEvents, bucketControl, bucketBreaks)(tx); err != nil {
				return err
			}
			if err := latestToBinary(tx); err != nil {
				return err
			}
			return flattenIntervals(tx)
		}},
		{version: 4, apply: createBuckets(bucketAudit, bucketSamples)},
		// The alarms of the events stored before: an episode open at the
		// upgrade (a meter offline, a relay that does not follow) stays
		// open, to be cleared by the event that ends it.
		{version: 5, apply: func(tx *bolt.Tx) error {
			if err := createBuckets(bucketAlarms, bucketAlarmsOpen)(tx); err != nil {
				return err
			}
			return deriveAlarms(tx)
		}},
		// The outbox starts empty: events stored before it were never
		// meant to be sent, and sending them now would be news of old.
		{version: 6, apply: createBuckets(bucketOutbox, bucketOutboxIDs, bucketOutboxDue)},
		// The indexes of the deliveries already in the outbox.
		{version: 7, apply: func(tx *bolt.Tx) error {
			if err := createBuckets(bucketOutboxState, bucketOutboxDone)(tx); err != nil {
				return err
			}
			return indexDeliveries(tx)
		}},
		// Top-ups credited before have no receipt number of their own (the
		// entries are never rewritten); the receipts printed for them were
		// numbered by entry id, so numbers start above every id given.
		// Reversals posted before are indexed, so that none of them is
		// reversed again.
		{version: 8, apply: func(tx *bolt.Tx) error {
			if err := createBuckets(bucketReceipts, bucketReversed)(tx); err != nil {
				return err
			}
			if err := startReceipts(tx); err != nil {
				return err
			}
			return indexReversals(tx)
		}},
		// The uplink starts empty: what was stored before goes up only if
		// the feed's cursors reach back to it (they start at the upgrade).
		{version: 9, apply: createBuckets(bucketUplinkOut, bucketUplinkMeta, bucketUplinkCommands, bucketInvoices)},
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
// to SchemaVersion. Before bbolt reads the file, every page is checked to lie
// inside it and bbolt's consistency check is run: a damaged file is refused
// with ErrCorrupt, whatever the damage, and is left as it was. It returns
// ErrLocked if the lock is held past the timeout, ErrSchemaTooNew for a file
// from a newer gateway, and with Options.Marker ErrMissing, ErrEmpty or
// ErrReplaced for a file that is not the database the marker names, and
// ErrNotHere where it would create one beside another gateway's.
func Open(path string, opts Options) (*DB, error) {
	db, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func open(path string, opts Options) (*DB, error) {
	var err error
	for range 2 {
		var db *DB
		if db, err = openOnce(path, opts); err == nil || !errors.Is(err, errOpenRaced) {
			return db, err
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrLocked, err)
}

// errOpenRaced is openChecked's and openOnce's error for a file or
// marker replaced while they opened them.
var errOpenRaced = errors.New("replaced while it was being opened (a restore finished meanwhile)")

// openOnce is openChecked, and refuses a file or marker replaced while it
// ran: a restore holds the file's lock until it has put the restored file
// in place and written its marker, so an Open that waited for the lock
// has read the marker before, and may have checked or opened the file that
// was kept aside. open then starts again, on the restored file, rather
// than run on the one kept aside or refuse the restored one as another
// database.
func openOnce(path string, opts Options) (*DB, error) {
	marker, _ := os.ReadFile(MarkerPath(path))
	db, err := openChecked(path, opts)
	if opts.Marker && (errors.Is(err, ErrReplaced) || errors.Is(err, ErrMissing) || errors.Is(err, ErrEmpty)) {
		if now, _ := os.ReadFile(MarkerPath(path)); !bytes.Equal(now, marker) {
			return nil, fmt.Errorf("the marker %s %w", MarkerPath(path), errOpenRaced)
		}
	}
	return db, err
}

// namesFile says whether path names file (the same inode).
func namesFile(path string, file os.FileInfo) bool {
	st, err := os.Stat(path)
	return err == nil && os.SameFile(st, file)
}

func openChecked(path string, opts Options) (*DB, error) {
	want := "" // the identity the marker names
	if opts.Marker {
		var err error
		if want, err = readMarker(MarkerPath(path)); err != nil {
			return nil, err
		}
	}
	created, checked := false, false
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if want != "" {
			return nil, fmt.Errorf("%w: no file, where the marker %s says this gateway's database (%s) was", ErrMissing, MarkerPath(path), want)
		}
		if opts.ReadOnly {
			return nil, fmt.Errorf("%w: no such file", ErrMissing)
		}
		if opts.Marker {
			if err := noOthers(path); err != nil {
				return nil, err
			}
		}
		created = true
	case err != nil:
		return nil, err
	case st.Size() == 0:
		if want != "" {
			return nil, fmt.Errorf("%w: zero bytes, where the marker %s says this gateway's database (%s) was", ErrEmpty, MarkerPath(path), want)
		}
		if opts.ReadOnly {
			return nil, fmt.Errorf("%w: zero bytes", ErrEmpty)
		}
	default:
		if err := checkPages(path, !opts.ReadOnly, lockTimeout(opts)); err != nil {
			return nil, err
		}
		if !opts.ReadOnly {
			// A read-write bbolt Open writes to the file before anything of
			// ours has looked at it (a freelist, for a file that has none
			// saved): a file that is refused must be refused untouched, so
			// it is checked on a read-only open first.
			if err := precheck(path, want, opts); err != nil {
				return nil, err
			}
			checked = true
		}
	}
	b, file, fd, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	// Once the lock is held no restore replaces the file; one that did
	// while this open waited for the lock left it holding the file kept
	// aside, which must not be upgraded or run on.
	if !namesFile(path, file) {
		_ = b.Close()
		return nil, fmt.Errorf("%s %w", path, errOpenRaced)
	}
	db := newDB(b, path)
	db.created = created
	db.route = opts.Route
	if !opts.ReadOnly {
		db.health.file = file
	}
	if err := db.start(want, opts, checked); err != nil {
		_ = db.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		if err := db.watchContent(fd); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	return db, nil
}

// precheck runs the checks of start that read (consistency, identity
// against the marker) on a read-only open of the file.
func precheck(path, want string, opts Options) error {
	ro := opts
	ro.ReadOnly = true
	b, _, _, err := openBolt(path, ro)
	if err != nil {
		return err
	}
	db := newDB(b, path)
	err = db.checkIdentity(want)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// openBolt opens the file with bbolt, mapping its errors to ours, and
// returns it with what the open file is.
func openBolt(path string, opts Options) (*bolt.DB, os.FileInfo, *os.File, error) {
	var (
		b    *bolt.DB
		file *os.File // the file bbolt opened: what the path must go on naming
	)
	_, err := protectPanic(func() error {
		var err error
		b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout(opts), ReadOnly: opts.ReadOnly,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				file = f
				if err == nil && !opts.ReadOnly && opts.opening != nil {
					opts.opening(f)
				}
				return f, err
			}})
		return err
	})
	if b == nil && file != nil && errors.Is(err, ErrCorrupt) {
		// bbolt panicked part way through Open, past its own clean-up: the
		// file's lock would stay held by this process (its mapping, which
		// cannot be reached from here, keeps the file open), and every
		// later Open of the path would wait for it.
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		_ = file.Close()
	}
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, nil, nil, ErrLocked
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	case err != nil:
		return nil, nil, nil, err
	}
	st, err := file.Stat()
	if err != nil {
		_ = b.Close()
		return nil, nil, nil, err
	}
	return b, st, file, nil
}

func lockTimeout(opts Options) time.Duration {
	if opts.LockTimeout <= 0 {
		return DefaultLockTimeout
	}
	return opts.LockTimeout
}

// start checks the opened file and readies it: consistency, identity
// against the marker (unless precheck has done both), schema, and the
// marker written for a new one.
func (db *DB) start(want string, opts Options, checked bool) error {
	if !checked {
		if err := db.checkIdentity(want); err != nil {
			return err
		}
	} else {
		id, err := db.storedID()
		if err != nil {
			return err
		}
		db.id = id
	}
	if opts.ReadOnly {
		return db.checkSchema()
	}
	if opts.BeforeUpgrade != nil {
		if have := db.storedSchema(); have > 0 && have < SchemaVersion {
			if err := opts.BeforeUpgrade(have, db); err != nil {
				return fmt.Errorf("before upgrading schema %d to %d: %w", have, SchemaVersion, err)
			}
		}
	}
	if err := db.migrate(); err != nil {
		return err
	}
	if opts.Marker && want == "" {
		return writeMarker(MarkerPath(db.path), db.id)
	}
	return nil
}

// checkIdentity runs bbolt's consistency check and compares the file's
// identity with want (the marker's; "" for none), before this package
// writes anything: a file that is not ours is left as it was found.
func (db *DB) checkIdentity(want string) error {
	if err := db.consistent(); err != nil {
		return err
	}
	id, err := db.storedID()
	if err != nil {
		return err
	}
	if want != "" && id != want {
		if id == "" {
			return fmt.Errorf("%w: it has no identity, so it is from before the marker %s (%s) was written; "+
				"if it is a backup of this gateway's database, delete the marker and start again", ErrReplaced, MarkerPath(db.path), want)
		}
		return fmt.Errorf("%w: it is database %s; the marker %s names %s", ErrReplaced, id, MarkerPath(db.path), want)
	}
	db.id = id
	return nil
}

// consistent runs bbolt's consistency check over the whole file (checkPages
// has made sure it can without faulting).
func (db *DB) consistent() error {
	var problems []string
	n := 0
	err := db.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if n++; n <= 3 {
				problems = append(problems, err.Error())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: bbolt's check found %d problem(s): %s", ErrCorrupt, n, strings.Join(problems, "; "))
	}
	return nil
}

// migrate upgrades the file to SchemaVersion and gives it an identity if
// it has none.
func (db *DB) migrate() error {
	return db.update(func(tx *bolt.Tx) error {
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
			return TooNew(have)
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
		if meta.Get(keyIntervalsFlat) == nil {
			if err := flattenIntervals(tx); err != nil {
				return fmt.Errorf("flatten interval energy: %w", err)
			}
			if err := meta.Put(keyIntervalsFlat, []byte{1}); err != nil {
				return err
			}
		}
		if db.id == "" {
			db.id = newID()
			if err := meta.Put(keyID, []byte(db.id)); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
}

// storedSchema is the schema version the file records; 0 for none or an
// unreadable one (migrate judges those).
func (db *DB) storedSchema() int {
	v := 0
	_ = db.view(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if raw := meta.Get(keySchema); len(raw) == 4 {
				v = int(binary.BigEndian.Uint32(raw))
			}
		}
		return nil
	})
	return v
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
		return TooNew(v)
	case v < SchemaVersion:
		return fmt.Errorf("%w: file is schema %d, this gateway reads %d", ErrSchemaOld, v, SchemaVersion)
	}
	return db.view(func(tx *bolt.Tx) error {
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
	err := db.view(func(tx *bolt.Tx) error {
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

// closeWait bounds Close's wait for bbolt once the database is broken.
const closeWait = 500 * time.Millisecond

// Close closes the file; pending transactions finish first. Once the
// database is broken (see Broken), a fault may have left bbolt's locks
// held, and its Close would wait for ever: Close then waits closeWait at
// most, and if bbolt has not let go by then, releases the file's lock and
// handle itself and returns an error saying so (the mapping goes with the
// process).
func (db *DB) Close() error {
	broken := db.brokenErr()
	if broken == nil {
		return db.bolt.Close()
	}
	done := make(chan error, 1)
	go func() { done <- db.bolt.Close() }() // may never return; it holds nothing the process needs
	select {
	case err := <-done:
		return err
	case <-time.After(closeWait):
	}
	if fd := db.health.fd; fd != nil {
		_ = syscall.Flock(int(fd.Fd()), syscall.LOCK_UN)
		_ = fd.Close()
	}
	return fmt.Errorf("close %s: bbolt did not finish within %v after the database broke (%w); its file was released without it", db.path, closeWait, broken)
}

// Created says whether Open created the file: there was none at the path.
func (db *DB) Created() bool { return db.created }

// UsedBytes is the data the file holds: its size less the free pages that
// bbolt keeps for reuse (the file never shrinks; compact it offline).
func (db *DB) UsedBytes() (int64, error) {
	var size int64
	err := db.view(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	st := db.bolt.Stats()
	return size - int64(st.FreePageN+st.PendingPageN)*int64(db.bolt.Info().PageSize), err
}
