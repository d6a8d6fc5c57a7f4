package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook header names.
const (
	HeaderDelivery  = "X-Mallgrid-Delivery"
	HeaderSignature = "X-Mallgrid-Signature"
)

// Webhook POSTs each message as JSON (WebhookBody) to URL, signed with
// Secret: X-Mallgrid-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(Secret,
// "<t>.<body>")>, and X-Mallgrid-Delivery: the delivery id. A 2xx answer is
// delivery; 408, 429 and 5xx are temporary (with Retry-After); any other
// status is permanent, or channel-wide when it says the URL or the
// credentials are wrong (3xx, 401, 403, 404, 405, 407, 410, 415).
// Redirects are not followed. A Webhook without a Secret sends nothing: an
// unsigned notice cannot be told from a forged one (the error is
// channel-wide); NewWebhook refuses one at the start. A delivery id that
// cannot be a header value (a control character) is permanent.
type Webhook struct {
	URL    string
	Secret string
	// Client, if set, replaces the default client (which has Timeout and
	// follows no redirects).
	Client *http.Client
	// Timeout bounds one attempt; 0 is DefaultTimeout.
	Timeout time.Duration
	// Now is the clock the signature's t comes from; nil is time.Now.
	Now func() time.Time
}

// NewWebhook returns a Webhook for an absolute http(s) URL, signed with
// secret, which must not be empty.
func NewWebhook(rawURL, secret string) (*Webhook, error) {
	if strings.TrimSpace(secret) == "" {
		return nil, errors.New("notify: webhook: empty secret: a receiver could not tell the notices from forgeries")
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("notify: webhook: url is not an absolute http(s) URL")
	}
	return &Webhook{URL: rawURL, Secret: secret}, nil
}

// WebhookBody is the JSON a webhook receives. Params is an object of the
// template's parameters; Event is the stored event as it is.
type WebhookBody struct {
	Delivery string            `json:"delivery"`
	Kind     string            `json:"kind"`
	At       time.Time         `json:"at"`
	Lang     string            `json:"lang,omitempty"`
	Subject  string            `json:"subject"`
	Text     string            `json:"text"`
	Params   map[string]string `json:"params,omitempty"`
	Event    json.RawMessage   `json:"event,omitempty"`
}

// Send implements Channel.
func (w *Webhook) Send(ctx context.Context, m Message) (Receipt, error) {
	const ch = "webhook"
	if strings.TrimSpace(w.Secret) == "" {
		return Receipt{}, channelDown(ch, errors.New("empty secret: notices are not sent unsigned"))
	}
	if !headerSafe(m.ID) {
		return Receipt{}, permanent(ch, fmt.Errorf("delivery id %q holds a control character", m.ID))
	}
	b := WebhookBody{Delivery: m.ID, Kind: m.Kind, At: m.At, Lang: m.Lang, Subject: m.Subject, Text: m.Text, Event: m.Event}
	if len(m.Params) > 0 {
		b.Params = make(map[string]string, len(m.Params))
		for _, p := range m.Params {
			b.Params[p.Key] = p.Value
		}
	}
	body, err := json.Marshal(b)
	if err != nil {
		// Only a malformed Event gets here: the same message fails again.
		return Receipt{}, permanent(ch, fmt.Errorf("encode body: %w", err))
	}
	req, err := http.NewRequest(http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Receipt{}, channelDown(ch, redact(err))
	}
	now := clock(w.Now)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mallgrid")
	req.Header.Set(HeaderDelivery, m.ID)
	req.Header.Set(HeaderSignature, Sign(w.Secret, now, body))
	r, err := do(ctx, ch, w.Client, w.Timeout, req)
	if err != nil {
		return Receipt{}, err
	}
	if r.status/100 != 2 {
		return Receipt{}, statusError(ch, r, clock(w.Now), "")
	}
	return Receipt{}, nil
}

// Sign returns the X-Mallgrid-Signature value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a webhook's X-Mallgrid-Signature header against the raw
// body, as a receiver should before it believes the body: some v1 in the
// header (a sender rotating secrets may send several) must be the
// HMAC-SHA256 of "<t>.<body>" under secret, and t must be within tolerance
// of now either way, so that a captured request cannot be replayed later.
// It returns nil, ErrSignatureHeader, ErrSignatureExpired or
// ErrSignatureMismatch. The comparison takes constant time.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureHeader
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrSignatureHeader
			}
			ts = v
		case "v1":
			s, err := hex.DecodeString(v)
			if err != nil || len(s) != sha256.Size {
				return ErrSignatureHeader
			}
			sigs = append(sigs, s)
		}
		// Other schemes are skipped: a later version may add its own.
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureHeader
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureExpired
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
