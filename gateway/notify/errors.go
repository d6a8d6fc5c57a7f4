package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
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

// Error is a failed delivery the service (or the channel's own checks) gave
// a reason for.
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
	// (bad recipient, bad template, credentials refused): the outbox
	// dead-letters it instead of retrying.
	Permanent bool
	// RetryAfter is the service's hint for a temporary failure (an HTTP
	// Retry-After, a known flow-control window); 0 when it gave none.
	RetryAfter time.Duration
	// Err is the underlying reason: ErrRefused, ErrNoAddress, … or a
	// transport error.
	Err error
}

func (e *Error) Error() string {
	s := e.Channel + ": "
	if e.Permanent {
		s += "permanent: "
	} else {
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
// deadlines) are temporary; nil is not permanent.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// RetryAfter returns the service's hint of how long to wait before the next
// attempt, or 0 when it gave none (the outbox's own backoff applies).
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && !e.Permanent {
		return e.RetryAfter
	}
	return 0
}

func permanent(channel string, err error) *Error {
	return &Error{Channel: channel, Permanent: true, Err: err}
}

// temporary wraps a transport failure; a cancelled ctx stays recognisable
// with errors.Is.
func temporary(channel string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", channel, err)
	}
	return &Error{Channel: channel, Err: err}
}
