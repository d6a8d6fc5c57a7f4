package i18n

import (
	"math"
	"testing"
	"time"

	"mallgrid/billing"
)

func TestLocalizer_Money(t *testing.T) {
	cases := []struct {
		m    billing.Money
		want string
	}{
		{0, "¥0.00"},
		{1234*billing.Yuan + 56*billing.Fen, "¥1,234.56"},
		{-(12*billing.Yuan + 30*billing.Fen), "-¥12.30"},
		{999 * billing.Yuan, "¥999.00"},
		{1000 * billing.Yuan, "¥1,000.00"},
		{1234567*billing.Yuan + 89*billing.Fen, "¥1,234,567.89"},
		{billing.MaxMoney, "¥1,000,000,000.00"},
		{4_999, "¥0.00"},   // below half a fen
		{5_000, "¥0.01"},   // half a fen rounds away from zero
		{-5_000, "-¥0.01"}, // on both sides
		{-4_999, "¥0.00"},  // no "-¥0.00"
		{852_300, "¥0.85"}, // an accrued 0.8523
		{995_000, "¥1.00"}, // the carry reaches the yuan
		{-999_995_000, "-¥1,000.00"},
		{math.MaxInt64, "¥9,223,372,036,854.78"},
		{math.MinInt64, "-¥9,223,372,036,854.78"},
	}
	for _, lang := range Langs() {
		l := New(lang, nil)
		for _, c := range cases {
			if got := l.Money(c.m); got != c.want {
				t.Errorf("%s: Money(%d) = %q; want %q", lang, int64(c.m), got, c.want)
			}
		}
	}
}

func TestLocalizer_KWh(t *testing.T) {
	cases := []struct {
		wh   int64
		want string
	}{
		{0, "0.000"},
		{5, "0.005"},
		{-5, "-0.005"},
		{1234567, "1,234.567"},
		{1_000_000_000, "1,000,000.000"},
		{999_999, "999.999"},
		{math.MinInt64, "-9,223,372,036,854,775.808"},
	}
	l := New(ZhCN, nil)
	for _, c := range cases {
		if got := l.KWh(c.wh); got != c.want {
			t.Errorf("KWh(%d) = %q; want %q", c.wh, got, c.want)
		}
	}
	if got := l.Number(-1234); got != "-1,234" {
		t.Errorf("Number(-1234) = %q; want -1,234", got)
	}
}

func TestLocalizer_Times(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	// 16:30 UTC on 31 March is 00:30 on 1 April in Shanghai: the day is
	// the site's, not UTC's.
	at := time.Date(2026, 3, 31, 16, 30, 5, 0, time.UTC)
	l := New(ZhCN, sh)
	if got, want := l.Time(at), "2026-04-01 00:30:05"; got != want {
		t.Errorf("Time = %q; want %q", got, want)
	}
	if got, want := l.Date(at), "2026-04-01"; got != want {
		t.Errorf("Date = %q; want %q", got, want)
	}
	if got, want := l.Clock(at), "00:30:05"; got != want {
		t.Errorf("Clock = %q; want %q", got, want)
	}
	if got, want := l.Zone(at), "Asia/Shanghai (UTC+08:00)"; got != want {
		t.Errorf("Zone = %q; want %q", got, want)
	}
	if got, want := New(En, nil).Date(at), "2026-03-31"; got != want {
		t.Errorf("Date in UTC = %q; want %q", got, want)
	}
	for _, got := range []string{l.Time(time.Time{}), l.Date(time.Time{}), l.Clock(time.Time{})} {
		if got != "—" {
			t.Errorf("the zero time = %q; want —", got)
		}
	}
}

func TestLocalizer_Duration(t *testing.T) {
	cases := []struct {
		d      time.Duration
		en, zh string
	}{
		{-time.Second, "0 s", "0 秒"},
		{1499 * time.Millisecond, "1 s", "1 秒"},
		{45 * time.Second, "45 s", "45 秒"},
		{90 * time.Second, "1 min 30 s", "1 分钟 30 秒"},
		{15 * time.Minute, "15 min", "15 分钟"},
		{2*time.Hour + 5*time.Minute + 9*time.Second, "2 h 5 min", "2 小时 5 分钟"},
		{72 * time.Hour, "72 h", "72 小时"},
	}
	en, zh := New(En, nil), New(ZhCN, nil)
	for _, c := range cases {
		if got := en.Duration(c.d); got != c.en {
			t.Errorf("en Duration(%v) = %q; want %q", c.d, got, c.en)
		}
		if got := zh.Duration(c.d); got != c.zh {
			t.Errorf("zh-CN Duration(%v) = %q; want %q", c.d, got, c.zh)
		}
	}
}

