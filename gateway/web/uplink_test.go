package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/i18n"
)

// uplinkSource is the fake picture with an uplink.
type uplinkSource struct {
	fakeSource
	up *UplinkView
}

func (u uplinkSource) Status() StatusView {
	st := u.fakeSource.Status()
	st.Uplink = u.up
	return st
}

// uplinkCases are the dashboard's uplink lines, with the clock at now.
func uplinkCases(now time.Time) []struct {
	up     UplinkView
	en, zh string
	class  string
} {
	return []struct {
		up     UplinkView
		en, zh string
		class  string
	}{
		{UplinkView{Connected: true, Since: now.Add(-time.Hour)}, "Uplink: connected · 0 waiting", "上行：已连接 · 0 条待发", "uplink"},
		{UplinkView{Since: now.Add(-2*time.Hour - 5*time.Minute), Depth: 12345, Oldest: now.Add(-2 * time.Hour), OldestAgeS: 7300, Backlog: true},
			"Uplink: disconnected for 2 h · 12,345 waiting (oldest 2 h)", "上行：已断开 2 小时 · 12,345 条待发（最早 2 小时）", "uplink down bad"},
		{UplinkView{Connected: true, Depth: 3, Oldest: now.Add(-4 * time.Second), OldestAgeS: 4,
			LastCommand: &UplinkCommandView{ID: "c-9", Status: "refused", Reason: "expired", Time: now}},
			"Uplink: connected · 3 waiting (oldest 4 s) · last command c-9: refused (expired)", "上行：已连接 · 3 条待发（最早 4 秒） · 最近命令 c-9：已拒绝（expired）", "uplink"},
		{UplinkView{Error: "disk gone", LastCommand: &UplinkCommandView{ID: "c-1", Status: "ok", Time: now}},
			"Uplink: disconnected · its outbox cannot be read · last command c-1: ok", "上行：已断开 · 无法读取发件箱 · 最近命令 c-1：成功", "uplink down bad"},
	}
}

// The dashboard shows the uplink's line in the reader's language, the
// backlog past 10 minutes and an unreadable outbox highlighted; a site
// without an uplink shows none.
func TestPages_DashboardUplink(t *testing.T) {
	now := time.Now()
	for _, tc := range uplinkCases(now) {
		up := tc.up
		up.Broker, up.SiteID = "tcp://group.example:1883", "s1"
		s, err := New(uplinkSource{newFake(), &up}, Options{Tokens: testTokens(), Listen: "127.0.0.1:0", Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		for _, lang := range []struct{ accept, want string }{{"en", tc.en}, {"zh-CN", tc.zh}} {
			req := asViewer(httptest.NewRequest("GET", "/", nil))
			req.Header.Set("Accept-Language", lang.accept)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			body := html.UnescapeString(w.Body.String())
			if w.Code != 200 || !strings.Contains(body, `class="`+tc.class+`" role="status"`) || !strings.Contains(body, ">"+lang.want+"</p>") {
				t.Errorf("%s: dashboard %d; want the line %q, class %q in:\n%s", lang.accept, w.Code, lang.want, tc.class, lineOf(body, `id="uplink"`))
			}
		}
	}
	s, err := New(newFake(), Options{Tokens: testTokens(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, asViewer(httptest.NewRequest("GET", "/", nil)))
	if strings.Contains(w.Body.String(), `id="uplink"`) {
		t.Error("dashboard without an uplink shows one")
	}
}

func lineOf(body, what string) string {
	for l := range strings.SplitSeq(body, "\n") {
		if strings.Contains(l, what) {
			return l
		}
	}
	return "(none)"
}

// The status event carries the uplink, so that the open dashboard follows
// it; app.js writes its line as the page does.
func TestAppJS_UplinkLineAsGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH")
	}
	raw, err := assets.ReadFile("assets/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	helpers := jsBetween(t, src, "  // t returns message id", "  function word(")
	block := jsBetween(t, src, "  // span is a wait", "  var lastUplink")
	now := time.Now()
	cases := uplinkCases(now)
	var views []UplinkView
	for _, c := range cases {
		views = append(views, c.up)
	}
	in, _ := json.Marshal(views)
	for _, lang := range i18n.Langs() {
		l := i18n.New(lang, time.UTC)
		words, _ := json.Marshal(l.Messages())
		script := "var W = " + string(words) + ";\n" + helpers + block +
			"\nprocess.stdout.write(JSON.stringify(" + string(in) + ".map(uplinkLine)));\n"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, node, "-")
		cmd.Stdin = strings.NewReader(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: node: %v\n%s", lang, err, stderr.String())
		}
		var js []string
		if err := json.Unmarshal(got, &js); err != nil || len(js) != len(cases) {
			t.Fatalf("%s: node wrote %q (%v)", lang, got, err)
		}
		for i, c := range cases {
			if want := uplinkLine(l, &views[i], now); js[i] != want {
				t.Errorf("%s: app.js %q; Go %q", lang, js[i], want)
			}
			if lang == "en" && js[i] != c.en {
				t.Errorf("app.js %q; want %q", js[i], c.en)
			}
		}
	}
}

// The status of the event stream carries the uplink.
func TestStatusDelta_Uplink(t *testing.T) {
	up := &UplinkView{Broker: "tcp://group.example:1883", SiteID: "s1", Connected: true, Depth: 2}
	s, err := New(uplinkSource{newFake(), up}, Options{Tokens: testTokens(), Listen: "127.0.0.1:0", Events: fakeEvents{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events?status=1", nil)
	resp, err := http.DefaultClient.Do(asViewer(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "event: status\ndata: ") || !strings.HasSuffix(got.String(), "\n\n") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream: %v after %q", err, got.String())
		}
	}
	_, data, _ := strings.Cut(got.String(), "event: status\ndata: ")
	var d StatusDelta
	if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &d); err != nil || d.Uplink == nil || *d.Uplink != *up {
		t.Errorf("status event %s (%v); want the uplink %+v", data, err, *up)
	}
}
