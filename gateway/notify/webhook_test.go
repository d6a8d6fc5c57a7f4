package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/gateway/notify"
)

var t0 = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// TestSign_Vector: the signature an independent tool computes
// (printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test).
func TestSign_Vector(t *testing.T) {
	got := notify.Sign("whsec_test", time.Unix(1700000000, 0), []byte(`{"a":1}`))
	want := "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
	if got != want {
		t.Fatalf("got %s; want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"a":1}`)
	at := time.Unix(1700000000, 0)
	good := notify.Sign("s3", at, body)
	other := notify.Sign("old", at, body)
	_, otherV1, _ := strings.Cut(other, ",")
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"good", "s3", good, `{"a":1}`, at, nil},
		{"good, 4 min late", "s3", good, `{"a":1}`, at.Add(4 * time.Minute), nil},
		{"good, clock 4 min behind", "s3", good, `{"a":1}`, at.Add(-4 * time.Minute), nil},
		{"rotated: second v1 matches", "s3", other + "," + strings.Split(good, ",")[1], `{"a":1}`, at, nil},
		{"unknown scheme skipped", "s3", good + ",v0=abc", `{"a":1}`, at, nil},
		{"body changed", "s3", good, `{"a":2}`, at, notify.ErrSignatureMismatch},
		{"wrong secret", "s4", good, `{"a":1}`, at, notify.ErrSignatureMismatch},
		{"only the old secret's", "s3", "t=1700000000," + otherV1, `{"a":1}`, at, notify.ErrSignatureMismatch},
		{"t changed", "s3", strings.Replace(good, "t=1700000000", "t=1700000001", 1), `{"a":1}`, at, notify.ErrSignatureMismatch},
		{"replayed 6 min later", "s3", good, `{"a":1}`, at.Add(6 * time.Minute), notify.ErrSignatureExpired},
		{"from 6 min ahead", "s3", good, `{"a":1}`, at.Add(-6 * time.Minute), notify.ErrSignatureExpired},
		{"empty", "s3", "", `{"a":1}`, at, notify.ErrSignatureHeader},
		{"no t", "s3", strings.Split(good, ",")[1], `{"a":1}`, at, notify.ErrSignatureHeader},
		{"no v1", "s3", "t=1700000000", `{"a":1}`, at, notify.ErrSignatureHeader},
		{"two t", "s3", "t=1700000000," + good, `{"a":1}`, at, notify.ErrSignatureHeader},
		{"short v1", "s3", "t=1700000000,v1=abcd", `{"a":1}`, at, notify.ErrSignatureHeader},
		{"not hex", "s3", "t=1700000000,v1=" + strings.Repeat("zz", 32), `{"a":1}`, at, notify.ErrSignatureHeader},
		{"t not a number", "s3", strings.Replace(good, "t=1700000000", "t=17e8", 1), `{"a":1}`, at, notify.ErrSignatureHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.Verify(tc.secret, tc.header, []byte(tc.body), tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
		})
	}
}

// hookServer is a receiver that checks a webhook request the way a careful
// receiver does and records what it got.
type hookServer struct {
	t      *testing.T
	secret string
	now    time.Time
	mu     sync.Mutex
	got    []hookRequest
	answer func(w http.ResponseWriter)
}

type hookRequest struct {
	delivery string
	body     notify.WebhookBody
}

