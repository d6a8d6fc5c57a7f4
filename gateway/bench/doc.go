// Package bench measures the gateway's polling on simulated buses: cycle
// time against the theoretical wire time, the cost of absent meters, CPU
// time and allocations per reading, and relay-command latency under full
// polling. cmd/mallgrid-bench prints the results as a table.
//
// The simulated meters run in a child process on a pseudo-terminal, so the
// CPU time and allocations measured here are the gateway's own, and the
// two sides meet only through the terminal, as on a real line.
//
// It imports gateway/poll (what it measures), drivers/modbus,
// drivers/meter and drivers/sim (the simulated line).
package bench
