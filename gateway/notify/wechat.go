package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
// give back the same token that was just refused, it is asked once for a
// forced refresh (the platform allows 20 a day, 30 s apart).
//
// errcode decides, never errmsg (which changes): 0 is accepted; the
// recipient's, template's and account's errors (40003 invalid openid,
// 43004 not a follower, 40037 invalid template_id, 47003 bad data, 48001
// api unauthorized, 40013 invalid appid, 40125 invalid appsecret, 40164
// caller IP not whitelisted, and 40001 from the token endpoint: the
// AppSecret is wrong) are permanent; -1 (busy), 45009 (quota; retried
// after 10 minutes at the earliest) and any code not listed are temporary.
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

	// mu is held while the token is fetched, so that one fetch serves every
	// sender waiting for it; the wait is bounded by the fetch's Timeout.
	mu       sync.Mutex
	token    string
	expires  time.Time // when the cached token is no longer used
	forcedAt time.Time // last forced refresh (the platform wants 30 s between)
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
			continue
		}
		return Receipt{}, wechatError(a, false)
	}
}

func tokenRefused(code int) bool { return code == 40001 || code == 40014 || code == 42001 }

// wechatError classifies a non-zero errcode. fromToken is true for the
// token endpoint, where 40001 means a wrong AppSecret.
func wechatError(a wechatReply, fromToken bool) *Error {
	e := &Error{Channel: "wechat", Code: strconv.Itoa(a.ErrCode), Err: fmt.Errorf("%w: %s", ErrRefused, a.ErrMsg)}
	switch a.ErrCode {
	case 40003, 43004, 40037, 47003, 48001, 40013, 40125, 40164:
		e.Permanent = true
	case 40001:
		e.Permanent = fromToken
	case 45009:
		e.RetryAfter = wechatQuotaWait
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

// accessToken returns a token to send with. refused is a token the send
// endpoint just refused ("" if none): it is not returned again if the
// platform can be brought to give another.
func (w *WeChat) accessToken(ctx context.Context, refused string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := clock(w.Now)
	if w.token != "" && w.token != refused && now.Before(w.expires) {
		return w.token, nil
	}
	a, err := w.fetchToken(ctx, false)
	if err != nil {
		return "", err
	}
	if !w.LegacyToken && refused != "" && a.AccessToken == refused && now.Sub(w.forcedAt) >= 30*time.Second {
		w.forcedAt = now
		if a, err = w.fetchToken(ctx, true); err != nil {
			return "", err
		}
	}
	life := time.Duration(a.ExpiresIn) * time.Second
	margin := 5 * time.Minute
	if life < 2*margin {
		margin = life / 2
	}
	w.token, w.expires = a.AccessToken, now.Add(life-margin)
	return w.token, nil
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
		e := wechatError(a, true)
		e.Err = fmt.Errorf("access token: %w", e.Err)
		return wechatReply{}, e
	}
	if a.AccessToken == "" || a.ExpiresIn <= 0 {
		return wechatReply{}, &Error{Channel: "wechat", Err: fmt.Errorf("access token: answer without token or lifetime")}
	}
	return a, nil
}
