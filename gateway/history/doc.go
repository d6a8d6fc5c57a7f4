// Package history answers the control room's charts from the store: a
// meter's power and energy over time (GET /api/v1/meters/{id}/history) and
// a tenant's daily use and charges by tariff window
// (GET /api/v1/accounts/{tenant}/usage), and keeps the one-minute power
// samples within storage.samples_keep.
//
// # Use
//
// Reader implements web.History; set its fields and hand it to web.New.
// Pruner.Run deletes samples older than the retention, in batches, until
// its context ends; the gateway runs it beside polling.
//
// # What the figures are
//
// Power (avg_w, min_w, max_w) comes from the one-minute samples the
// pipeline stores: the mean of the step's minutes, the least and the
// greatest reading. Energy in steps of 15 minutes or more is the interval
// energy the pipeline accepted for billing (store.Intervals): it agrees
// with the ledger. Energy in steps of 1 or 5 minutes is the rise of the
// meter's counter between the last sample of the step before and the last
// sample of this one; null where either is missing or the counter went
// down (a reset or an exchange). Daily use is the ledger's charge entries,
// each counted on the day its energy was used; reversals and allocations
// are not in it.
//
// # Times
//
// Steps and days are aligned in site.timezone: a day step starts at the
// site's midnight, and every time in an answer is in the site's zone.
//
// It imports store, gateway/config, gateway/web (for the views it
// answers with and its errors), billing and drivers/meter (exact kWh
// text).
package history
