// Package upfeed turns the database's news into uplink outbox messages
// (store.EnqueueUplink) and defines their formats: what goes up to the mall
// group's broker. It publishes nothing itself — gateway/uplink reads the
// outbox, publishes each message as Envelope makes it, and acknowledges it
// (store.AckUplink) — so a message is made once, kept on disk, and sent
// byte-identical however often the link drops. docs/UPLINK.md describes
// every kind, with a JSON Schema each in docs/uplink/.
//
// # Use
//
// The composition root builds one Feed and runs it beside the link:
//
//	feed := &upfeed.Feed{
//		DB:       db,                   // *store.DB
//		SiteID:   cfg.Uplink.SiteID,    // the site's id in topics and envelopes
//		Config:   cfg,                  // Meters (interval messages), Location (every time's zone)
//		Now:      time.Now,             // the clock
//		Accounts: func() ([]upfeed.Account, error) { … }, // every tenant: balance, state, relay (enforce/live adapted)
//		Meters:   func() []upfeed.MeterHealth { … }, // every meter: online, last seen, errors (health adapted)
//		Buses:    func() []upfeed.Bus { … },         // every bus: up or down
//		Version:  version,              // the gateway's version
//		Log:      log,                  // zerolog.Logger
//	}
//	go feed.Run(ctx) // until ctx is cancelled; returns nil then
//	feed.Wake()      // optional: a round now (after a top-up, a command handled)
//
// Accounts, Meters and Buses may be nil: no accounts, meter_health
// snapshots, or buses in the heartbeat, then. They are called from Run's
// goroutine and must be quick and safe for concurrent use. Settle and
// Period have defaults (DefaultSettle, DefaultPeriod). The Feed must not be
// copied after first use.
//
// # Rounds
//
// A round runs every Period and at Wake. Each source has a cursor in the
// database (store.UplinkCursor), moved in the same transaction as the
// messages made from it: a kill -9 at any point neither loses a message
// nor makes one twice. Per round each source is read in bounded steps
// (at most 500 records a message, one message or one quarter hour a
// transaction, MaxSteps transactions a round), so a large backlog never
// holds a long write transaction; a round that stopped at MaxSteps is
// followed by the next at once. Snapshots and the heartbeat are made at
// every round, a backlog's too. Each source runs on its own: one whose
// record cannot be read (or whose provider fails) stops only itself, is
// named in the heartbeat's stalled, and is tried again every round.
//
//   - event: the events bucket in id order, ≤ 500 a message (alarms
//     raised, acknowledged and cleared are events).
//   - ledger: the ledger's entries in id order, every account, ≤ 500 a
//     message; a top-up with an e-invoice request carries it.
//   - interval: each closed quarter hour, once it ended Settle ago and
//     every meter read in it was read after it (MaxHold at most): every
//     configured meter's Wh in it, ≤ 500 meters a message. A gateway that
//     was down sends every quarter it missed, oldest first.
//   - accounts and meter_health: at the first round of each quarter hour,
//     a snapshot of the present (a snapshot missed while the gateway was
//     down cannot be made afterwards, and is not).
//   - heartbeat: at the first round of each minute; every
//     BacklogHeartbeat while the oldest message waiting is older than
//     BacklogAge.
//
// A backlog whose oldest message is older than BacklogAlarm raises an
// alarm (a store.KindUplinkBacklog event), cleared by a
// store.KindUplinkBacklogCleared event once it is younger than BacklogAge.
//
// # First start
//
// Cursors that were never set start at the present: the events and entries
// stored before the uplink was first run are not sent, and the first
// interval message is the quarter hour in progress at that start. This is
// deliberate — the group's systems take over from the site's books as they
// stand (a site's history is exported once, by other means), and a site
// that ran for years would otherwise send its whole history at start.
//
// # Times
//
// Every time in a message is RFC 3339 in the site's zone (Config.Location).
// Now is the gateway's clock: quarter hours close, snapshots and heartbeats
// are due by it. The clock may step either way: a snapshot or heartbeat is
// due when its quarter or minute differs from the last one made (not only
// when later), and an interval cursor more than a quarter hour ahead of the
// clock is rewound to the present quarter, with a KindClockBehind event —
// the quarters from there go up again, superseding (docs/UPLINK.md). Money is a decimal string of yuan ("100.50"), energy an
// integer of Wh.
package upfeed
