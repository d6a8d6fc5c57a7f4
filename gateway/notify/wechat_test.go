package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/gateway/notify"
)

// fakeWeChat plays the official-account API: it issues tokens from
// /cgi-bin/stable_token as the platform does (the same token until 5
// minutes before it runs out, then a new one while the old one lasts out
// its life; a new one on force_refresh, at most 20 a day and 30 s apart,
// else the same one again) and /cgi-bin/token (a new one each call, the
// old one dead), and checks template sends as the platform does: the token
// current (or the one before, within its life, on the stable endpoint),
// touser, template_id and data present, answers as JSON with errcode.
type fakeWeChat struct {
	t      *testing.T
	appID  string
	secret string
	now    func() time.Time
	life   time.Duration // a token's expires_in

	mu         sync.Mutex
	token      string
	issued     time.Time
	prev       string    // the token before, renewed in its last 5 minutes
	prevEnd    time.Time // when prev stops working
	forcedAt   []time.Time
	used       string // the token of the last accepted send
	seq        int
	fetches    int
	forced     int
	sends      int
	expiredErr int // errcode for a token past its life (42001; some see 40014)
	revoked    bool
	busy       int // answer -1 to this many sends
	templates  map[string][]string
	followers  map[string]bool
	got        []map[string]any
}

func newFakeWeChat(t *testing.T, now func() time.Time) *fakeWeChat {
	return &fakeWeChat{
		t: t, appID: "wx1234567890abcdef", secret: "0123456789abcdef0123456789abcdef", now: now,
		life: 7200 * time.Second, expiredErr: 42001,
		templates: map[string][]string{"TPL-WARN": {"thing1", "amount2"}},
		followers: map[string]bool{"oABC123": true, "oGONE": false},
	}
}

func (f *fakeWeChat) answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeWeChat) newToken() {
	f.prev, f.prevEnd = "", time.Time{}
	f.seq++
	f.token = fmt.Sprintf("TOKEN-%d-%s", f.seq, strings.Repeat("x", 40))
	f.issued = f.now()
	f.revoked = false
}

