// Package replay runs a captured meter log — Compere MQTT messages as the
// meters sent them — through the same counter validation and pricing as
// the daemon (billing/counter, billing), offline, and reports per meter
// what would be billed and what was refused: `mallgrid billing replay`.
//
// It reads a log and writes a report; it keeps no state and touches no
// database. It reads the messages with the Compere driver (drivers/compere:
// the parser the live MQTT path uses), and imports billing,
// billing/counter, drivers/compere and drivers/meter, and nothing under
// gateway/.
package replay
