// Package store keeps the gateway's durable state in one bbolt file: the
// latest reading of every meter, 15-minute interval energy, one-minute
// power samples (kept for a configured time, pruned in batches), the ledger,
// meter states, counter breaks, enforcement state, events, the alarms they
// raise and the audit log.
//
// The ledger is append-only: a correction is a new entry. A top-up is kept
// once per payment reference and takes the site's next receipt number in
// its own transaction; finance's adjustments and reversals are kept once
// per reference too (PostCorrection), a reversal undoing one earlier entry
// of its account, at most once, never a reversal.
//
// The file records its schema version; Open upgrades an older file in one
// transaction and refuses a newer one. Writes that belong together go in one
// transaction: everything a bus cycle produces is committed by CommitCycle at
// once, so a crash keeps all of a cycle or none of it.
//
// # Backups and upgrades
//
// WriteBackup writes the open database as one read transaction sees it
// (bbolt's tx.WriteTo): a consistent copy, with the database's identity,
// taken while the gateway writes. Inspect says what a file is (identity,
// schema, newest ledger entry) and takes a file of an older schema; CopyFile
// copies a file no gateway holds. Restore installs a backup, the gateway
// stopped: checked, upgraded and checked again beside the database before
// the current file is kept aside and the marker written. Options.BeforeUpgrade
// is called before an older schema is upgraded (the daemon snapshots the
// file there). testdata/schema holds a file written by each schema's own
// code; every one is upgraded by the tests.
//
// # The file is never silently replaced or trusted
//
// Open checks every page of the file before bbolt maps it (bbolt trusts the
// file, and a garbled page makes it fault, which no recover catches), then
// runs bbolt's consistency check: a damaged file is refused with ErrCorrupt
// and left as it was. A panic from bbolt on any read or write is turned into
// ErrCorrupt too. The file holds an identity, given when it is created;
// with Options.Marker (the daemon), a marker beside the file records it, and
// a missing, empty or other file where the marker names one is refused
// (ErrMissing, ErrEmpty, ErrReplaced). Init starts a new database on
// purpose, keeping any old file aside.
//
// # Write health
//
// Every write goes through one path (health.go), which refuses writes once
// the path no longer names the open file (ErrUnavailable: it was deleted or
// replaced; WatchFile notices it when nothing writes), and turns a write that
// failed for lack of disk into ErrNoSpace. Health reports both, and fails
// too while the file system has less free than a reserve (twice bbolt's
// next growth, at least 4 MiB); a no-space failure clears only when a write
// commits with the reserve free. bbolt rolls a failed commit back, so
// nothing of a refused write is kept.
//
// bbolt maps the file and trusts it, so before every read and write the
// open file itself is checked: no shorter than after the last commit, and
// its newest meta page the one this process committed. A file emptied or
// overwritten in place (same inode) is broken (ErrUnavailable, "changed
// behind the gateway's back"), as is any database on which bbolt panicked
// or faulted: nothing calls bbolt again, reads fail too, and Close does not
// wait for bbolt's locks. A file only gone from its path is still whole:
// reads go on, and Rescue copies it beside the path.
//
// A daemon's Open (Options.Marker) that would create a database refuses to
// where the directory holds another gateway's database or marker (ErrNotHere);
// Created says when it did create one.
//
// # The audit log
//
// AppendAudit appends the control room's changes and failed logins to the
// audit bucket, one durable transaction each, through the same write path
// (a full disk or a lost file refuses a record as it refuses a top-up).
// Records are numbered 1, 2, 3 … under their number (uint64, big-endian)
// and stored as JSON (AuditRecord). Each carries Prev, the hash of the
// record before it (64 zeros for the first), and Hash, the hex SHA-256 of
// its canonical encoding, version "mallgrid-audit/1": the concatenation of
// netstrings — the decimal length of a field's UTF-8 bytes, ":", the bytes,
// "," — of, in order, the version name, seq in decimal, time exactly as
// the stored JSON writes it (RFC 3339 with up to nine fraction digits and
// the offset), actor, role, address, action, target, before, after,
// reason, outcome and prev. Anyone holding a copy of the file can recompute
// the chain from the stored JSON alone. CheckAuditChain (mallgrid verify)
// walks it: numbers contiguous from 1 up to the bucket's sequence, each
// record under its own number, each Prev the Hash before it, each Hash
// recomputed. A log rewritten from some record to its end with every hash
// recomputed passes; the last hash, copied outside the gateway, proves it
// was not.
//
// # Alarms
//
// An alarm is an episode of a condition the control room must act on,
// raised and cleared by events: every event is stored by one function
// (appendEvents), which in the same transaction raises the alarm an event
// of a raising kind opens and clears those an event of a clearing kind
// ends — so an alarm is stored with the reading or action that raised it,
// or not at all. A table (alarms.go) says which kinds raise (meter_offline,
// bus_down, relay_fault, bypass_suspected, database_unavailable), their
// severity, what they are about (a meter, a bus, the site) and which kinds
// clear them. One alarm is open per kind and subject: a raising event while
// it is open joins its episode. An index of open alarms by kind and subject
// keeps raising and clearing to a lookup. AckAlarm records who acknowledged
// an alarm, when and why, once, with an alarm_acknowledged event in the
// same transaction; database_unavailable, which no event clears, ends at
// its acknowledgement. The upgrade to schema 5 derives the alarms of the
// events already stored, so an episode open at the upgrade stays open.
//
// # The notification outbox
//
// Options.Route names the notifications each event causes; appendEvents
// queues them (outbox.go) in the event's own transaction, pending and due
// at the event's time, under the id the router gives (a repeated id fails
// the transaction). The sender takes them by due time (DueDeliveries) and
// records each outcome in its own durable write: MarkDelivered,
// AttemptFailed (due again later; a channel-wide failure spends no
// attempt), Postpone, DeadLetter (with a notify_dead_letter event, whose
// alarm Resend's notify_resent clears). A send whose outcome was never
// recorded stays pending and due: at least once. PauseChannel and
// ResumeChannel raise and clear one notify_channel_down alarm per channel;
// ChannelsDown reads them back after a restart. The upgrade to schema 6
// starts the outbox empty: events stored before it are not sent.
//
// store imports billing for its types and nothing else of ours; it never
// reads the clock — every time it stores comes from the caller.
package store
