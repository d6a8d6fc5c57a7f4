package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SMSGateway sends SMS through any gateway with an HTTP API, described by
// a template: URL, Method, Header and Body may hold the placeholders
// {phone} (the recipient's number, tidied), {text} (Message.Text) and
// {delivery} (the delivery id). Each is escaped for where it stands: in the
// URL percent-encoded (RFC 3986, right in a path and a query); in a body
// whose Content-Type is JSON as the inside of a JSON string (so the
// template writes "text": "{text}", quotes included); in a form body
// (application/x-www-form-urlencoded) form-encoded; in any other body and
// in headers as it is, minus line breaks in headers.
//
// A 2xx answer is sent — and, when OK is set, only if the answer's body
// contains it (gateways that answer 200 to everything). A 2xx whose body
// contains Fail (when set) is temporary: the gateway says it did not take
// the message this time (busy, throttled). Any other 2xx without OK is
// permanent: the gateway took the request and answered something other
// than success, so sending it again could mean a second SMS; the error
// holds the answer, masked and cut short (it may echo the key or the
// number). 408, 429 and 5xx are temporary; 3xx, 401, 403, 404, 405, 407,
// 410 and 415 are channel-wide (the template's URL or credentials), other
// statuses permanent. A template that cannot make a request is
// channel-wide too.
type SMSGateway struct {
	URL    string
	Method string // "" is POST
	Header map[string]string
	Body   string
	OK     string
	// Fail, if set, marks a 2xx answer as a temporary failure.
	Fail string
	// Client, Timeout and Now as for Webhook.
	Client  *http.Client
	Timeout time.Duration
	Now     func() time.Time
}

// Check reports whether the template can make a request: a URL with a
// scheme and host, a known method, and a JSON body that stays JSON with
// any values put in. Send makes the same checks and fails permanently.
func (g *SMSGateway) Check() error {
	_, err := g.request(Message{ID: `d"1`, Text: "x\"\n\\{phone}", To: Recipient{Phone: "+8613800000000"}})
	return err
}

// Send implements Channel.
func (g *SMSGateway) Send(ctx context.Context, m Message) (Receipt, error) {
	const ch = "sms"
	if phone(m.To.Phone) == "" {
		return Receipt{}, permanent(ch, ErrNoAddress)
	}
	req, err := g.request(m)
	if err != nil {
		return Receipt{}, channelDown(ch, err)
	}
	sent := g.sentValues(req, m)
	r, err := do(ctx, ch, g.Client, g.Timeout, req)
	if err != nil {
		return Receipt{}, err
	}
	if r.status/100 != 2 {
		return Receipt{}, statusError(ch, r, clock(g.Now), "")
	}
	body := string(r.body)
	if g.Fail != "" && strings.Contains(body, g.Fail) {
		return Receipt{}, &Error{Channel: ch, Status: r.status, Err: fmt.Errorf("%w: answer with %q: %s", ErrRefused, g.Fail, brief(body, sent...))}
	}
	if g.OK != "" && !strings.Contains(body, g.OK) {
		return Receipt{}, &Error{Channel: ch, Status: r.status, Permanent: true, Err: fmt.Errorf("%w: answer without %q: %s", ErrRefused, g.OK, brief(body, sent...))}
	}
	return Receipt{}, nil
}

// sentValues are what req carries that an answer must not repeat into an
// error: the number as sent and as written without its country code, the
// text, the query's values, the header values (and their words: "Bearer
// <key>"), and the body's values.
func (g *SMSGateway) sentValues(req *http.Request, m Message) []string {
	num := phone(m.To.Phone)
	v := []string{num, strings.TrimPrefix(num, "+"), strings.TrimPrefix(strings.TrimPrefix(num, "+"), "86"), m.To.Phone, m.Text}
	for _, vs := range req.URL.Query() {
		v = append(v, vs...)
	}
	if p, ok := req.URL.User.Password(); ok {
		v = append(v, p, req.URL.User.Username())
	}
	for k, vs := range req.Header {
		if k == "Content-Type" {
			continue
		}
		for _, h := range vs {
			v = append(v, h)
			v = append(v, strings.Fields(h)...)
		}
	}
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(rc)
			v = append(v, bodyValues(b)...)
		}
	}
	return v
}

// bodyValues are the values of a form or JSON body, else the body whole.
func bodyValues(b []byte) []string {
	var doc any
	if json.Unmarshal(b, &doc) == nil {
		var out []string
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				out = append(out, x)
			case map[string]any:
				for _, y := range x {
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			}
		}
		walk(doc)
		return out
	}
	if f, err := url.ParseQuery(string(b)); err == nil && strings.Contains(string(b), "=") {
		var out []string
		for _, vs := range f {
			out = append(out, vs...)
		}
		return out
	}
	return []string{string(b)}
}

func (g *SMSGateway) request(m Message) (*http.Request, error) {
	vals := []string{"{phone}", phone(m.To.Phone), "{text}", m.Text, "{delivery}", m.ID}
	fill := func(tpl string, esc func(string) string) string {
		r := make([]string, len(vals))
		for i := 0; i < len(vals); i += 2 {
			r[i], r[i+1] = vals[i], esc(vals[i+1])
		}
		// One pass: a value holding "{phone}" is not filled in again.
		return strings.NewReplacer(r...).Replace(tpl)
	}
	u := fill(g.URL, percentEncode)
	if pu, err := url.Parse(u); err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
		return nil, fmt.Errorf("url is not an absolute http(s) URL")
	}
	method := g.Method
	if method == "" {
		method = http.MethodPost
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		return nil, fmt.Errorf("method %q: want GET, POST or PUT", method)
	}
	ct := ""
	for k, v := range g.Header {
		if strings.EqualFold(k, "Content-Type") {
			ct = v
		}
	}
	mt, _, _ := mime.ParseMediaType(ct)
	var body string
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		body = fill(g.Body, jsonInner)
		if g.Body != "" && !json.Valid([]byte(body)) {
			return nil, fmt.Errorf("body is not JSON once filled in (a placeholder outside quotes?)")
		}
	case mt == "application/x-www-form-urlencoded":
		body = fill(g.Body, url.QueryEscape)
	default:
		body = fill(g.Body, func(s string) string { return s })
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return nil, redact(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range g.Header {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
			return nil, fmt.Errorf("header name %q is not a token", k)
		}
		if !headerSafe(v) {
			return nil, fmt.Errorf("header %s holds a control character", k)
		}
		req.Header.Set(k, fill(v, oneLine))
	}
	return req, nil
}

// jsonInner is s as the inside of a JSON string.
func jsonInner(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b[1 : len(b)-1])
}

// oneLine keeps a value from ending its header and starting another, and
// from being refused as a header: every control character but tab becomes
// a space.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\t' && (r < 0x20 || r == 0x7f) {
			return ' '
		}
		return r
	}, s)
}
