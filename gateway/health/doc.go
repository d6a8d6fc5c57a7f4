// Package health follows whether each meter and each bus answers, tells the
// control room once per change (events meter_offline, meter_online,
// bus_down, bus_up: stored, streamed and logged), and says for /healthz
// which buses have no live meter.
//
// # Use
//
// The gateway makes one Tracker for all buses (New), seeds it with the
// newest stored events (Restore) so that a restart does not report again
// what was reported before, and then feeds it every bus cycle (Cycle, after
// the pipeline has committed it), every failure to open a bus's port
// (PortFailed) and every success (PortOpened). Run calls Check every second:
// an absent meter is probed rarely by the poller, and a bus whose meters are
// all backed off sends no cycle at all, so time alone must be able to turn a
// meter offline. Problems is what /healthz shows.
//
// # Debounce
//
// A meter goes offline when its last FailedReads reads (3 by default) all
// failed AND it has given no good reading for OfflineAfter (30 s by
// default): one noisy cycle, or three failures in a row on a bus polled
// every second, is not an outage; and a meter the poller probes only every
// few minutes is judged by the time since its last good reading, not by a
// count of probes alone. It is online again at its first good reading
// (any reply that decodes; a CRC error or an exception is a failed read):
// waiting longer would hide that it is back. A meter that has not answered
// since the gateway started goes offline by the same rule, counted from the
// start, with one event.
//
// A bus is down at once when its port cannot be opened (an open either
// works or it does not: there is no noise to wait out), and when no meter
// on it has answered for OfflineAfter while FailedReads reads on it failed
// — judged on the bus as a whole, since the poller backs off absent meters
// and probes one a cycle: meter by meter, a dead converter in front of
// thirty meters would be reported thirty intervals late. Then every meter
// on it that has failed a read since its last answer is offline with it.
// It is up when a meter on it answers. A bus without meters is not watched.
// Meter events are per meter even when their whole bus is down: each is a
// tenant's supply the control room can no longer see.
//
// # Events
//
// Each transition is one event, stored (Recorder) and then published
// (Publisher), and one log line (warn when something stops, info when it
// is back) with the fields bus and meter: never one per cycle. Event texts
// carry durations, not clock times: the event has its own time. Bus events
// name their bus at the start of the text ("Bus NAME …"), since an event
// has no bus field; Restore reads them back by that prefix. An event that
// cannot be stored (a full disk, a lost database) is logged at error level
// with its text and not streamed: the stream's resumption relies on ids.
//
// # Restarts
//
// Restore takes stored events, oldest first, and remembers the last state
// reported for each meter and bus: a meter reported offline before a
// restart that still does not answer raises no second meter_offline, and
// one that answers raises meter_online. The gateway passes the newest
// RestoreWindow events; a state reported longer ago than that is reported
// once more after a restart.
//
// A reload replaces the Tracker without a restart: the new one takes over
// the old one's state of every bus on the same port and of the meters
// still on it at the same address (Carry), so that a meter that answered a
// moment before is not a bus that no meter has answered yet.
//
// # Times
//
// Every time comes from the clock passed in (Options.Now): the time of a
// Cycle's readings, of a port failure and of Check. The clock times in
// Problems are shown in Options.Location (the site's zone) with the offset.
//
// It imports gateway/poll (the cycles it is fed) and store (the events it
// records), nothing else of ours: the gateway wires it to the database and
// the live hub.
package health
