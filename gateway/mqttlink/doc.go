// Package mqttlink carries the messages of Compere's MQTT meters (KPM31,
// KPM33B, KPM37, KPM312) between a compere-mqtt bus and the gateway, in
// one of the bus's two modes behind one interface, Link:
//
//   - Embedded (bus listen:): the gateway is the broker the meters connect
//     to (mochi-mqtt). Every client must log in with the bus's username and
//     the password whose SHA-256 is its password_sha256 (compared in
//     constant time); anonymous clients are refused. A client may publish
//     only to the topics meters publish (MeterTopics), and only messages
//     whose JSON "id" is a meter id of the bus: others are acknowledged and
//     dropped, and counted (Dropped). It may subscribe only to the command
//     topics of the bus's meters (MQTT_TELECTRL_<last 8 of the id> and the
//     other CommandTopics). The gateway's own publishes go through the
//     broker's inline client, which no ACL applies to.
//   - Client (bus broker:): the gateway is a client of the mall's broker
//     (paho) with a persistent session (clean session off, a stable client
//     id), QoS 1 subscriptions to MeterTopics made again on every
//     reconnection, automatic reconnection with a capped backoff, and TLS
//     for ssl:// brokers. Messages for meter ids not on the bus are dropped
//     and counted likewise.
//
// Delivery is at least once. A meter's QoS 1 message is acknowledged
// (PUBACK) only once the consumer has taken it from the Messages queue
// (Message.Ack), so a message still queued when the gateway stops is sent
// again — by the meter (embedded) or by the mall's broker from the
// persistent session (client) — and never lost. A consumer that falls
// behind holds back the senders, never unboundedly: embedded, a message
// not taken within EnqueueWait is refused without PUBACK and only that
// meter's connection waits (a message already queued is still handed
// over, and the meter's resend on reconnection is a duplicate); the broker
// also bounds each client's inflight QoS 1 messages and pending writes
// (see capabilities), so a meter that stops reading drops its own
// connection rather than growing the broker's memory. Client, the mall's broker sends no more than its inflight window
// of unacknowledged messages, so paho's reading of the connection (and its
// keepalive) is not held up. Duplicates are the consumer's to handle, as
// with the meters' own redeliveries.
//
// Publish sends QoS 1. Client: it returns once the broker has acknowledged
// (PUBACK) or the deadline passed. Embedded: once the message is queued to
// the subscribed meter's session (the broker resends it until the meter
// acknowledges); it fails when no meter is subscribed to the topic. Either
// way the meter's own reply (MQTT_TELECTRL_REP…) is the confirmation that
// counts: a client's Publish that timed out while the link was down stays
// in paho's session store and may still be sent when it reconnects, so a
// command carries its own oprid and a late reply is matched by it.
//
// Run serves until its context ends and returns nil then; every goroutine
// it starts exits before it returns. A Link is run once.
package mqttlink
