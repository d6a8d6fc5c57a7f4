package notify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrNoAddress is returned (as a permanent *Error) when the recipient
	// has no address for the channel: no phone for SMS, no openid for
	// WeChat, no e-mail address for e-mail.
	ErrNoAddress = errors.New("notify: recipient has no address for this channel")
	// ErrNoTemplate is returned (as a permanent *Error) when a template
	// channel has no provider template for the message's event kind.
	ErrNoTemplate = errors.New("notify: no provider template for this event kind")
	// ErrRefused is wrapped by an *Error for a request the service
	// answered but did not accept; Error.Code holds the service's code.
	ErrRefused = errors.New("notify: refused by the service")

	// ErrSignatureHeader is returned by Verify for a missing or malformed
	// X-Mallgrid-Signature header.
	ErrSignatureHeader = errors.New("notify: malformed signature header")
	// ErrSignatureExpired is returned by Verify when the header's time is
	// further from now than the tolerance (a replay, or a clock off).
	ErrSignatureExpired = errors.New("notify: signature timestamp outside tolerance")
	// ErrSignatureMismatch is returned by Verify when no v1 signature in
	// the header matches the body under the secret.
	ErrSignatureMismatch = errors.New("notify: signature does not match")
)

// Scope is how far a failure reaches: the one message, or every message on
// the channel.
type Scope int

const (
	// ScopeMessage is a failure of this message alone (its recipient, its
	// template, its content, or a limit on its recipient): other messages
	// on the channel may go through.
	ScopeMessage Scope = iota
	// ScopeChannel is a failure every message on the channel meets until
	// something outside the message changes: credentials or signature
	// refused, the account out of balance or suspended, the caller's IP not
	// allowed, the sign name not approved, the server's certificate not
	// trusted, the account's daily total reached, the gateway's clock off.
	// The outbox pauses the channel and raises one alarm; the messages stay
	// queued and spend no attempts. Such an error is never Permanent:
	// dead-lettering would lose every queued message to one mistake in the
	// configuration.
	ScopeChannel
)

// Error is a failed delivery the service (or the channel's own checks) gave
// a reason for. It is in one of three classes:
//
//   - permanent (Permanent, ScopeMessage): this message can never be
//     delivered on this channel; the outbox dead-letters it.
//   - channel-wide (ScopeChannel, see ChannelWide): the channel is out of
//     order; the outbox pauses it until RetryAfter when that is set (a
//     daily total that resets), else until a probe succeeds.
//   - temporary (neither): try this message again after RetryAfter or the
//     outbox's own backoff.
type Error struct {
	// Channel names the channel kind: "webhook", "wechat", "aliyun",
	// "tencent", "sms", "email".
	Channel string
	// Status is the HTTP status or SMTP reply code, 0 when there was none.
	Status int
	// Code is the service's error code ("isv.MOBILE_NUMBER_ILLEGAL",
	// "43004", …), empty when it gave none.
	Code string
	// Permanent is true when sending the same message again cannot succeed
	// (bad recipient, bad template, bad content): the outbox dead-letters
	// it instead of retrying. Never true with ScopeChannel.
	Permanent bool
	// Scope is ScopeChannel for a failure that every message on the
	// channel meets (credentials refused, balance exhausted, …).
	Scope Scope
	// RetryAfter is the service's hint for a temporary or channel-wide
	// failure (an HTTP Retry-After, a known flow-control window); 0 when it
	// gave none.
	RetryAfter time.Duration
	// Err is the underlying reason: ErrRefused, ErrNoAddress, … or a
	// transport error.
	Err error
}

func (e *Error) Error() string {
	s := e.Channel + ": "
	switch {
	case e.Scope == ScopeChannel:
		s += "channel: "
	case e.Permanent:
		s += "permanent: "
	default:
		s += "temporary: "
	}
	if e.Status != 0 {
		s += fmt.Sprintf("status %d: ", e.Status)
	}
	if e.Code != "" {
		s += "code " + e.Code + ": "
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether err says that sending the same message again
// cannot succeed. Errors that are not an *Error (network failures,
// deadlines) are temporary; nil is not permanent; a channel-wide failure is
// not permanent either (see ChannelWide).
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent && e.Scope != ScopeChannel
}

// ChannelWide reports whether err says that the channel itself is out of
// order (ScopeChannel): every message on it would fail the same way, so
// the outbox pauses the channel and keeps the messages instead of spending
// their attempts or dead-lettering them.
func ChannelWide(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Scope == ScopeChannel
}

// RetryAfter returns the service's hint of how long to wait before the next
// attempt, or 0 when it gave none (the outbox's own backoff applies).
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && (!e.Permanent || e.Scope == ScopeChannel) {
		return e.RetryAfter
	}
	return 0
}

func permanent(channel string, err error) *Error {
	return &Error{Channel: channel, Permanent: true, Err: err}
}

// channelDown is a failure of the channel's configuration or account.
func channelDown(channel string, err error) *Error {
	return &Error{Channel: channel, Scope: ScopeChannel, Err: err}
}

// temporary wraps a transport failure; a cancelled ctx stays recognisable
// with errors.Is.
func temporary(channel string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", channel, err)
	}
	return &Error{Channel: channel, Err: err}
}

// maxAnswer bounds how much of a service's own words an error keeps.
const maxAnswer = 120

// brief makes a service's answer text fit for an error, which ends up in
// logs and on the status page: each of secrets (the number, the key, the
// values sent, when 4 bytes or longer) is masked, and so is any other run
// of 7 or more digits (the number spelt another way, grouped or not) and
// any key-like run of 24 or more letters and digits with a digit in it;
// control characters become spaces; the text is cut to maxAnswer bytes on
// a rune boundary.
func brief(s string, secrets ...string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, sec := range sorted {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	s = longDigits.ReplaceAllString(s, "***")
	word := func(r rune) bool {
		return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-+/=", r))
	}
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if !word(rs[i]) {
			if unicode.IsControl(rs[i]) {
				b.WriteByte(' ')
			} else {
				b.WriteRune(rs[i])
			}
			i++
			continue
		}
		j := i
		for j < len(rs) && word(rs[j]) {
			j++
		}
		run := string(rs[i:j])
		if len(run) >= 24 && strings.ContainsAny(run, "0123456789") {
			b.WriteString("***")
		} else {
			b.WriteString(run)
		}
		i = j
	}
	s = strings.TrimSpace(b.String())
	if len(s) <= maxAnswer {
		return s
	}
	cut := maxAnswer - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// longDigits is 7 or more digits, perhaps grouped by single spaces or
// hyphens as people write numbers ("138 0013 8000").
var longDigits = regexp.MustCompile(`[0-9](?:[ -]?[0-9]){6,}`)
