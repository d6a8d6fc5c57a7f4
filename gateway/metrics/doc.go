// Package metrics is the gateway's Prometheus exposition (GET /metrics):
// one private registry for the life of the process, never the global one.
//
// # Use
//
// The process makes one Metrics (New) when it has opened the database and
// serves Handler at /metrics (gateway/web guards it: a viewer's bearer
// token or any higher role). Each configuration generation then:
//
//  1. wires the observers, which count as things happen: CycleDone from
//     the bus sink (a whole pass over a bus), Committed and CommitFailed
//     from the pipeline's cycle commits, RelayCommand from the enforcer;
//  2. calls Attach with its Sources — what a scrape reads from the
//     running generation (its meters with their polling statistics,
//     which buses are of MQTT meters, whether an uplink is configured) —
//     and keeps the detach function;
//  3. once its buses have stopped, calls detach, which reads the
//     generation's counts a last time and folds them in.
//
// Between detach and the next Attach a scrape still answers: the counters
// with their values so far, the database's figures but the uplink's (no
// Sources say whether one is configured), no meters.
//
// # Counters across reloads and reconnects
//
// A counter never goes back while the process lives. The polling counts
// (transactions, errors by kind) are the pollers' own statistics, which a
// new generation starts again from zero: each bus's figures are kept as a
// sum carried over earlier sources plus the current source's count.
// detach folds the last count into the carried sum; a bus whose
// transaction count falls between two scrapes without a detach (its
// poller made again) is taken for a restart and folded likewise, losing
// what the old poller counted after the last scrape. A restart whose new
// poller has counted as many by the next scrape as the old one had is not
// seen: the old poller's whole count is lost (the counter still does not
// go back). The observers' counters and histograms live in the Metrics
// itself and are never reset. Like every Prometheus counter they start at
// zero when the process starts.
//
// # Cost of a scrape
//
// At 2,000 meters and 100 tenants a scrape reads the meters from the
// Sources (memory), the open-alarm and outbox-state indexes, the uplink
// outbox's counters, the accounts (one record each) and the ledger
// entries posted since the last scrape — never the whole ledger: the
// ledger's counters count entries posted since the process started (the
// last entry at New is their base), at most maxEntriesPerScrape a scrape
// (a backlog catches up over the next scrapes). BenchmarkScrape measures
// it (docs/BENCHMARKS.md).
//
// # Units
//
// Base units, as Prometheus's naming guide asks: seconds, bytes. Money is
// in yuan (_yuan), as a float: a reading of the ledger for a graph, never
// the ledger, which stays integer micro-yuan. Energy is in watt-hours
// (_wh), the unit the meters, tariffs and ledger count in, so that a
// figure here matches a statement's to the Wh (joules would scale every
// figure by 3,600; kWh would be a prefixed unit).
//
// It imports store (the figures the database keeps) and billing (money's
// unit), nothing of the gateway's: the root adapts its parts to Sources.
package metrics
