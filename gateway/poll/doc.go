// Package poll runs one bus: a single goroutine owns the bus's transport,
// reads every meter by its model's read plan, keeps a pause between requests,
// backs absent meters off, and lets relay commands jump the queue.
//
// A Scheduler hands each completed cycle to a Sink in its own goroutine, so
// the pipeline's one-transaction-per-cycle commit is also the bus's
// back-pressure: a slow disk slows polling instead of piling up readings.
//
// It imports drivers/modbus (the bus) and drivers/meter (the read
// plans), nothing else of ours: it knows neither the database nor billing.
package poll
