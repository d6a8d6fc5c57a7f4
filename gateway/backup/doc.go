// Package backup copies the gateway's database while the gateway runs: the
// control socket that streams a consistent copy to `mallgrid backup`, the
// daily snapshots kept in the state directory, and the client side that
// the command uses.
//
// The daemon holds bbolt's exclusive lock on the database file, so no
// other process can open it, even read-only. A copy of the running
// database is therefore made by the daemon: one read transaction written
// out whole (store.DB.WriteBackup), which never waits for and never holds
// up a write.
//
// # Use
//
// The daemon, once the database is open and for the life of the process
// (not of one configuration: a reload keeps both):
//
//	removed, err := backup.RemoveStale(cfg.Storage.Path, cfg.Storage.SnapshotDir()) // before Listen: nothing while another gateway answers
//	srv, err := backup.Listen(backup.SocketPath(cfg.Storage.Path), db, log)
//	go srv.Run(ctx)       // removes the socket when ctx ends
//	snap := &backup.Snapshotter{DB: db, Dir: cfg.Storage.SnapshotDir(), Keep: …, At: …, Now: …, Log: log}
//	go snap.Run(ctx)
//
// ctx ending ends what is under way: the copies being sent (their
// connections are closed) and the snapshot being written (its temporary
// file removed), so that the gateway stops within systemd's
// TimeoutStopSec. What a killed process left (temporary files as large as
// the database) RemoveStale removes at the next start — unless a gateway
// still answers on the control socket, whose files they may be.
//
// The command: Fetch(ctx, socket, w) asks a running daemon for a copy; Take
// does that when a daemon answers, and otherwise opens the file itself.
//
// # The socket
//
// SocketPath is the database's path with ".ctl" added
// (/var/lib/mallgrid/mallgrid.db.ctl), a unix stream socket of mode 0600:
// only the gateway's user (and root) may ask for a copy of the ledger. A
// path longer than a socket address holds (107 bytes) is refused at start
// with an error saying so. A socket left by a daemon that was killed is
// replaced; one another process still answers on is not. The protocol is a
// line and a stream: the client sends "backup\n"; the daemon answers
// "ok SIZE ID SCHEMA\n" and exactly SIZE bytes of database, or
// "error TEXT\n". Every read and write on either side has a deadline
// (Timeout), and the daemon's whole copy one more (MaxCopy): the copy is
// one read transaction, which holds up bbolt's growing of the file while
// it lasts, so a stalled or slow client ends its copy, never the daemon's
// commits.
//
// # Times
//
// The snapshotter's clock (Now) is the site's: a snapshot is taken once a
// day when the site's clock passes At (minutes after midnight), and one at
// start when the newest is more than a day old (the gateway was stopped
// then; a new installation with none waits for At). Its files
// are named by the UTC time they were taken, daily-20060102T150405Z.db
// (daily-…Z-2.db, -3… for more in one second), and are ordered by that
// time and number; another file in the directory, even one named
// daily-….db, is neither counted nor deleted. The pre-upgrade snapshot
// (PreUpgrade) is named before-schema-N-….db and is never rotated away.
package backup
