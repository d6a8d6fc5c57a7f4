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
	// ErrCorrupt is returned when a stored record cannot be decoded.
	ErrCorrupt = errors.New("store: corrupt record")
)
