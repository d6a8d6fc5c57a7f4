// Package tech holds the technician's commissioning tools behind
// `mallgrid meter read|scan|relay`: open a port from command-line flags,
// read every value of a meter, switch its relay and read it back, and find
// which addresses answer on a bus. They speak plain Modbus, so they work on
// any meter of a catalogued model, not only simulated ones.
//
// Port ownership: a command opens the port as the gateway does, holding its
// lock file, so a port the running gateway polls is refused at once with
// the gateway named (Hint says what to do instead); LiveMeter and
// FetchMeter read a configured meter through the gateway's API. Errors get
// Hint's advice: for a timeout the address, baud rate, parity, wiring and
// termination; for a garbled reply the line settings or noise; for an
// exception the model or function code; for the port its path and
// permissions.
//
// It imports drivers/modbus and drivers/meter, nothing else of ours.
package tech
