package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"mallgrid/gateway/notify"
)

// A text with what each escaping must survive.
const hardText = "商铺 \"A-12\" & 1+1=2\n余额 ¥35.20 {phone} 100%"

func TestSMSGateway_Send(t *testing.T) {
	type seen struct {
		method, path, ct, auth string
		query                  url.Values
		body                   []byte
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.URL.Query(), b}
		io.WriteString(w, `{"status":"success"}`)
	}))
	defer srv.Close()
	m := sample()
	m.Text = hardText
	m.ID = "d-42/x y"

	t.Run("JSON body", func(t *testing.T) {
		g := &notify.SMSGateway{
			URL:    srv.URL + "/api/send",
			Header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer tok-{delivery}"},
			Body:   `{"to":"{phone}","content":"{text}","ref":"{delivery}"}`,
			OK:     `"success"`,
		}
		if err := g.Check(); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		var b map[string]string
		if err := json.Unmarshal(got.body, &b); err != nil {
			t.Fatalf("body %s: %v", got.body, err)
		}
		if got.method != "POST" || got.ct != "application/json" || b["to"] != "+8613800138000" || b["content"] != hardText || b["ref"] != "d-42/x y" {
			t.Errorf("got %s %s %s; want a JSON POST with the number, the text and the id as they are", got.method, got.ct, got.body)
		}
		if got.auth != "Bearer tok-d-42/x y" {
			t.Errorf("header %q", got.auth)
		}
	})
	t.Run("URL", func(t *testing.T) {
		g := &notify.SMSGateway{Method: "GET", URL: srv.URL + "/send/{delivery}?u=mall&to={phone}&msg={text}"}
		if _, err := g.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if got.method != "GET" || got.query.Get("to") != "+8613800138000" || got.query.Get("msg") != hardText || got.query.Get("u") != "mall" {
			t.Errorf("query %v; want to, msg as sent", got.query)
		}
		if got.path != "/send/d-42%2Fx%20y" {
			t.Errorf("path %s; want the id as one segment", got.path)
		}
	})
	t.Run("form body", func(t *testing.T) {
		g := &notify.SMSGateway{URL: srv.URL + "/", Header: map[string]string{"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
			Body: "mobile={phone}&content={text}&id={delivery}"}
		if _, err := g.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		f, err := url.ParseQuery(string(got.body))
		if err != nil || f.Get("mobile") != "+8613800138000" || f.Get("content") != hardText || f.Get("id") != "d-42/x y" || len(f) != 3 {
			t.Errorf("form %s (%v); want mobile, content, id as sent", got.body, err)
		}
	})
}

// TestSMSGateway_Send_Answers: a 2xx without the OK marker was taken by
// the gateway, so it is permanent (sending again could mean a second SMS);
// only the Fail marker makes a 2xx temporary.
func TestSMSGateway_Send_Answers(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		ok, fail string
		class    string
	}{
		{200, `{"code":0}`, "", "", "none"},
		{200, `{"code":0,"msg":"ok"}`, `"code":0`, "", "none"},
		{200, `{"code":1005,"msg":"余额不足"}`, `"code":0`, "", "permanent"},
		{200, `{"code":1005,"msg":"余额不足"}`, `"code":0`, `"code":9`, "permanent"},
		{200, `{"code":9,"msg":"busy"}`, `"code":0`, `"code":9`, "temporary"},
		{200, `{"code":9,"msg":"busy"}`, "", `"code":9`, "temporary"},
		{400, `bad`, "", "", "permanent"},
		{401, `who?`, "", "", "channel"},
		{404, ``, "", "", "channel"},
		{429, ``, "", "", "temporary"},
		{503, ``, "", "", "temporary"},
	} {
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		_, err := (&notify.SMSGateway{URL: srv.URL, OK: tc.ok, Fail: tc.fail}).Send(context.Background(), sample())
		srv.Close()
		if class(err) != tc.class || calls != 1 {
			t.Errorf("%d %s (ok %s, fail %s): got %v, %d calls; want %s, 1 call", tc.status, tc.body, tc.ok, tc.fail, err, calls, tc.class)
		}
	}
}

// TestSMSGateway_Send_AnswerRedacted: the answer quoted in the error keeps
// neither the key, nor the number in any spelling, nor the text, and is
// cut short on a rune boundary.
func TestSMSGateway_Send_AnswerRedacted(t *testing.T) {
	const key = "k3y-9f8e7d6c5b4a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// The gateway echoes the request, then pads with Chinese text.
		io.WriteString(w, `{"code":17,"err":"签名错误","req":`+string(b)+`,"auth":"`+r.Header.Get("Authorization")+
			`","to":"138 0013 8000","u":"`+r.URL.Query().Get("apikey")+`","pad":"`+strings.Repeat("余额", 80)+`"}`)
	}))
	defer srv.Close()
	g := &notify.SMSGateway{
		URL:    srv.URL + "/send?apikey=" + key,
		Header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer tok-5e6f7a8b"},
		Body:   `{"mobile":"{phone}","msg":"{text}","sign":"mallsecret99"}`,
		OK:     `"code":0`,
	}
	m := sample()
	_, err := g.Send(context.Background(), m)
	if class(err) != "permanent" {
		t.Fatalf("got %v; want permanent", err)
	}
	msg := err.Error()
	for _, secret := range []string{key, "tok-5e6f7a8b", "mallsecret99", "13800138000", "0013", m.Text} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q holds %q", msg, secret)
		}
	}
	if !strings.Contains(msg, `"code":17`) || !utf8.ValidString(msg) {
		t.Errorf("error %q; want the gateway's code kept, valid UTF-8", msg)
	}
	if len(msg) > 250 {
		t.Errorf("error is %d bytes; want the answer cut short", len(msg))
	}
}

// TestSMSGateway_Send_HeaderControl: a value put in a header loses every
// control character, so the request is made (Go refuses a header with one,
// which retrying would never change).
func TestSMSGateway_Send_HeaderControl(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Ref")
	}))
	defer srv.Close()
	m := sample()
	m.ID = "d-1\x00\x7f\r\nBcc: x"
	g := &notify.SMSGateway{URL: srv.URL, Header: map[string]string{"X-Ref": "{delivery}"}}
	if _, err := g.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got != "d-1    Bcc: x" {
		t.Errorf("X-Ref %q; want the id with its control characters as spaces", got)
	}
}

func TestSMSGateway_Check(t *testing.T) {
	for _, g := range []notify.SMSGateway{
		{URL: "ftp://x/"},
		{URL: "/relative"},
		{URL: "http://x/", Method: "DELETE"},
		{URL: "http://x/", Header: map[string]string{"Content-Type": "application/json"}, Body: `{"to":{phone}}`},
		{URL: "http://x/", Header: map[string]string{"X-Key": "abc\r\n"}},
		{URL: "http://x/", Header: map[string]string{"X Key": "abc"}},
	} {
		if err := g.Check(); err == nil {
			t.Errorf("%+v: Check passed; want an error", g)
		}
		m := sample()
		if _, err := g.Send(context.Background(), m); class(err) != "channel" {
			t.Errorf("%+v: Send gave %v; want channel-wide (the template is wrong for every message)", g, err)
		}
	}
	m := sample()
	m.To.Phone = ""
	if _, err := (&notify.SMSGateway{URL: "http://x/"}).Send(context.Background(), m); !errors.Is(err, notify.ErrNoAddress) || !notify.Permanent(err) {
		t.Errorf("no phone: %v; want permanent ErrNoAddress", err)
	}
}
