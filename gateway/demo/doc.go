// Package demo is the simulated mall and the simulated buses: `mallgrid
// demo` (Run: configs/demo.yaml on simulated KPM33Bs behind
// pseudo-terminals, a temporary database, the whole gateway on top) and
// `mallgrid sim` (Simulate: simulated meters on a serial port or a TCP
// address, from flags or from a sim file, LoadSimFile).
//
// It sits above the composition root: it imports gateway (to run it),
// gateway/config, gateway/yamlcheck, drivers/sim, drivers/meter,
// drivers/modbus and configs; nothing imports it but cmd.
package demo
