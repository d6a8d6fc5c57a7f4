package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// WeChatBase is the official-account API's address.
const WeChatBase = "https://api.weixin.qq.com"

// WeChat sends official-account template messages
// (POST /cgi-bin/message/template/send?access_token=…) to Recipient.OpenID.
// The event kind chooses the template; the message's Params fill its data
// keys ({"thing1":{"value":"…"}}); the delivery id is client_msg_id, which
// the platform sends once per openid within 10 minutes.
//
// The access token is fetched from /cgi-bin/stable_token, which the
// platform keeps apart from /cgi-bin/token: a second program on the same
// account (the mall's app server) that calls /cgi-bin/token does not
// invalidate ours, nor ours theirs. LegacyToken uses /cgi-bin/token
// instead, where every fetch supersedes the token before. The token is
// kept until 5 minutes before it runs out (half its life when that is
// shorter); an answer 40001, 40014 or 42001 (invalid, invalid, expired
// token) fetches a new one and sends once more. Should the stable endpoint
// give back the same token that was just refused, it is asked for a forced
// refresh if the platform's limits allow one (20 a day, 30 s apart); if
// not, the send fails as temporary until they do, rather than sending with
// the refused token again.
//
// One fetch at a time: senders needing a token while one is fetched wait
// for it, each no longer than its own ctx allows. A failed fetch is given
// to every sender for 20 s before the endpoint is asked again.
//
// errcode decides, never errmsg (which changes): 0 is accepted. The
// recipient's and template's errors are permanent: 40003 invalid openid,
// 43004 not a follower, 40037 invalid template_id, 47003 bad data. The
// account's are channel-wide: 48001 api unauthorized, 40013 invalid appid,
// 40125 invalid appsecret, 40164 caller IP not whitelisted, 40001 from
// the token endpoint (the AppSecret is wrong), and 45009 (the account's
// quota; 10 minutes at the earliest). -1 (busy) and any code not listed
// are temporary.
type WeChat struct {
	AppID  string
	Secret string
	// BaseURL replaces WeChatBase (a proxy, a test server).
	BaseURL string
	// LegacyToken fetches tokens from /cgi-bin/token instead of
	// /cgi-bin/stable_token.
	LegacyToken bool
	// Templates gives each event kind its template; a kind without one is
	// ErrNoTemplate.
	Templates map[string]WeChatTemplate
	// Client, Timeout and Now as for Webhook. Timeout bounds each request:
	// a send with a token fetch and a retry makes at most four.
	Client  *http.Client
	Timeout time.Duration
	Now     func() time.Time

	// mu guards the cached token and the fetch in flight, never held
	// across a request: senders wait for a fetch on its done channel,
	// each as long as its own ctx allows.
	mu        sync.Mutex
	token     string
	expires   time.Time // when the cached token is no longer used
	fetching  *tokenFetch
	failErr   error       // the last fetch's failure, given until failUntil
	failUntil time.Time   //
	forced    []time.Time // forced refreshes within the last 24 h
}

// WeChatTemplate is a template of the official account.
type WeChatTemplate struct {
	ID string // template_id
	// URL, if set, is the page the message opens.
	URL string
}

// wechatReply covers the token, stable_token and send answers.
type wechatReply struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	MsgID       int64  `json:"msgid"`
}

const wechatQuotaWait = 10 * time.Minute

// Send implements Channel.
func (w *WeChat) Send(ctx context.Context, m Message) (Receipt, error) {
	const ch = "wechat"
	if m.To.OpenID == "" {
		return Receipt{}, permanent(ch, ErrNoAddress)
	}
	tpl, ok := w.Templates[m.Kind]
	if !ok || tpl.ID == "" {
		return Receipt{}, permanent(ch, fmt.Errorf("%w: %s", ErrNoTemplate, m.Kind))
	}
	type value struct {
		Value string `json:"value"`
	}
	data := make(map[string]value, len(m.Params))
	for _, p := range m.Params {
		data[p.Key] = value{p.Value}
	}
	body, err := json.Marshal(struct {
		ToUser      string           `json:"touser"`
		TemplateID  string           `json:"template_id"`
		URL         string           `json:"url,omitempty"`
		ClientMsgID string           `json:"client_msg_id,omitempty"`
		Data        map[string]value `json:"data"`
	}{m.To.OpenID, tpl.ID, tpl.URL, m.ID, data})
	if err != nil {
		return Receipt{}, permanent(ch, err)
	}
	var refused string
	for attempt := 0; ; attempt++ {
		tok, err := w.accessToken(ctx, refused)
		if err != nil {
			return Receipt{}, err
		}
		u := w.base() + "/cgi-bin/message/template/send?access_token=" + url.QueryEscape(tok)
		req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return Receipt{}, permanent(ch, redact(err))
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		a, err := w.call(ctx, req)
		if err != nil {
			return Receipt{}, err
		}
		if a.ErrCode == 0 {
			return Receipt{ProviderID: strconv.FormatInt(a.MsgID, 10)}, nil
		}
		if tokenRefused(a.ErrCode) && attempt == 0 {
			refused = tok
			w.mu.Lock()
			if w.token == tok {
				w.token = "" // no other sender is given it
			}
			w.mu.Unlock()
			continue
		}
		return Receipt{}, wechatError(a, false, m.To.OpenID)
	}
}

