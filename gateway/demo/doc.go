// Package demo is the simulated mall and the simulated buses: `mallgrid
// demo` (Run: a configuration's meters as simulated meters behind
// pseudo-terminals, the whole gateway on top, and a story that plays
// itself) and `mallgrid sim` (Simulate: simulated meters on a serial port
// or a TCP address, from flags or from a sim file, LoadSimFile).
//
// # Use
//
// Run takes the built-in configs/demo.yaml, or Options.Config (-c FILE):
// any valid configuration; every meter of it becomes a simulated meter of
// its model on its bus, whatever the bus's type and port, and its
// storage.path is never used — the database is a temporary file, or
// Options.DB. Before the gateway starts, every tenant is opened with a real
// top-up through the ledger the API uses (ref DEMO-OPENING-<tenant>), so
// that a demo started again on its database credits none twice. Once the
// status page serves, the banner (its URL, the API token the demo accepts,
// the story) goes to Options.Out and the script plays:
//
//   - the near tenant (the first with a credit rating, a tariff and a
//     meter) opens just above its warning_1 level and reaches it after
//     Pace.Warn;
//   - the low tenant (one with a relay whose rating has the least
//     overdraft, then the shortest grace) draws a constant 45 kW and opens
//     with Pace.RunOut's worth of it, so it runs out then, and is cut off
//     after its rating's grace;
//   - Pace.Show after its relays read back open, the script tops it up
//     through the HTTP API with the demo's token, as an operator recording
//     a payment would (channel wechat, ref DEMO-TOPUP-<tenant>-<start>),
//     and the gateway restores it.
//
// The uplink: a configuration with uplink.site_id and no uplink.broker
// (the built-in one) gets a broker of its own, in process on a free
// loopback port, for the gateway's uplink to publish to (groupBroker): the
// status page's uplink line says connected. The stickers' secret
// (uplink.qr.secret) is made at random for each run and given as
// MALLGRID_UPLINK_QR_SECRET, unless a -c file's environment gives one: no
// demo sticker verifies anywhere else.
//
// The other tenants open at comfortable round sums. For the story to play
// within two minutes, the low tenant's rating needs no overdraft and a
// short grace (configs/demo.yaml: rating C, 30 s), and protected hours must
// not cover it (configs/demo.yaml has none; Run logs a warning when they
// would hold the cut-off).
//
// # Times
//
// The demo runs on the wall clock, as the gateway does; Pace counts from
// the start, and the openings are priced at the tariff of the start.
//
// It sits above the composition root: it imports gateway (to run it),
// gateway/accounts (to open the accounts), gateway/web (the API's types),
// gateway/config, gateway/yamlcheck, store, billing, drivers/sim,
// drivers/meter, drivers/modbus and configs; nothing imports it but cmd.
package demo
