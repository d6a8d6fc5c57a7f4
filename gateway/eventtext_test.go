package gateway

import (
	"context"
	"errors"
	"html"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// leftover is a placeholder a sentence still shows.
var leftover = regexp.MustCompile(`\{[a-z_0-9]+\}`)

// checkEventTexts renders every event stored in the database at path in
// every language and fails the test for one that cannot be told in a
// language's own words (a kind without a sentence, an arg its sentence
// needs and its producer did not fill, an arg not of its name's
// convention): start runs it after each gateway of a test stops, so that
// every event any scenario stores is proof. It returns the kinds it saw.
// A database a test broke on purpose (damaged, emptied, removed) is not
// read; any other failure to open it — locked by a gateway that did not
// stop — fails the test, which would otherwise prove nothing unseen.
func checkEventTexts(t *testing.T, path string, loc *time.Location) map[string]int {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrEmpty) || errors.Is(err, store.ErrMissing) || errors.Is(err, fs.ErrNotExist) {
			t.Logf("event texts not checked: the test broke the database: %v", err)
		} else {
			t.Errorf("event texts not checked: %v", err)
		}
		return nil
	}
	defer db.Close()
	evs, err := db.EventsAfter(0, 1_000_000)
	if err != nil {
		t.Errorf("event texts not checked: %v", err)
		return nil
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
		for _, lang := range i18n.Langs() {
			s, err := i18n.New(lang, loc).EventSentence(e.Kind, e.Args)
			if err != nil {
				t.Errorf("event %d (%s, %q): %s: %v", e.ID, e.Kind, e.Text, lang, err)
			} else if leftover.MatchString(s) {
				t.Errorf("event %d (%s): %s: %q keeps a placeholder", e.ID, e.Kind, lang, s)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("event texts checked: %v", kinds)
	}
	return kinds
}

// TestEventText_ChineseDashboard: a live event reaches a Chinese control
// room in Chinese — the stream's data carries the event's args, from
// which the page's catalog tells it (as app.js does), and the dashboard
// and the events page show the Chinese sentence, money as ¥1,234.50 and
// the channel as its word; an English reader gets the English one.
func TestEventText_ChineseDashboard(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, _ := mall.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	live := sse(t, ctx, base+"/api/v1/events", "")
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "books-secret",
		`{"amount":"1234.5","ref":"PAY-ZH","channel":"wechat"}`, nil); code != 200 && code != 201 {
		t.Fatalf("top-up = %d", code)
	}
	var ev web.EventView
	for ev.Kind != "topup_receipt" {
		ev = nextEvent(t, live, 10*time.Second, "the top-up's receipt")
	}
	if ev.Args["amount"] != "1234.50" || ev.Args["channel"] != "wechat" || ev.Args["tenant_name"] != "Shop a1" {
		t.Fatalf("streamed args = %v; want the top-up's facts", ev.Args)
	}
	loc := mall.cfg.Location
	zh := i18n.New(i18n.ZhCN, loc).EventText(ev.Kind, ev.Args, ev.Text)
	no := ev.Args["receipt"]
	if len(no) != 9 || no[0] != 'R' {
		t.Fatalf("streamed receipt number %q; want R and eight digits", no)
	}
	want := "Shop a1：充值 ¥1,234.50 已到账（微信支付，流水号 PAY-ZH，收据号 " + no + "），余额 " + i18n.New(i18n.ZhCN, loc).Money(mustMoney(t, ev.Args["balance"])) + "。"
	if zh != want {
		t.Fatalf("in Chinese: %q; want %q", zh, want)
	}
	en := "Shop a1: top-up of ¥1,234.50 received (WeChat Pay, ref PAY-ZH, receipt " + no + ")"
	for _, c := range []struct{ accept, path, want, not string }{
		{"zh-CN,zh;q=0.9", "/", want, ev.Text},
		{"zh-CN,zh;q=0.9", "/events", want, ev.Text},
		{"en", "/", en, "微信支付"},
	} {
		req, _ := http.NewRequest("GET", base+c.path, nil)
		req.Header.Set("Authorization", "Bearer screen-secret")
		req.Header.Set("Accept-Language", c.accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := html.UnescapeString(string(body))
		if resp.StatusCode != 200 || !strings.Contains(page, c.want) || strings.Contains(page, ">"+c.not+"<") {
			t.Errorf("%s in %s = %d: want %q shown, not %q", c.path, c.accept, resp.StatusCode, c.want, c.not)
		}
	}
}

func mustMoney(t *testing.T, s string) billing.Money {
	t.Helper()
	m, err := billing.ParseMoney(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
