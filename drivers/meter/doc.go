// Package meter describes electricity meter models as data and turns what a
// meter's registers hold into a Reading.
//
// A Model is a literal (or a model declared in the technician's YAML): the
// registers a meter exposes, each with its quantity, address, function code,
// data type, word and byte order, scale and unit, plus how its load-control
// relay is read and switched. Nothing here does I/O of its own: Read drives a
// RegisterReader supplied by the caller, so the same code reads a meter over
// RTU, Modbus TCP or a test double.
//
// The built-in models (Builtin) are one file each, their register maps
// transcribed from a named source and pinned by a golden-frame test. Where
// sources disagree on a model's read function code, AltFunction records the
// other one, and Model.WithFunction makes the copy that reads a unit needing
// it.
//
// Energy leaves this package as int64 watt-hours; instantaneous values
// (voltage, current, power, power factor) stay float64 because they are
// measurements, never money.
package meter
