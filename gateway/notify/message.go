package notify

import (
	"context"
	"encoding/json"
	"time"
)

// Channel delivers one message over one service. Send returns when the
// service has accepted the message or refused it; it never retries a
// refusal itself (the outbox does, with backoff), except where a service
// asks for a fresh credential first (WeChat's expired access token).
//
// A nil error means the service accepted the message: it says nothing
// about the handset or mailbox, whose receipts come later, if at all. An
// error is an *Error when the service answered; anything else (a refused
// connection, a deadline) is temporary. Permanent and RetryAfter classify
// either kind.
type Channel interface {
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Message is one notification to one recipient, already in the recipient's
// language.
type Message struct {
	// ID is the delivery id: the same for every attempt at the same
	// message, so that a receiver can recognise a resend (webhook header,
	// e-mail Message-ID, WeChat client_msg_id, SMS OutId/SessionContext).
	ID string
	// Kind is the event kind ("warning_1", "overload", …); channels with
	// provider templates choose the template by it.
	Kind string
	// At is when the event happened.
	At time.Time
	// To is who receives it; each channel reads the address it needs.
	To Recipient
	// Lang is the language Subject and Text are in ("zh-CN", "en").
	Lang string
	// Subject is a one-line summary (the e-mail subject).
	Subject string
	// Text is the whole notice as a person reads it (e-mail body, webhook).
	Text string
	// Params are the values of the event kind's provider template, in the
	// template's order (Tencent takes them by position, Alibaba Cloud and
	// WeChat by key). Values are text: the providers take strings only.
	Params []Param
	// Event is the event as the gateway stores it, passed through to
	// webhooks as it is; nil leaves it out.
	Event json.RawMessage
}

// Param is one named value of a provider template.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Recipient is a person's addresses; a channel uses the one it delivers to
// and refuses a message without it as permanent (ErrNoAddress).
type Recipient struct {
	Name   string
	Phone  string // E.164 (+8613800000000) or a mainland number
	Email  string
	OpenID string // WeChat official-account openid
}

// Receipt is what the service said when it accepted a message.
type Receipt struct {
	// ProviderID is the service's id for the message (WeChat msgid,
	// Alibaba Cloud BizId, Tencent SerialNo, the e-mail Message-ID), to
	// match delivery reports against; empty when the service gives none.
	ProviderID string
}
