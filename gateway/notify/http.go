package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds one attempt (a request and its answer, or an SMTP
// conversation) when a channel's Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBody bounds what is read of an answer: the services answer in a few
// hundred bytes, and a misdirected URL must not fill the gateway's memory.
const maxBody = 1 << 20

// reply is an HTTP answer, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends req with ctx bounded by timeout, reads the answer, and returns
// transport failures as temporary errors whose text holds no query string
// or user info: the WeChat access token and the signed SMS parameters
// travel in the query, and errors end up in logs.
func do(ctx context.Context, channel string, client *http.Client, timeout time.Duration, req *http.Request) (reply, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if client == nil {
		// Redirects are not followed: a signed POST must not be replayed,
		// nor a secret in its query sent, to wherever a 3xx points.
		client = &http.Client{
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return reply{}, temporary(channel, redact(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return reply{}, temporary(channel, fmt.Errorf("read answer: %w", redact(err)))
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// redact drops the query and user info from the URL of a *url.Error.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return &url.Error{Op: ue.Op, URL: "(url withheld)", Err: ue.Err}
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
}

// statusError classifies a non-2xx answer by its status alone: 408 and 429
// (and 5xx) are worth retrying, with the Retry-After the answer carries; a
// status that says the channel's URL or credentials are wrong (a 3xx,
// which for a notice means a moved URL; 401, 403, 404, 405, 407, 410, 415)
// is channel-wide; any other 4xx is a refusal of this message.
func statusError(channel string, r reply, now time.Time, code string) *Error {
	e := &Error{Channel: channel, Status: r.status, Code: code, Err: ErrRefused}
	switch r.status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusProxyAuthRequired, http.StatusGone, http.StatusUnsupportedMediaType:
		e.Scope = ScopeChannel
		return e
	}
	switch {
	case r.status == http.StatusRequestTimeout || r.status == http.StatusTooManyRequests || r.status >= 500:
		e.RetryAfter = retryAfter(r.header.Get("Retry-After"), now)
	case r.status/100 == 3:
		e.Scope = ScopeChannel
	default:
		e.Permanent = true
	}
	return e
}

// headerSafe reports whether s can be sent as a header value: no control
// characters but tab (a CR or LF would end the header; Go's client refuses
// the request, which retrying cannot change).
func headerSafe(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) })
}

// retryAfter parses an HTTP Retry-After value: delay-seconds or an
// HTTP-date (RFC 9110 10.2.3). Anything else, or a time already past, is 0.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}
