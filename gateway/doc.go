// Package gateway is the composition root: it turns a loaded configuration
// into running parts — one poll scheduler per bus (gateway/poll), the
// pipeline that commits each bus cycle in one bbolt transaction
// (gateway/pipeline), enforcement (gateway/enforce), the services the API
// calls (gateway/accounts), the live picture and event hub (gateway/live)
// and the web server (gateway/web) — and shuts them down in order: stop
// polling, finish the cycle's transaction, stop HTTP, close the database.
// It holds no domain logic of its own.
//
// Run is the process: it opens the database once and holds the HTTP
// listener (web.Front), the logins, the supervisor, the metrics registry,
// the control socket and the snapshots for its whole life. Everything
// built from one configuration is a generation (generation.go). A reload
// (Options.Reload, SIGHUP in the daemon; reload.go) loads the file again:
// with any problem it logs each with its FILE:LINE and changes nothing;
// otherwise the generation stops as a shutdown stops it and a new one
// starts on the same database as a start does, so a reading is billed once
// across it, at the tariff in force when it is read.
//
// It is the only package that knows every part; the import rule of
// DESIGN.md (cmd → gateway/... → store, billing, drivers/...), and the
// order in which the packages under gateway/ may import each other, are
// enforced by imports_test.go.
package gateway
