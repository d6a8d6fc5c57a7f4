// Package pipeline turns each bus cycle (and each operator action on a
// meter's counter: a release, an exchange) into one store transaction: per
// reading, billing/counter judges the counter, the accepted energy is
// priced by the tenant's tariff and charged in whole fen with the
// remainder carried, and the readings, interval energy, charges, counter
// chain breaks, events and every meter's new billing state commit together
// — a crash keeps all of a cycle or none, and a reading is billed once.
//
// It also owns the meter billing state's stored form (EncodeState,
// DecodeState), which verify reads, and the configuration drift of meters
// and accounts (FindDrift, SettleRemoved).
//
// It imports gateway/live (to show what it committed), gateway/web (the
// operator results it returns), gateway/poll (the cycles it is handed),
// gateway/config, store, billing and drivers/meter.
package pipeline