func tokenRefused(code int) bool { return code == 40001 || code == 40014 || code == 42001 }

// wechatError classifies a non-zero errcode. fromToken is true for the
// token endpoint, where 40001 means a wrong AppSecret. secrets are masked
// in errmsg, which may echo what was sent.
func wechatError(a wechatReply, fromToken bool, secrets ...string) *Error {
	e := &Error{Channel: "wechat", Code: strconv.Itoa(a.ErrCode), Err: fmt.Errorf("%w: %s", ErrRefused, brief(a.ErrMsg, secrets...))}
	switch a.ErrCode {
	case 40003, 43004, 40037, 47003:
		e.Permanent = true
	case 48001, 40013, 40125, 40164:
		e.Scope = ScopeChannel
	case 40001:
		if fromToken {
			e.Scope = ScopeChannel
		}
	case 45009:
		// The account's quota: every send fails until it resets.
		e.Scope, e.RetryAfter = ScopeChannel, wechatQuotaWait
	}
	return e
}

func (w *WeChat) base() string {
	if w.BaseURL != "" {
		return w.BaseURL
	}
	return WeChatBase
}

// call makes one request and decodes the platform's JSON answer.
func (w *WeChat) call(ctx context.Context, req *http.Request) (wechatReply, error) {
	r, err := do(ctx, "wechat", w.Client, w.Timeout, req)
	if err != nil {
		return wechatReply{}, err
	}
	if r.status != http.StatusOK {
		return wechatReply{}, statusError("wechat", r, clock(w.Now), "")
	}
	var a wechatReply
	if err := json.Unmarshal(r.body, &a); err != nil {
		// A 200 that is not the platform's JSON is a proxy's or a portal's
		// page: worth another try later.
		return wechatReply{}, &Error{Channel: "wechat", Status: r.status, Err: fmt.Errorf("answer is not JSON: %w", err)}
	}
	return a, nil
}

// Token fetch limits.
const (
	// tokenBackoff is how long a failed fetch's error is given to every
	// sender before the endpoint is asked again: a wrong AppSecret or an
	// endpoint down must not turn N queued messages into N fetches.
	tokenBackoff = 20 * time.Second
	// forcedGap and forcedPerDay are the platform's limits on
	// force_refresh: 30 s apart, 20 a day; a forced refresh outside them
	// gives the old token back.
	forcedGap    = 30 * time.Second
	forcedPerDay = 20
)

// tokenFetch is one fetch of the access token, shared by every sender that
// needs a token while it runs.
type tokenFetch struct {
	done chan struct{} // closed when tok and err are set
	tok  string
	err  error
}

// accessToken returns a token to send with. refused is a token the send
// endpoint just refused ("" if none): it is never returned; when the
// platform cannot be brought to give another, the error says when to try
// again.
//
// The fetch runs apart from the sender that started it, on its ctx's values
// without its cancellation and bounded by Timeout: a sender that gives up
// returns at once with its ctx's error, and the fetch still serves the
// others waiting for it.
func (w *WeChat) accessToken(ctx context.Context, refused string) (string, error) {
	// A fetch started by a sender that knew nothing of the refusal may hand
	// back the refused token; the second round fetches knowing it.
	for round := 0; round < 2; round++ {
		w.mu.Lock()
		now := clock(w.Now)
		if w.token != "" && w.token != refused && now.Before(w.expires) {
			tok := w.token
			w.mu.Unlock()
			return tok, nil
		}
		if w.failErr != nil && now.Before(w.failUntil) {
			err := w.failErr
			w.mu.Unlock()
			return "", err
		}
		f := w.fetching
		if f == nil {
			f = &tokenFetch{done: make(chan struct{})}
			w.fetching = f
			go w.fetch(context.WithoutCancel(ctx), f, refused)
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wechat: access token: %w", ctx.Err())
		case <-f.done:
		}
		if f.err != nil {
			return "", f.err
		}
		if f.tok != refused {
			return f.tok, nil
		}
	}
	return "", &Error{Channel: "wechat", Err: errors.New("access token: the platform gave back the token it refused")}
}

