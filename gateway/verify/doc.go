// Package verify checks a ledger: `mallgrid verify`. It reads a database
// (read-only, in one pass) and checks every rule the ledger keeps — balances
// that add up, top-ups credited once, charges that are their counter spans
// and their energy's price, each meter's charges covering each of its
// counter chains exactly once, the audit log's hash chain unbroken, every
// alarm what its events say (raised, cleared, acknowledged, one open per
// kind and subject) — and reports every violation. Each rule is a named
// entry in one table, and each is shown necessary by a damaged ledger only
// it finds.
//
// It reads the pipeline's and enforcement's stored forms through their
// packages (gateway/pipeline, gateway/enforce) and imports store, billing
// and billing/counter. It writes nothing to the file it checks: one of an
// older schema is checked on a copy upgraded in the temporary directory,
// removed afterwards.
package verify
