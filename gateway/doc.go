// Package gateway is the composition root: it turns a loaded configuration
// into running parts — one poll scheduler per bus (gateway/poll), the
// pipeline that commits each bus cycle in one bbolt transaction
// (gateway/pipeline), enforcement (gateway/enforce), the services the API
// calls (gateway/accounts), the live picture and event hub (gateway/live)
// and the web server (gateway/web) — and shuts them down in order: stop
// polling, finish the cycle's transaction, stop HTTP, close the database.
// It holds no domain logic of its own.
//
// It is the only package that knows every part; the import rule of
// DESIGN.md (cmd → gateway/... → store, billing, drivers/...), and the
// order in which the packages under gateway/ may import each other, are
// enforced by imports_test.go.
package gateway
