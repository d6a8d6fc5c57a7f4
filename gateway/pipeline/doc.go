// Package pipeline turns each bus cycle (and each operator action on a
// meter's counter: a release, an exchange) into one store transaction: per
// reading, billing/counter judges the counter, the accepted energy is
// priced by the tenant's tariff and charged in whole fen with the
// remainder carried, and the readings, interval energy, charges, counter
// chain breaks, events and every meter's new billing state commit together
// — a crash keeps all of a cycle or none, and a reading is billed once.
//
// Each meter's readings of a minute are added up in memory into one power
// sample (mean, least and greatest W, the counter at the minute's end),
// which goes into the cycle that shows the minute finished: a 10 s poll
// writes a sample a minute, and the minute under way at a stop is lost.
//
// It also owns the meter billing state's stored form (EncodeState,
// DecodeState), which verify reads, and the configuration drift of meters
// and accounts (FindDrift, SettleRemoved).
//
// It imports gateway/live (to show what it committed), gateway/web (the
// operator results it returns), gateway/poll (the cycles it is handed),
// gateway/config, store, billing and drivers/meter.
package pipeline