func (s *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost {
		s.t.Errorf("method %s; want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("Content-Type %q; want application/json", ct)
	}
	if err := notify.Verify(s.secret, r.Header.Get(notify.HeaderSignature), body, s.now, 5*time.Minute); err != nil {
		s.t.Errorf("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b notify.WebhookBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		s.t.Errorf("body %s: %v", body, err)
	}
	s.mu.Lock()
	s.got = append(s.got, hookRequest{r.Header.Get(notify.HeaderDelivery), b})
	s.mu.Unlock()
	if s.answer != nil {
		s.answer(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func sample() notify.Message {
	return notify.Message{
		ID:      "d-000042",
		Kind:    "warning_1",
		At:      t0,
		To:      notify.Recipient{Name: "王老板", Phone: "+8613800138000", Email: "shop12@plaza.example", OpenID: "oABC123"},
		Lang:    "zh-CN",
		Subject: "余额不足",
		Text:    "商铺 A-12 余额 ¥35.20，预计 2 天后停电。",
		Params:  []notify.Param{{Key: "shop", Value: "A-12"}, {Key: "balance", Value: "35.20"}},
		Event:   json.RawMessage(`{"id":7,"kind":"warning_1","tenant":"A-12"}`),
	}
}

func TestWebhook_Send(t *testing.T) {
	hs := &hookServer{t: t, secret: "whsec", now: t0.Add(2 * time.Second)}
	srv := httptest.NewServer(hs)
	defer srv.Close()
	w := &notify.Webhook{URL: srv.URL + "/hook", Secret: "whsec", Now: fixedClock(t0)}
	m := sample()
	for range 2 { // a resend after a lost answer
		if _, err := w.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if len(hs.got) != 2 {
		t.Fatalf("got %d requests; want 2", len(hs.got))
	}
	for _, g := range hs.got {
		if g.delivery != "d-000042" {
			t.Errorf("delivery header %q; want d-000042 on every attempt", g.delivery)
		}
		b := g.body
		if b.Delivery != m.ID || b.Kind != m.Kind || !b.At.Equal(m.At) || b.Text != m.Text || b.Subject != m.Subject || b.Lang != "zh-CN" {
			t.Errorf("body %+v; want the message's fields", b)
		}
		if b.Params["balance"] != "35.20" || string(b.Event) != string(m.Event) {
			t.Errorf("params %v event %s; want balance 35.20 and the event as it was", b.Params, b.Event)
		}
	}
}

func TestWebhook_Send_Answers(t *testing.T) {
	for _, tc := range []struct {
		status     int
		header     string
		class      string
		retryAfter time.Duration
	}{
		{200, "", "none", 0},
		{202, "", "none", 0},
		{400, "", "permanent", 0},
		{422, "", "permanent", 0},
		{403, "", "channel", 0},
		{401, "", "channel", 0},
		{404, "", "channel", 0},
		{410, "", "channel", 0},
		{301, "", "channel", 0}, // not followed: a wrong URL
		{408, "", "temporary", 0},
		{429, "30", "temporary", 30 * time.Second},
		{500, "", "temporary", 0},
		{502, "", "temporary", 0},
		{503, t0.Add(2 * time.Minute).Format(http.TimeFormat), "temporary", 2 * time.Minute},
		{503, "soon", "temporary", 0},
	} {
		hs := &hookServer{t: t, secret: "k", now: t0, answer: func(w http.ResponseWriter) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			if tc.status == 301 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tc.status)
		}}
		srv := httptest.NewServer(hs)
		w := &notify.Webhook{URL: srv.URL, Secret: "k", Now: fixedClock(t0)}
		_, err := w.Send(context.Background(), sample())
		srv.Close()
		if tc.status/100 == 2 {
			if err != nil {
				t.Errorf("%d: %v; want delivered", tc.status, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d: delivered; want an error", tc.status)
			continue
		}
		if got := class(err); got != tc.class {
			t.Errorf("%d: %s; want %s (%v)", tc.status, got, tc.class, err)
		}
		if got := notify.RetryAfter(err); got != tc.retryAfter {
			t.Errorf("%d %q: retry after %v; want %v", tc.status, tc.header, got, tc.retryAfter)
		}
		if len(hs.got) != 1 {
			t.Errorf("%d: %d requests; want 1 (redirects not followed)", tc.status, len(hs.got))
		}
	}
}

// TestWebhook_Send_Timeout: a receiver that never answers costs one
// Timeout, the error is temporary, and it names no secret in the URL.
func TestWebhook_Send_Timeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	w := &notify.Webhook{URL: srv.URL + "/hook?token=hunter2", Secret: "k", Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := w.Send(context.Background(), sample())
	if err == nil || notify.Permanent(err) {
		t.Fatalf("got %v; want a temporary error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v; want about the 200 ms timeout", d)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the URL's query", err)
	}
}

// class names the class of a Send error as the outbox acts on it.
func class(err error) string {
	switch {
	case err == nil:
		return "none"
	case notify.ChannelWide(err):
		if notify.Permanent(err) {
			return "channel and permanent" // never valid
		}
		return "channel"
	case notify.Permanent(err):
		return "permanent"
	default:
		return "temporary"
	}
}

// TestWebhook_Secret: no notice goes unsigned: NewWebhook refuses an
// empty secret, and a Webhook built without one sends nothing.
func TestWebhook_Secret(t *testing.T) {
	if _, err := notify.NewWebhook("https://ops.example/hook", ""); err == nil {
		t.Error("NewWebhook with an empty secret: no error")
	}
	if _, err := notify.NewWebhook("ops.example/hook", "k"); err == nil {
		t.Error("NewWebhook with a relative URL: no error")
	}
	if w, err := notify.NewWebhook("https://ops.example/hook", "k"); err != nil || w.Secret != "k" {
		t.Errorf("NewWebhook: %v, %v", w, err)
	}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	_, err := (&notify.Webhook{URL: srv.URL, Now: fixedClock(t0)}).Send(context.Background(), sample())
	if class(err) != "channel" || calls != 0 {
		t.Errorf("no secret: %v (%s), %d requests; want channel-wide, none sent", err, class(err), calls)
	}
}

// TestWebhook_Send_BadID: a delivery id that cannot be a header value is
// refused before sending, permanently (Go's client would refuse it on
// every attempt).
func TestWebhook_Send_BadID(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	for _, id := range []string{"d-1\r\nX-Evil: 1", "d-1\x00", "d-1\x7f"} {
		m := sample()
		m.ID = id
		_, err := (&notify.Webhook{URL: srv.URL, Secret: "k"}).Send(context.Background(), m)
		if class(err) != "permanent" {
			t.Errorf("id %q: %v (%s); want permanent", id, err, class(err))
		}
	}
	if calls != 0 {
		t.Errorf("%d requests; want none", calls)
	}
}