// fetch gets a token from the platform for f and caches it, or caches the
// failure for tokenBackoff. refused as for accessToken: when the stable
// endpoint gives it back, a forced refresh is asked for if the platform's
// limits allow one, else the fetch fails until they do.
func (w *WeChat) fetch(ctx context.Context, f *tokenFetch, refused string) {
	defer close(f.done)
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	a, err := w.fetchToken(ctx, false)
	if err == nil && refused != "" && a.AccessToken == refused {
		if wait := w.forceWait(); wait > 0 || w.LegacyToken {
			err = &Error{Channel: "wechat", RetryAfter: wait,
				Err: errors.New("access token: the platform gave back the token it refused, and a forced refresh is not allowed yet")}
		} else if a, err = w.fetchToken(ctx, true); err == nil && a.AccessToken == refused {
			err = &Error{Channel: "wechat", RetryAfter: forcedGap, Err: errors.New("access token: a forced refresh gave back the token it refused")}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := clock(w.Now)
	w.fetching = nil
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.RetryAfter == 0 && !e.Permanent && e.Scope != ScopeChannel {
			c := *e
			c.RetryAfter = tokenBackoff
			err = &c
		}
		w.failErr, w.failUntil = err, now.Add(max(tokenBackoff, RetryAfter(err)))
		f.err = err
		return
	}
	life := time.Duration(a.ExpiresIn) * time.Second
	margin := 5 * time.Minute
	if life < 2*margin {
		margin = life / 2
	}
	w.token, w.expires, w.failErr = a.AccessToken, now.Add(life-margin), nil
	f.tok = a.AccessToken
}

// forceWait is how long until the platform allows a forced refresh, 0 when
// it allows one now; when it does, the refresh is counted.
func (w *WeChat) forceWait() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := clock(w.Now)
	day := slices.DeleteFunc(w.forced, func(t time.Time) bool { return now.Sub(t) >= 24*time.Hour })
	w.forced = day
	var wait time.Duration
	if n := len(day); n > 0 {
		wait = day[n-1].Add(forcedGap).Sub(now)
	}
	if len(day) >= forcedPerDay {
		wait = max(wait, day[0].Add(24*time.Hour).Sub(now))
	}
	if wait > 0 {
		return wait
	}
	w.forced = append(w.forced, now)
	return 0
}

func (w *WeChat) fetchToken(ctx context.Context, force bool) (wechatReply, error) {
	var req *http.Request
	var err error
	if w.LegacyToken {
		q := url.Values{"grant_type": {"client_credential"}, "appid": {w.AppID}, "secret": {w.Secret}}
		req, err = http.NewRequest(http.MethodGet, w.base()+"/cgi-bin/token?"+q.Encode(), nil)
	} else {
		var body []byte
		body, err = json.Marshal(map[string]any{"grant_type": "client_credential", "appid": w.AppID, "secret": w.Secret, "force_refresh": force})
		if err == nil {
			req, err = http.NewRequest(http.MethodPost, w.base()+"/cgi-bin/stable_token", bytes.NewReader(body))
		}
	}
	if err != nil {
		return wechatReply{}, permanent("wechat", redact(err))
	}
	if req.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	a, err := w.call(ctx, req)
	if err != nil {
		return wechatReply{}, err
	}
	if a.ErrCode != 0 {
		e := wechatError(a, true, w.AppID, w.Secret)
		e.Err = fmt.Errorf("access token: %w", e.Err)
		return wechatReply{}, e
	}
	if a.AccessToken == "" || a.ExpiresIn <= 0 {
		return wechatReply{}, &Error{Channel: "wechat", Err: fmt.Errorf("access token: answer without token or lifetime")}
	}
	return a, nil
}
