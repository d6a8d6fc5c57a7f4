// Package uplink is the gateway's link to the mall group's MQTT broker:
// it publishes the durable uplink outbox (store.UplinkAfter) to
// mallgrid/<site_id>/up/<kind> and takes the signed commands sent to
// mallgrid/<site_id>/down. Enforcement never waits for it: the rest of the
// gateway only writes to the outbox, in its own transactions, and the link
// reads it when it can.
//
// # Use
//
// New composes the feed (gateway/upfeed), the Link and the Commands from
// Parts; Service.Run runs them until ctx ends and Service.Status tells how
// the link and its outbox stand, from any goroutine. A Link on its own:
// NewLink with the configuration, the outbox, the handler of downlink
// commands and the encoder, then Run(ctx) once.
//
// # Delivery
//
// Every message is published at QoS 1 with its upfeed.Envelope bytes, which
// are the same each time it is sent. It is removed from the outbox
// (store.DB.AckUplink, acknowledgements batched about every 100 ms) only
// after the broker's PUBACK: a message is delivered at least once, and a
// consumer drops repeats by (site, seq). At most uplink.inflight messages
// wait for their PUBACK at once; one that waits longer than the publish
// deadline means the link is broken: the connection is closed and made
// again. Whatever a connection leaves unacknowledged is sent again, oldest
// first, on the next.
//
// When a connection comes up, the messages already in the outbox (its head
// then) are the backlog: sent oldest first at uplink.backlog_rate, with at
// most half the window in flight. Messages made after it are live: sent at
// once beside the backlog, so that a day's backlog never holds them up.
// Each lane is in seq order; the two interleave.
//
// The broker keeps the session (client_id, clean session off): commands
// sent while the link is down wait there. They are queued as they arrive
// (paho's reader never waits for them) and handled one at a time in their
// order, each acknowledged only once the handler returned without an error
// (it stores the command's result, which goes up as a command_result
// message). One it failed is tried again on the same connection, a few
// times over some 45 s, those behind it waiting; still failing, the link
// ends the connection and the broker sends it again on the next.
//
// A retained mallgrid/<site_id>/up/status says "online" while the link is
// up and "offline" (the connection's Will, or sent on a clean stop) when it
// is not; it carries no seq and is not in the outbox.
//
// # Times
//
// Message times are the outbox's (when the news was made, by the gateway's
// clock). The link's own timers — publish deadline, reconnect wait, rate —
// are wall-clock durations, not times of day.
package uplink
