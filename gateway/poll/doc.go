// Package poll runs one bus: a single goroutine owns the bus's transport,
// reads every meter by its model's read plan, keeps a pause between requests,
// backs absent meters off, and lets relay commands jump the queue.
//
// A meter may be read more often than its bus (Meter.Interval, for
// high-risk circuits): it is then read on its own schedule — between cycles,
// and before the next meter of a cycle when it comes due during one — and
// the fast meters due together go to the Sink at once as a Cycle of their
// own (Fast), committed in a transaction of their own. A meter is in one
// kind of cycle only, so its readings arrive in the order they were taken;
// the others are still read once a cycle, with at most one batch of fast
// reads between two of them.
//
// A Sink that is also a Hurrier may ask for a reading before its cycle
// ends (one that raises an alarm): the cycle is then handed over in two
// parts, each committed in one transaction.
//
// A Scheduler hands each completed cycle to a Sink in its own goroutine, so
// the pipeline's one-transaction-per-cycle commit is also the bus's
// back-pressure: a slow disk slows polling instead of piling up readings.
//
// It imports drivers/modbus (the bus) and drivers/meter (the read
// plans), nothing else of ours: it knows neither the database nor billing.
package poll
