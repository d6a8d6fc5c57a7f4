// Package gateway is the composition root: it turns a loaded configuration
// into running parts — one poll scheduler per bus, the pipeline that commits
// each bus cycle in one bbolt transaction, and the web server — and shuts
// them down in order: stop polling, finish the cycle's transaction, stop
// HTTP, close the database.
//
// It is the only package that knows every other one; the import rule of
// DESIGN.md (cmd → gateway/... → store, billing, drivers/...) is enforced by
// imports_test.go.
package gateway
