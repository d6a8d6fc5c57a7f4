package notify

import (
	"context"
	"encoding/json"
	"fmt"
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
// contains it (gateways that answer 200 to everything); 408, 429 and 5xx
// are temporary, other statuses permanent. A 2xx without OK is temporary:
// the gateway's own error codes are not known here, and the outbox gives
// up after its attempts.
type SMSGateway struct {
	URL    string
	Method string // "" is POST
	Header map[string]string
	Body   string
	OK     string
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
		return Receipt{}, permanent(ch, err)
	}
	r, err := do(ctx, ch, g.Client, g.Timeout, req)
	if err != nil {
		return Receipt{}, err
	}
	if r.status/100 != 2 {
		return Receipt{}, statusError(ch, r, clock(g.Now), "")
	}
	if g.OK != "" && !strings.Contains(string(r.body), g.OK) {
		body := string(r.body)
		if len(body) > 200 {
			body = body[:200]
		}
		return Receipt{}, &Error{Channel: ch, Status: r.status, Err: fmt.Errorf("%w: answer without %q: %s", ErrRefused, g.OK, body)}
	}
	return Receipt{}, nil
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
		req.Header.Set(k, fill(v, oneLine))
	}
	return req, nil
}

// jsonInner is s as the inside of a JSON string.
func jsonInner(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b[1 : len(b)-1])
}

// oneLine keeps a value from ending its header and starting another.
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
