package backup

import "errors"

var (
	// ErrBusy is returned by Snapshotter.Take while another snapshot is
	// being written: never two at once.
	ErrBusy = errors.New("backup: a snapshot is being written already")
	// ErrNoDaemon is returned by Fetch when nothing answers on the control
	// socket: no gateway runs on the database (or one too old to serve it).
	ErrNoDaemon = errors.New("backup: no gateway answers on the control socket")
	// ErrSocketPath is returned by Listen for a socket path longer than a
	// unix socket address holds.
	ErrSocketPath = errors.New("backup: control socket path too long")
	// ErrShort is returned by Fetch when the daemon's stream ended before
	// the size it announced: the copy is not whole.
	ErrShort = errors.New("backup: the copy ended early")
	// ErrNoRoom is returned by Snapshotter.Take when the snapshot
	// directory's file system has less free than the copy and the
	// database's reserve: the snapshot is skipped rather than leave the
	// ledger's writes without room.
	ErrNoRoom = errors.New("backup: no room for the snapshot")
	// ErrOutIsDatabase is returned by Take for an output path that is the
	// database itself or one of the files the gateway keeps beside it.
	ErrOutIsDatabase = errors.New("backup: the output is the database's own file")
)
