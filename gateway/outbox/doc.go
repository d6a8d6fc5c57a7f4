// Package outbox delivers the notifications the configuration's routes
// name (notify: in the configuration), at least once, through the
// channels of gateway/notify.
//
// # Use
//
// Route(cfg) is given to store.Open (store.Options.Route): every event the
// store keeps is routed there, and its deliveries — one per recipient and
// channel, under a delivery id "<event id>-<route>-<channel>-<recipient>"
// — are written in the event's own transaction, so a notice exists exactly
// when its event does. Channels(cfg) builds the configured channels; a
// Deliverer sends what is due (Run, one goroutine, until its ctx ends), and
// a Service lists deliveries and queues one again for the API.
//
// # Delivery
//
// The Deliverer takes the pending deliveries that are due, longest due
// first, writes each in its recipient's language (i18n EventText; the
// subject is the kind's word), and sends it with a deadline
// (notify.timeout). Then, in one durable write each:
//
//   - accepted: delivered. A kill between the service's answer and this
//     write leaves the delivery pending: it is sent again after the
//     restart, under the same id (at least once).
//   - temporary failure: due again after the service's RetryAfter, else
//     after the backoff, base × 2^(attempts−1) up to max, less up to half
//     of it at random; after max_attempts failures, a dead letter.
//   - permanent failure (notify.Permanent): a dead letter at once. A dead
//     letter raises a notify_dead_letter alarm; an operator's resend
//     (Service.Resend) queues it again under the same id and clears it.
//   - channel-wide failure (notify.ChannelWide): the channel is paused
//     with one notify_channel_down alarm; its messages wait without
//     spending attempts. One message probes it after RetryAfter, else
//     after a wait that doubles from backoff.base up to backoff.max; the
//     first that gets through clears the alarm and the rest follow.
//
// Tenants' notices due inside quiet_hours wait until they end (never
// staff's); a recipient already sent rate_limit.per_hour notices on a
// channel within the hour waits until the oldest of them is an hour old.
// Both delays spend no attempt. The rate counts are kept in memory, and
// start afresh when the gateway does.
//
// An event never notifies the channel its own notify_* event is about,
// and the dead letter of a notice about the outbox itself notifies no one:
// a broken channel cannot feed on its own alarms.
//
// # Times
//
// Now is the gateway's clock, in the site's zone; the quiet hours are
// wall-clock there. Run waits on a timer only between rounds: what is due,
// what waits and for how long are decided from Now alone.
package outbox
