package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
)

// TestRuleAlarms_OverloadRaisedShownAcknowledgedCleared runs the gateway on
// simulated meters with an overload rule on one circuit: a load above its
// rated current raises one critical overload alarm, stored with the
// reading, shown on the dashboard in both languages; an operator
// acknowledges it; the load falling back while the gateway is restarted
// clears it after the restart; the neighbour on the
// same bus raises nothing, and verify finds the alarms in order.
func TestRuleAlarms_OverloadRaisedShownAcknowledgedCleared(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2, "alarms:\n  meters:\n    M-a1: {overload: {for: 2s, severity: critical}}\n")
	for _, m := range mall.meters {
		m.SetLoad(3000)
	}
	base, stop := mall.start(t)
	waitFor(t, 10*time.Second, "readings of every meter", func() bool {
		var ms []web.MeterView
		getJSON(t, base+"/api/v1/meters", &ms)
		for _, m := range ms {
			if m.ReadingTime == nil {
				return false
			}
		}
		return len(ms) == 4
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream := sse(t, ctx, base+"/api/v1/events", "")
	// 60 kW on three phases at 230 V: about 87 A against 60 A rated.
	mall.meters["M-a1"].SetLoad(60000)
	var active []web.AlarmView
	waitFor(t, 15*time.Second, "M-a1's overload alarm", func() bool {
		active = alarmsOf(t, base, web.AlarmActive)
		return len(active) > 0
	})
	a := active[0]
	if len(active) != 1 || a.Kind != "overload" || a.Severity != "critical" || a.Meter != "M-a1" || a.Tenant != "T-a1" ||
		a.Values["limit_a"] != "60" || a.Values["rated_a"] != "60" || a.Values["current_a"] == "" || a.Values["phase"] == "" {
		t.Fatalf("active alarms = %+v; want one critical overload of M-a1 with its current, phase and 60 A limit", active)
	}
	// Streamed to open pages marked as raising an alarm, so that they sound
	// it without knowing the kind.
	var raised web.EventView
	for raised.Kind != "overload" {
		raised = nextEvent(t, stream, 10*time.Second, "the overload event")
	}
	if raised.Alarm != "raise" || raised.Args["severity"] != "critical" {
		t.Errorf("streamed %+v; want alarm raise, severity critical", raised)
	}
	// Shown on the dashboard, in the reader's language.
	for lang, want := range map[string]string{"en": "Overload on M-a1: phase", "zh-CN": "M-a1 过载："} {
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.Header.Set("Authorization", "Bearer screen-secret")
		req.Header.Set("Accept-Language", lang)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), fmt.Sprintf(`id="alarm-%d"`, a.ID)) || !strings.Contains(string(body), want) {
			t.Errorf("the %s dashboard does not show the overload as %q", lang, want)
		}
	}
	if code := call(t, "POST", fmt.Sprintf("%s/api/v1/alarms/%d/ack", base, a.ID), "till-secret", `{"note":"kitchen told to stagger the fryers"}`, nil); code != 200 {
		t.Fatalf("ack = %d", code)
	}
	// Still over the limit: acknowledged, not raised again.
	time.Sleep(3 * time.Second)
	if list := alarmsOf(t, base, ""); len(list) != 1 || list[0].State != web.AlarmAcknowledged {
		t.Fatalf("alarms while still overloaded = %+v; want the one, acknowledged", list)
	}
	// The gateway restarts while the alarm is open, and the load falls
	// meanwhile: the first readings after the restart clear it.
	stop()
	mall.meters["M-a1"].SetLoad(5000)
	base, stop = mall.start(t)
	waitFor(t, 15*time.Second, "the overload cleared", func() bool {
		list := alarmsOf(t, base, web.AlarmCleared)
		return len(list) == 1 && list[0].ID == a.ID
	})
	if list := alarmsOf(t, base, ""); len(list) != 1 {
		t.Errorf("alarms = %+v; want M-a1's overload alone (M-a2 at 3 kW raised nothing)", list)
	}
	stop()
	report, err := verify.File(mall.dbPath)
	if err != nil || len(report.Violations) != 0 || report.Alarms != 1 || report.OpenAlarms != 0 {
		t.Errorf("verify = %+v, %v; want 1 alarm, none open, no violation", report, err)
	}
}
