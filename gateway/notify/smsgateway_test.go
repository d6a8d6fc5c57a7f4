package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

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

func TestSMSGateway_Send_Answers(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		ok        string
		wantErr   bool
		permanent bool
	}{
		{200, `{"code":0}`, "", false, false},
		{200, `{"code":0,"msg":"ok"}`, `"code":0`, false, false},
		{200, `{"code":1005,"msg":"余额不足"}`, `"code":0`, true, false},
		{400, `bad`, "", true, true},
		{429, ``, "", true, false},
		{503, ``, "", true, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		_, err := (&notify.SMSGateway{URL: srv.URL, OK: tc.ok}).Send(context.Background(), sample())
		srv.Close()
		if (err != nil) != tc.wantErr || notify.Permanent(err) != tc.permanent {
			t.Errorf("%d %s: got %v; want error %v permanent %v", tc.status, tc.body, err, tc.wantErr, tc.permanent)
		}
	}
}

func TestSMSGateway_Check(t *testing.T) {
	for _, g := range []notify.SMSGateway{
		{URL: "ftp://x/"},
		{URL: "/relative"},
		{URL: "http://x/", Method: "DELETE"},
		{URL: "http://x/", Header: map[string]string{"Content-Type": "application/json"}, Body: `{"to":{phone}}`},
	} {
		if err := g.Check(); err == nil {
			t.Errorf("%+v: Check passed; want an error", g)
		}
		m := sample()
		if _, err := g.Send(context.Background(), m); !notify.Permanent(err) {
			t.Errorf("%+v: Send gave %v; want permanent", g, err)
		}
	}
	m := sample()
	m.To.Phone = ""
	if _, err := (&notify.SMSGateway{URL: "http://x/"}).Send(context.Background(), m); !errors.Is(err, notify.ErrNoAddress) || !notify.Permanent(err) {
		t.Errorf("no phone: %v; want permanent ErrNoAddress", err)
	}
}