func (f *fakeWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/cgi-bin/token":
		q := r.URL.Query()
		if r.Method != http.MethodGet || q.Get("grant_type") != "client_credential" {
			f.t.Errorf("token: %s %s; want GET with grant_type=client_credential", r.Method, r.URL.RawQuery)
		}
		if q.Get("appid") != f.appID {
			f.answer(w, map[string]any{"errcode": 40013, "errmsg": "invalid appid"})
			return
		}
		if q.Get("secret") != f.secret {
			f.answer(w, map[string]any{"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"})
			return
		}
		f.fetches++
		f.newToken()
		f.answer(w, map[string]any{"access_token": f.token, "expires_in": int(f.life / time.Second)})
	case "/cgi-bin/stable_token":
		var b struct {
			GrantType    string `json:"grant_type"`
			AppID        string `json:"appid"`
			Secret       string `json:"secret"`
			ForceRefresh bool   `json:"force_refresh"`
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			f.t.Errorf("stable_token: %s %s; want a JSON POST", r.Method, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.GrantType != "client_credential" {
			f.t.Errorf("stable_token body: %v %+v", err, b)
		}
		if b.AppID != f.appID {
			f.answer(w, map[string]any{"errcode": 40013, "errmsg": "invalid appid"})
			return
		}
		if b.Secret != f.secret {
			f.answer(w, map[string]any{"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"})
			return
		}
		f.fetches++
		now := f.now()
		switch {
		case b.ForceRefresh:
			recent := 0
			for _, at := range f.forcedAt {
				if now.Sub(at) < 24*time.Hour {
					recent++
				}
			}
			if n := len(f.forcedAt); recent >= 20 || (n > 0 && now.Sub(f.forcedAt[n-1]) < 30*time.Second) {
				// The platform does not refresh: the same token comes back.
				f.t.Errorf("forced refresh at %v: %d in 24 h, the last at %v; the platform allows 20 a day, 30 s apart", now, recent, f.forcedAt[n-1])
				break
			}
			f.forced++
			f.forcedAt = append(f.forcedAt, now)
			f.newToken()
		case f.token == "" || !now.Before(f.issued.Add(f.life)):
			f.newToken()
		case !now.Before(f.issued.Add(f.life - 5*time.Minute)):
			// Renewed in its last 5 minutes; the old one lasts its life.
			old, end := f.token, f.issued.Add(f.life)
			f.newToken()
			f.prev, f.prevEnd = old, end
		}
		left := f.issued.Add(f.life).Sub(f.now())
		f.answer(w, map[string]any{"access_token": f.token, "expires_in": int(left / time.Second)})
	case "/cgi-bin/message/template/send":
		f.sends++
		tok := r.URL.Query().Get("access_token")
		switch {
		case tok == "":
			f.answer(w, map[string]any{"errcode": 41001, "errmsg": "access_token missing"})
			return
		case tok == f.prev && f.now().Before(f.prevEnd) && !f.revoked:
		case tok != f.token || f.revoked:
			f.answer(w, map[string]any{"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest rid: 1"})
			return
		case !f.now().Before(f.issued.Add(f.life)):
			f.answer(w, map[string]any{"errcode": f.expiredErr, "errmsg": "access_token expired rid: 2"})
			return
		}
		if f.busy > 0 {
			f.busy--
			f.answer(w, map[string]any{"errcode": -1, "errmsg": "system error"})
			return
		}
		var b struct {
			ToUser      string                       `json:"touser"`
			TemplateID  string                       `json:"template_id"`
			URL         string                       `json:"url"`
			ClientMsgID string                       `json:"client_msg_id"`
			Data        map[string]map[string]string `json:"data"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			f.answer(w, map[string]any{"errcode": 47001, "errmsg": "data format error"})
			return
		}
		following, known := f.followers[b.ToUser]
		keys, tplOK := f.templates[b.TemplateID]
		switch {
		case !known:
			f.answer(w, map[string]any{"errcode": 40003, "errmsg": "invalid openid"})
			return
		case !following:
			f.answer(w, map[string]any{"errcode": 43004, "errmsg": "require subscribe"})
			return
		case !tplOK:
			f.answer(w, map[string]any{"errcode": 40037, "errmsg": "invalid template_id"})
			return
		}
		for _, k := range keys {
			if b.Data[k]["value"] == "" {
				f.answer(w, map[string]any{"errcode": 47003, "errmsg": "argument invalid! data." + k + ".value is empty"})
				return
			}
		}
		f.used = tok
		f.got = append(f.got, map[string]any{"touser": b.ToUser, "client_msg_id": b.ClientMsgID, "url": b.URL, "data": b.Data})
		f.answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "msgid": 200228332 + f.sends})
	default:
		http.NotFound(w, r)
	}
}

// testClock is a clock a test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func wechatMessage() notify.Message {
	m := sample()
	m.Params = []notify.Param{{Key: "thing1", Value: "A-12 王记餐饮"}, {Key: "amount2", Value: "35.20元"}}
	return m
}

func newWeChat(f *fakeWeChat, url string, clk *testClock) *notify.WeChat {
	return &notify.WeChat{
		AppID: f.appID, Secret: f.secret, BaseURL: url, Now: clk.Now,
		Templates: map[string]notify.WeChatTemplate{
			"warning_1": {ID: "TPL-WARN", URL: "https://plaza.example/balance"},
			"cut_off":   {ID: "TPL-GONE"},
		},
	}
}

func TestWeChat_Send(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeWeChat(t, clk.Now)
	srv := httptest.NewServer(f)
	defer srv.Close()
	w := newWeChat(f, srv.URL, clk)
	for i := range 3 {
		rc, err := w.Send(context.Background(), wechatMessage())
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if rc.ProviderID == "" {
			t.Errorf("send %d: no msgid in the receipt", i)
		}
		clk.Advance(30 * time.Minute)
	}
	if f.fetches != 1 {
		t.Errorf("%d token fetches for 3 sends in 1 h; want 1 (the token is cached)", f.fetches)
	}
	g := f.got[0]
	if g["touser"] != "oABC123" || g["client_msg_id"] != "d-000042" || g["url"] != "https://plaza.example/balance" {
		t.Errorf("sent %v; want touser oABC123, client_msg_id the delivery id, the template's url", g)
	}
	data := g["data"].(map[string]map[string]string)
	if data["thing1"]["value"] != "A-12 王记餐饮" || data["amount2"]["value"] != "35.20元" {
		t.Errorf("data %v; want the params as {key:{value}}", data)
	}
	// 1 h 30 min in, the 2 h token has 30 min left; at 1 h 56 min it is
	// within 5 min of its end and is fetched again before the send.
	clk.Advance(26 * time.Minute)
	if _, err := w.Send(context.Background(), wechatMessage()); err != nil {
		t.Fatal(err)
	}
	if f.fetches != 2 || f.sends != 4 {
		t.Errorf("%d fetches, %d sends; want 2 and 4: a token near its end is renewed before use", f.fetches, f.sends)
	}
	if f.seq != 2 || f.used != f.token {
		t.Errorf("sent with %.8s (token %d issued); want the token renewed in the old one's last 5 minutes", f.used, f.seq)
	}
}

// TestWeChat_Send_TokenRefused: each answer that says the token is no good
// fetches a new one and sends once more; a second refusal is not retried
// again.
func TestWeChat_Send_TokenRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		legacy bool
		spoil  func(f *fakeWeChat)
		code   int
	}{
		// The platform ends the token before our cache does (its clock,
		// not ours): it says expired.
		{"42001 expired", false, func(f *fakeWeChat) { f.issued = f.issued.Add(-f.life) }, 42001},
		{"40014 expired", false, func(f *fakeWeChat) { f.issued, f.expiredErr = f.issued.Add(-f.life), 40014 }, 40014},
		// Another program forced a refresh: ours is superseded.
		{"40001 superseded", false, func(f *fakeWeChat) { f.newToken() }, 40001},
		// /cgi-bin/token: any fetch elsewhere kills ours.
		{"40001 legacy", true, func(f *fakeWeChat) { f.newToken() }, 40001},
		// The platform refuses the token yet the stable endpoint hands the
		// same one back: only a forced refresh helps.
		{"40001 same token back", false, func(f *fakeWeChat) { f.revoked = true }, 40001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t: t0}
			f := newFakeWeChat(t, clk.Now)
			srv := httptest.NewServer(f)
			defer srv.Close()
			w := newWeChat(f, srv.URL, clk)
			w.LegacyToken = tc.legacy
			if _, err := w.Send(context.Background(), wechatMessage()); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			tc.spoil(f)
			f.mu.Unlock()
			fetches, sends := f.fetches, f.sends
			if _, err := w.Send(context.Background(), wechatMessage()); err != nil {
				t.Fatalf("after %d: %v; want sent with a fresh token", tc.code, err)
			}
			if f.sends-sends != 2 {
				t.Errorf("%d send calls; want 2 (refused, then sent with the new token)", f.sends-sends)
			}
			if f.fetches == fetches {
				t.Errorf("no token fetched after %d", tc.code)
			}
			if tc.name == "40001 same token back" && f.forced != 1 {
				t.Errorf("%d forced refreshes; want 1", f.forced)
			}
		})
	}
}

func TestWeChat_Send_Refusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		change     func(w *notify.WeChat, m *notify.Message, f *fakeWeChat)
		code       string
		class      string
		retryAfter time.Duration
		wantErr    error
	}{
		{"not a follower", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { m.To.OpenID = "oGONE" }, "43004", "permanent", 0, notify.ErrRefused},
		{"unknown openid", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { m.To.OpenID = "oOTHER" }, "40003", "permanent", 0, notify.ErrRefused},
		{"unknown template", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { m.Kind = "cut_off" }, "40037", "permanent", 0, notify.ErrRefused},
		{"empty data value", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { m.Params = m.Params[:1] }, "47003", "permanent", 0, notify.ErrRefused},
		{"busy", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { f.busy = 1 }, "-1", "temporary", 0, notify.ErrRefused},
		{"wrong secret", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { w.Secret = "nope" }, "40001", "channel", 0, notify.ErrRefused},
		{"wrong appid", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { w.AppID = "wx0" }, "40013", "channel", 0, notify.ErrRefused},
		{"wrong secret, legacy", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { w.Secret, w.LegacyToken = "nope", true }, "40001", "channel", 0, notify.ErrRefused},
		{"no openid", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { m.To.OpenID = "" }, "", "permanent", 0, notify.ErrNoAddress},
		{"no template for the kind", func(w *notify.WeChat, m *notify.Message, f *fakeWeChat) { m.Kind = "topup_receipt" }, "", "permanent", 0, notify.ErrNoTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t: t0}
			f := newFakeWeChat(t, clk.Now)
			srv := httptest.NewServer(f)
			defer srv.Close()
			w := newWeChat(f, srv.URL, clk)
			m := wechatMessage()
			tc.change(w, &m, f)
			_, err := w.Send(context.Background(), m)
			var e *notify.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v; want a *notify.Error", err)
			}
			if e.Code != tc.code || class(err) != tc.class || notify.RetryAfter(err) != tc.retryAfter || !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v (code %q %s retry %v); want code %q %s retry %v, %v",
					err, e.Code, class(err), e.RetryAfter, tc.code, tc.class, tc.retryAfter, tc.wantErr)
			}
			if strings.Contains(err.Error(), f.secret) || strings.Contains(err.Error(), "TOKEN-") {
				t.Errorf("error %q holds a secret", err)
			}
			if len(f.got) != 0 {
				t.Errorf("%d messages accepted; want none", len(f.got))
			}
		})
	}
}

func TestWeChat_Send_QuotaAndHTTP(t *testing.T) {
	for _, tc := range []struct {
		status     int
		body       string
		permanent  bool
		retryAfter time.Duration
	}{
		{200, `{"errcode":45009,"errmsg":"reach max api daily quota limit rid: 3"}`, false, 10 * time.Minute},
		{200, `{"errcode":99999,"errmsg":"something new"}`, false, 0},
		{200, `<html>portal</html>`, false, 0},
		{502, `bad gateway`, false, 0},
		{400, `bad request`, true, 0},
	} {
		clk := &testClock{t: t0}
		f := newFakeWeChat(t, clk.Now)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/cgi-bin/message/template/send" {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
				return
			}
			f.ServeHTTP(w, r)
		}))
		_, err := newWeChat(f, srv.URL, clk).Send(context.Background(), wechatMessage())
		srv.Close()
		if err == nil || notify.Permanent(err) != tc.permanent || notify.ChannelWide(err) != (tc.retryAfter == 10*time.Minute) || notify.RetryAfter(err) != tc.retryAfter {
			t.Errorf("%d %s: got %v; want permanent %v retry after %v", tc.status, tc.body, err, tc.permanent, tc.retryAfter)
		}
	}
}

// TestWeChat_Send_Concurrent: senders that start together share one token
// fetch.
func TestWeChat_Send_Concurrent(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeWeChat(t, clk.Now)
	srv := httptest.NewServer(f)
	defer srv.Close()
	w := newWeChat(f, srv.URL, clk)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := w.Send(context.Background(), wechatMessage()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if f.fetches != 1 || len(f.got) != 8 {
		t.Errorf("%d fetches, %d sent; want 1 and 8", f.fetches, len(f.got))
	}
}

// TestWeChat_Send_TransportError: a connection cut on the send (whose URL
// carries the token) gives a temporary error that shows no token.
func TestWeChat_Send_TransportError(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeWeChat(t, clk.Now)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/message/template/send" {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, err := newWeChat(f, srv.URL, clk).Send(context.Background(), wechatMessage())
	if err == nil || notify.Permanent(err) {
		t.Fatalf("got %v; want a temporary error", err)
	}
	if strings.Contains(err.Error(), "TOKEN-") || strings.Contains(err.Error(), "access_token") {
		t.Errorf("error %q shows the token", err)
	}
}

// TestWeChat_Send_ForcedRefreshGuard: a token refused within 30 s of the
// last forced refresh, which the stable endpoint hands back, is not sent
// with again: the send fails as temporary until a forced refresh is
// allowed, and the senders meanwhile neither fetch nor send.
func TestWeChat_Send_ForcedRefreshGuard(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeWeChat(t, clk.Now)
	srv := httptest.NewServer(f)
	defer srv.Close()
	w := newWeChat(f, srv.URL, clk)
	revoke := func() { f.mu.Lock(); f.revoked = true; f.mu.Unlock() }
	if _, err := w.Send(context.Background(), wechatMessage()); err != nil {
		t.Fatal(err)
	}
	revoke()
	if _, err := w.Send(context.Background(), wechatMessage()); err != nil || f.forced != 1 {
		t.Fatalf("%v, %d forced; want sent after one forced refresh", err, f.forced)
	}
	clk.Advance(10 * time.Second)
	revoke()
	fetches, sends := f.fetches, f.sends
	_, err := w.Send(context.Background(), wechatMessage())
	if class(err) != "temporary" || notify.RetryAfter(err) != 20*time.Second {
		t.Errorf("got %v (%s, retry %v); want temporary, retry after 20 s (30 s after the last forced refresh)", err, class(err), notify.RetryAfter(err))
	}
	if f.sends-sends != 1 || f.fetches-fetches != 1 {
		t.Errorf("%d sends, %d fetches; want 1 and 1: the refused token is not sent with again", f.sends-sends, f.fetches-fetches)
	}
	if _, err := w.Send(context.Background(), wechatMessage()); err == nil || f.sends-sends != 1 || f.fetches-fetches != 1 {
		t.Errorf("second sender: %v, %d sends, %d fetches; want the same failure, nothing asked", err, f.sends-sends, f.fetches-fetches)
	}
	clk.Advance(20 * time.Second)
	if _, err := w.Send(context.Background(), wechatMessage()); err != nil || f.forced != 2 {
		t.Errorf("30 s after the last forced refresh: %v, %d forced; want sent after a second one", err, f.forced)
	}
}

// TestWeChat_Send_WaiterCancelled: a sender waiting for a token fetch
// returns as soon as its ctx ends, with the ctx's error; the fetch goes on
// for the others even when the sender that started it gives up.
func TestWeChat_Send_WaiterCancelled(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeWeChat(t, clk.Now)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/stable_token" {
			arrived <- struct{}{}
			<-release
		}
		f.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	w := newWeChat(f, srv.URL, clk)
	send := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() { _, err := w.Send(ctx, wechatMessage()); done <- err }()
		return done
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	a := send(ctxA)
	<-arrived
	ctxB, cancelB := context.WithCancel(context.Background())
	b := send(ctxB)
	time.Sleep(20 * time.Millisecond) // b is waiting for a's fetch
	for name, c := range map[string]struct {
		cancel context.CancelFunc
		done   chan error
	}{"waiter": {cancelB, b}, "fetcher": {cancelA, a}} {
		c.cancel()
		select {
		case err := <-c.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: got %v; want context.Canceled", name, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: still waiting 2 s after its ctx was cancelled", name)
		}
	}
	close(release)
	released = true
	for range 50 { // the fetch ends in the background
		if w.Send(context.Background(), wechatMessage()); len(f.got) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.fetches != 1 || len(f.got) != 1 {
		t.Errorf("%d fetches, %d sent; want 1 and 1: the abandoned fetch still serves the next sender", f.fetches, len(f.got))
	}
}

// TestWeChat_Send_FetchFailureShared: senders meeting a failing token
// endpoint share one fetch and its failure; the endpoint is asked again
// only after 20 s.
func TestWeChat_Send_FetchFailureShared(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeWeChat(t, clk.Now)
	var mu sync.Mutex
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/stable_token" {
			mu.Lock()
			fetches++
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // the senders pile up behind it
			fmt.Fprint(rw, `{"errcode":-1,"errmsg":"system error"}`)
			return
		}
		f.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	w := newWeChat(f, srv.URL, clk)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := w.Send(context.Background(), wechatMessage()); class(err) != "temporary" {
				t.Errorf("got %v; want a temporary error", err)
			}
		})
	}
	wg.Wait()
	count := func() int { mu.Lock(); defer mu.Unlock(); return fetches }
	clk.Advance(19 * time.Second)
	_, err := w.Send(context.Background(), wechatMessage())
	if fetches := count(); fetches != 1 || notify.RetryAfter(err) != 20*time.Second {
		t.Errorf("%d fetches for 9 senders within 19 s, error %v; want 1, retry after 20 s", fetches, err)
	}
	clk.Advance(time.Second)
	if _, err := w.Send(context.Background(), wechatMessage()); err == nil || count() != 2 {
		t.Errorf("20 s on: %v, %d fetches; want the endpoint asked again", err, count())
	}
}
