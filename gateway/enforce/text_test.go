package enforce

import (
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/policy"
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
