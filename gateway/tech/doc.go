// Package tech holds the technician's commissioning tools behind
// `mallgrid meter read|scan|relay`: open a port from command-line flags,
// read every value of a meter, switch its relay and read it back, and find
// which addresses answer on a bus. They speak plain Modbus, so they work on
// any meter of a catalogued model, not only simulated ones.
//
// It imports drivers/modbus and drivers/meter, nothing else of ours.
package tech
