// Package store keeps the gateway's durable state in one bbolt file: the
// latest reading of every meter, 15-minute interval energy, and (in later
// schema versions) the ledger, baselines and enforcement state.
//
// The file records its schema version; Open upgrades an older file in one
// transaction and refuses a newer one. Writes that belong together go in one
// transaction: everything a bus cycle produces is committed by CommitCycle at
// once, so a crash keeps all of a cycle or none of it.
//
// store imports billing for its types and nothing else of ours; it never
// reads the clock — every time it stores comes from the caller.
package store