func TestLocalizer_Ago(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		d      time.Duration
		en, zh string
	}{
		{-3 * time.Second, "0 s ago", "0 秒前"},
		{59 * time.Second, "59 s ago", "59 秒前"},
		{61 * time.Second, "1 min ago", "1 分钟前"},
		{47 * time.Hour, "47 h ago", "47 小时前"},
		{49 * time.Hour, "2 d ago", "2 天前"},
		{400 * 24 * time.Hour, "400 d ago", "400 天前"},
	}
	en, zh := New(En, nil), New(ZhCN, nil)
	for _, c := range cases {
		if got := en.Ago(now.Add(-c.d), now); got != c.en {
			t.Errorf("en Ago(%v) = %q; want %q", c.d, got, c.en)
		}
		if got := zh.Ago(now.Add(-c.d), now); got != c.zh {
			t.Errorf("zh-CN Ago(%v) = %q; want %q", c.d, got, c.zh)
		}
	}
	if got := zh.Ago(time.Time{}, now); got != "从未" {
		t.Errorf("zh-CN Ago(zero) = %q; want 从未", got)
	}
}

func TestLocalizer_T(t *testing.T) {
	zh := New(ZhCN, nil)
	if got, want := zh.T("login.too_many", "wait", 5*time.Minute), "登录失败次数过多，请 5 分钟后再试。"; got != want {
		t.Errorf("T = %q; want %q", got, want)
	}
	if got, want := New(En, nil).T("login.signed_in_as", "user", "wang", "role", New(En, nil).Role("finance")), "Logged in as wang (Finance)"; got != want {
		t.Errorf("T = %q; want %q", got, want)
	}
	if got, want := zh.T("ago.days", "n", 12345), "12,345 天前"; got != want {
		t.Errorf("T with an int = %q; want %q", got, want)
	}
	if got := zh.T("no.such.id"); got != "no.such.id" {
		t.Errorf("T(unknown) = %q; want the id itself", got)
	}
	if got, want := zh.T("login.too_many"), "登录失败次数过多，请 {wait}后再试。"; got != want {
		t.Errorf("T without its value = %q; want the placeholder kept, %q", got, want)
	}
	if got, want := zh.T("login.too_many", "wait"), "登录失败次数过多，请 {wait}后再试。"; got != want {
		t.Errorf("T with a name and no value = %q; want %q", got, want)
	}
	// Words for codes, and a code without a word shown as itself.
	words := []struct{ got, want string }{
		{zh.State("cut_off"), "已断电"}, {zh.State("warning_1"), "一级预警"}, {zh.Relay("open"), "分闸（断电）"},
		{zh.Role("operator"), "操作员"}, {zh.Event("meter_offline"), "电表离线"}, {zh.Online(false), "离线"},
		{zh.Entry("topup"), "充值"}, {zh.Channel("wechat"), "微信支付"}, {zh.Hold("flag"), "人工保电"},
		{zh.MeterRole("public"), "公区表"}, {zh.PollError("crc"), "CRC 校验错误"},
		{zh.State("a_state_from_tomorrow"), "a_state_from_tomorrow"},
		{New(En, nil).State("cut_off"), "Cut off"},
	}
	for _, w := range words {
		if w.got != w.want {
			t.Errorf("got %q; want %q", w.got, w.want)
		}
	}
	if New("fr", nil).Lang() != En || (Localizer{}).Lang() != En {
		t.Error("a language without a catalog, or the zero Localizer, is not English")
	}
	m := zh.Messages()
	m["nav.meters"] = "changed"
	if zh.T("nav.meters") != "电表" {
		t.Error("Messages gave the catalog itself, not a copy")
	}
}
