package store

import "errors"

var (
	// ErrLocked is returned by Open when another process holds the database
	// file past the lock timeout (a second gateway on the same file).
	ErrLocked = errors.New("store: database is locked by another process")
	// ErrSchemaTooNew is returned by Open for a file written by a newer
	// gateway; it is left untouched.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this gateway")
	// ErrSchemaOld is returned by a read-only Open of a file from an older
	// gateway: opening it read-write once (starting the daemon) upgrades it.
	ErrSchemaOld = errors.New("store: database schema is older than this gateway; start the gateway once to upgrade it")
	// ErrCorrupt is returned when the database file or a record in it is
	// damaged: Open's consistency check failed, a page could not be read
	// (bbolt panics on some damaged pages; the store turns that into this
	// error), or a stored record cannot be decoded. A file refused with it
	// is left as it was.
	ErrCorrupt = errors.New("store: database is damaged")

	// ErrMissing is returned by Open when there is no database file where
	// the marker beside it says this gateway's database was (it was
	// deleted or moved), and by a read-only Open of a path with no file.
	ErrMissing = errors.New("store: database file is missing")
	// ErrEmpty is returned by Open for a zero-length file where the marker
	// says a database was (bbolt would silently start a new one in it), and
	// by a read-only Open of a zero-length file.
	ErrEmpty = errors.New("store: database file is empty")
	// ErrReplaced is returned by Open when the file at the path is not the
	// database the marker beside it names: another database, or a file
	// from before databases had an identity.
	ErrReplaced = errors.New("store: database file is not the one this gateway ran with")
	// ErrNotHere is returned by a daemon's Open (Options.Marker) that would
	// create a database where there is neither file nor marker, when the
	// directory holds another gateway's database (*.db with an identity)
	// or marker (*.id): storage.path was most likely changed or mistyped,
	// and a new ledger would credit old payments again. Nothing is created.
	ErrNotHere = errors.New("store: no database at the path, but its directory holds another gateway's")
	// ErrExists is returned by Init when a valid database is at the path
	// and Force was not given.
	ErrExists = errors.New("store: a database already exists there")

	// ErrUnavailable is returned by every write once the database's path no
	// longer names the file the gateway has open (it was deleted, renamed
	// or replaced while the gateway ran): what is written to a file nobody
	// will open again is lost at the next start, so nothing is written.
	// Reads go on from the open file. Where the open file itself was
	// changed behind the gateway's back (emptied or overwritten in place),
	// or bbolt failed on it, reads return it too. It lasts until the
	// gateway is restarted.
	ErrUnavailable = errors.New("store: database file was deleted or replaced while the gateway ran; writes are refused")
	// ErrNoSpace is returned by a write that failed for lack of disk space
	// (ENOSPC, EDQUOT, or EFBIG past a file size limit). bbolt rolled the
	// transaction back: nothing of it was kept, and the same write may be
	// sent again once there is space.
	ErrNoSpace = errors.New("store: no space left for the database")

	// ErrNoAlarm is returned for an alarm id that names no stored alarm.
	ErrNoAlarm = errors.New("store: no such alarm")
	// ErrAlarmAcked is returned by AckAlarm for an alarm acknowledged
	// before: the first acknowledgement, its who and its note, stand.
	ErrAlarmAcked = errors.New("store: alarm already acknowledged")

	// ErrNoDelivery is returned for a delivery id that names no stored
	// notification.
	ErrNoDelivery = errors.New("store: no such notification")
	// ErrDeliveryExists is returned when a Router names a delivery id
	// already stored: the event's transaction fails rather than lose one.
	ErrDeliveryExists = errors.New("store: notification id already stored")
	// ErrDeliveryNotPending is returned by MarkDelivered, AttemptFailed,
	// Postpone and DeadLetter for a delivery no longer pending (delivered,
	// or dead-lettered); nothing changes.
	ErrDeliveryNotPending = errors.New("store: notification is not pending")
	// ErrDeliveryPending is returned by Resend for a delivery still
	// pending: it is queued already.
	ErrDeliveryPending = errors.New("store: notification is still pending")
)
