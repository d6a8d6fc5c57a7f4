// Package notify delivers notices over the services tenants and staff
// read: a signed webhook, WeChat official-account template messages,
// Alibaba Cloud or Tencent Cloud SMS (or any SMS gateway with an HTTP
// API), and e-mail by SMTP submission. Each channel speaks its service's
// own wire protocol and says, for every failure, whether sending again can
// help.
//
// # Use
//
// The caller (the outbox) builds a Message per recipient, already in the
// recipient's language, with a delivery id that stays the same across
// every attempt, and calls Channel.Send. On nil it marks the message done.
// An error is in one of three classes:
//
//   - ChannelWide: the channel itself is out of order (credentials or
//     signature refused, balance exhausted, caller IP not allowed, sign
//     name not approved, certificate not trusted, the account's daily
//     total reached, the clock off). Every queued message would fail the
//     same way: the outbox pauses the channel, raises one alarm and keeps
//     the messages without spending their attempts, until RetryAfter when
//     the service gave one, else until a probe gets through.
//   - Permanent: this message cannot be delivered (a bad recipient, a
//     template the service does not know for its kind, content the
//     service refuses, a gateway that took it and said no); the message is
//     dead-lettered.
//   - otherwise temporary: try again later, after RetryAfter when the
//     service gave a hint (a per-recipient flow-control window), else after
//     the outbox's own backoff.
//
// Send itself never retries, except the WeChat send retried once with a
// fresh access token after an expiry error.
//
// Delivery is at least once: an answer lost after the service accepted the
// message makes the outbox send it again. The delivery id goes where the
// service lets a receiver recognise the resend (listed per channel below);
// SMS services do not deduplicate, so a lost answer can mean a second SMS.
//
// # Channels
//
// Each type's doc holds its service's facts: the calls, the signature, and
// which answers are permanent, channel-wide or temporary.
//
//	Webhook     JSON POST, HMAC-SHA256 signature; id in X-Mallgrid-Delivery
//	WeChat      official-account template message; id as client_msg_id
//	Aliyun      Alibaba Cloud SMS SendSms, signature 1.0; id as OutId
//	Tencent     Tencent Cloud SMS SendSms, TC3-HMAC-SHA256; id as SessionContext
//	SMSGateway  any HTTP SMS API from a template; id as {delivery}
//	Email       SMTP submission; id in Message-ID and X-Mallgrid-Delivery
//
// The provider templates (WeChat template_id, SMS template codes) are
// chosen by Message.Kind from the channel's Templates and filled from
// Message.Params; SMS services take the template's values only, so their
// texts live in the templates approved at the provider.
//
// # Deadlines and secrets
//
// Every attempt is bounded by the caller's ctx and by the channel's Timeout
// (DefaultTimeout when zero); the default HTTP client has the same timeout
// and follows no redirects. Errors never hold a secret: URLs in transport
// errors lose their query (where the WeChat token and the signed SMS
// parameters travel), a service's own words are kept short with the
// numbers, keys and values sent masked, and no channel logs.
//
// # Times
//
// Each channel's Now (time.Now when nil) is the clock for what the service
// checks against its own: the webhook signature's t, the SMS signatures'
// timestamps, the e-mail Date, and when the cached WeChat token runs out.
package notify
