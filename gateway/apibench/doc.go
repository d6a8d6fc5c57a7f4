// Package apibench measures the control room's meter API at a mall's
// scale: GET /api/v1/meters over a real TCP socket with gzip, the whole
// list and a page of 100, and the size of the live stream's message when
// every meter changed. cmd/mallgrid-bench prints its rows; its Go
// benchmarks are part of make bench.
//
// The meters are real configuration (Mall) fed through the real
// live.Picture: readings as a KPM33B reports them, polling statistics as
// a scheduler keeps them (Fill), served by the real web.Server.
//
// It imports gateway/live, gateway/web, gateway/config, gateway/poll and
// gateway/bench (its table's rows), store and drivers/meter.
package apibench
