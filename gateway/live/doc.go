// Package live is the gateway's present tense for the control room: the
// Picture of every meter's latest committed reading and each bus's polling
// state (what the status page and /api/v1/meters and /api/v1/status
// show), and the Hub that hands committed events to live subscribers (the
// server-sent events of /api/v1/events).
//
// Nothing here is the truth: the database is. The picture is fed only what
// was committed (Update after each cycle's transaction), and a subscriber
// that falls behind reads what it missed from the store.
//
// It imports gateway/web (the views it serves), gateway/poll,
// gateway/config, store and drivers/meter.
package live
