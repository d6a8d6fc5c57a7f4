package enforce

import (
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/policy"
	"mallgrid/gateway/i18n"
)

// Account event texts name their times in the site's zone and never show
// an empty field or the zero time: a protection flag without an end holds
// a cut-off with no due time.
func TestPolicyText(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	clock := func(t time.Time) string { return t.In(sh).Format("2006-01-02 15:04 Z07:00") }
	due := time.Date(2026, 11, 30, 10, 4, 0, 0, time.UTC)
	for _, c := range []struct {
		ev   policy.Event
		want string
	}{
		{policy.Event{Kind: policy.EventCutOffScheduled, At: due, Balance: -billing.Yuan},
			"Shop: credit used up (balance -1.00); power will be cut at 2026-11-30 18:04 +08:00 unless topped up"},
		{policy.Event{Kind: policy.EventProtectedHold, At: due, Hold: policy.HoldFlag, Reason: "funeral"},
			"Shop: cut-off held until 2026-11-30 18:04 +08:00 (flag: funeral)"},
		{policy.Event{Kind: policy.EventProtectedHold, Hold: policy.HoldFlag, Reason: "funeral"},
			"Shop: cut-off held while the account is protected (funeral)"},
		{policy.Event{Kind: policy.EventProtectedHold, Hold: policy.HoldFlag},
			"Shop: cut-off held while the account is protected"},
	} {
		got := policyText("Shop", c.ev, clock)
		if got != c.want {
			t.Errorf("%s: %q; want %q", c.ev.Kind, got, c.want)
		}
		if strings.Contains(got, "0001") || strings.Contains(got, "()") {
			t.Errorf("%s: %q shows an empty field", c.ev.Kind, got)
		}
	}
}

// TestPolicyArgs: every account event, in each of its forms, can be told
// in both languages from its args, with the times in the site's zone.
func TestPolicyArgs(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	siteTime := func(t time.Time) time.Time { return t.In(sh) }
	due := time.Date(2026, 11, 30, 10, 4, 0, 0, time.UTC)
	zh := i18n.New(i18n.ZhCN, sh)
	for _, c := range []struct {
		ev   policy.Event
		want string // in Chinese
	}{
		{policy.Event{Kind: policy.EventWarning1, Balance: 1234*billing.Yuan + 56*billing.Fen}, "一楼 星巴克：余额 ¥1,234.56，余额不足（一级预警）。"},
		{policy.Event{Kind: policy.EventWarning2, Balance: 5 * billing.Yuan}, "一楼 星巴克：余额 ¥5.00，请尽快充值（二级预警）。"},
		{policy.Event{Kind: policy.EventOverdraft, Balance: -billing.Yuan}, "一楼 星巴克：余额 -¥1.00，已进入透支。"},
		{policy.Event{Kind: policy.EventCutOffScheduled, At: due, Balance: -billing.Yuan},
			"一楼 星巴克：余额已用尽（余额 -¥1.00），如未充值将于 2026-11-30 18:04:00 断电。"},
		{policy.Event{Kind: policy.EventCutOffCancelled, Balance: 100 * billing.Yuan}, "一楼 星巴克：断电已取消，余额 ¥100.00。"},
		{policy.Event{Kind: policy.EventCutOff, Balance: -50 * billing.Yuan}, "一楼 星巴克：已欠费断电，余额 -¥50.00。"},
		{policy.Event{Kind: policy.EventRestored, Balance: 50 * billing.Yuan}, "一楼 星巴克：已复电，余额 ¥50.00。"},
		{policy.Event{Kind: policy.EventProtectedHold, At: due, Hold: policy.HoldHours}, "一楼 星巴克：暂缓断电至 2026-11-30 18:04:00（保电时段）。"},
		{policy.Event{Kind: policy.EventProtectedHold, At: due, Hold: policy.HoldFlag, Reason: "丧事"},
			"一楼 星巴克：暂缓断电至 2026-11-30 18:04:00（人工保电：丧事）。"},
		{policy.Event{Kind: policy.EventProtectedHold, Hold: policy.HoldFlag, Reason: "丧事"}, "一楼 星巴克：账户处于保电状态，暂缓断电（丧事）。"},
		{policy.Event{Kind: policy.EventProtectedHold, Hold: policy.HoldFlag}, "一楼 星巴克：账户处于保电状态，暂缓断电。"},
	} {
		args := policyArgs("一楼 星巴克", c.ev, siteTime)
		if err := i18n.CheckEvent(string(c.ev.Kind), args); err != nil {
			t.Errorf("%s %v: %v", c.ev.Kind, args, err)
		}
		if got := zh.EventText(string(c.ev.Kind), args, "FALLBACK"); got != c.want {
			t.Errorf("%s: %q; want %q", c.ev.Kind, got, c.want)
		}
	}
}
