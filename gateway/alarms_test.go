package gateway

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"mallgrid/drivers/sim"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// alarmsOf returns GET /api/v1/alarms?state=… as the viewer reads it.
func alarmsOf(t *testing.T, base, state string) []web.AlarmView {
	t.Helper()
	var list []web.AlarmView
	if code := getJSON(t, base+"/api/v1/alarms?state="+state, &list); code != http.StatusOK {
		t.Fatalf("GET /api/v1/alarms?state=%s = %d; want 200", state, code)
	}
	return list
}

// TestAlarms_MeterOfflineAcknowledgedAndCleared runs the gateway on
// simulated meters: a meter that goes silent raises a meter_offline alarm,
// listed as active; a viewer cannot acknowledge it, an operator can, once,
// with a note, and the acknowledgement is a stored, streamed event; the
// meter answering again clears it; after a restart the alarm is as it was,
// and verify finds the alarms in order.
func TestAlarms_MeterOfflineAcknowledgedAndCleared(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	mall.offlineAfter = 2 * time.Second
	base, stop := mall.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitFor(t, 10*time.Second, "every bus live", func() bool {
		var health web.HealthView
		return getJSON(t, base+"/healthz", &health) == 200
	})
	if list := alarmsOf(t, base, ""); len(list) != 0 {
		t.Fatalf("alarms with every meter answering = %+v; want none", list)
	}

	if err := mall.meters["M-a1"].SetFaultRates(map[sim.FaultKind]float64{sim.NoReply: 1}); err != nil {
		t.Fatal(err)
	}
	var active []web.AlarmView
	waitFor(t, 15*time.Second, "M-a1's meter_offline alarm", func() bool {
		active = alarmsOf(t, base, web.AlarmActive)
		return len(active) > 0
	})
	a := active[0]
	if len(active) != 1 || a.Kind != "meter_offline" || a.Severity != "warning" || a.State != web.AlarmActive || a.Meter != "M-a1" ||
		a.Tenant != "T-a1" || a.Bus != "a" || a.RaisedEvent == 0 || a.Raised.IsZero() || a.Acked != nil || a.Cleared != nil {
		t.Fatalf("active alarms = %+v; want M-a1's meter_offline (T-a1, bus a), warning, neither acknowledged nor cleared", active)
	}

	stream := sse(t, ctx, base+"/api/v1/events", "")
	ack := fmt.Sprintf("%s/api/v1/alarms/%d/ack", base, a.ID)
	note := `{"note": "shop a1's breaker tripped; the tenant resets it"}`
	var refusal struct{ Error string }
	if code := call(t, "POST", ack, "screen-secret", note, &refusal); code != http.StatusForbidden {
		t.Errorf("viewer's ack = %d %+v; want 403", code, refusal)
	}
	var acked web.AlarmView
	if code := call(t, "POST", ack, "till-secret", note, &acked); code != http.StatusOK {
		t.Fatalf("operator's ack = %d %+v; want 200", code, acked)
	}
	if acked.ID != a.ID || acked.State != web.AlarmAcknowledged || acked.AckedBy != "token:till" ||
		acked.Note != "shop a1's breaker tripped; the tenant resets it" || acked.Acked == nil {
		t.Errorf("acknowledged alarm = %+v; want acknowledged by token:till with the note", acked)
	}
	var ackEvent web.EventView
	for ackEvent.Kind != store.KindAlarmAcknowledged {
		ackEvent = nextEvent(t, stream, 5*time.Second, "the alarm_acknowledged event")
	}
	if ackEvent.ID == 0 || ackEvent.Meter != "M-a1" {
		t.Errorf("streamed %+v; want the stored alarm_acknowledged of M-a1", ackEvent)
	}
	if code := call(t, "POST", ack, "till-secret", `{"note": "again"}`, &refusal); code != http.StatusConflict {
		t.Errorf("second ack = %d %+v; want 409", code, refusal)
	}
	if list := alarmsOf(t, base, web.AlarmAcknowledged); len(list) != 1 || list[0].Note != acked.Note || list[0].AckedBy != "token:till" {
		t.Errorf("acknowledged alarms after the refused second ack = %+v; want the first acknowledgement", list)
	}

	mall.meters["M-a1"].ClearFaults()
	var cleared []web.AlarmView
	waitFor(t, 20*time.Second, "the alarm cleared by meter_online", func() bool {
		cleared = alarmsOf(t, base, web.AlarmCleared)
		return len(cleared) > 0
	})
	c := cleared[0]
	if c.ID != a.ID || c.Cleared == nil || c.ClearedEvent <= ackEvent.ID || c.AckedBy != "token:till" {
		t.Errorf("cleared alarm = %+v; want alarm %d cleared after its acknowledgement, who kept", c, a.ID)
	}
	if list := alarmsOf(t, base, web.AlarmActive); len(list) != 0 {
		t.Errorf("active alarms once M-a1 answers = %+v; want none", list)
	}
	stop()

	report, err := verify.File(mall.dbPath)
	if err != nil || len(report.Violations) != 0 || report.Alarms != 1 || report.OpenAlarms != 0 {
		t.Errorf("verify = %+v, %v; want 1 alarm, none open, no violation", report, err)
	}

	base, _ = mall.start(t)
	after := alarmsOf(t, base, "")
	if len(after) != 1 || after[0].ID != c.ID || after[0].State != web.AlarmCleared || after[0].ClearedEvent != c.ClearedEvent ||
		after[0].AckedBy != c.AckedBy || after[0].Note != c.Note || !after[0].Raised.Equal(c.Raised) {
		t.Errorf("alarms after the restart = %+v; want %+v", after, c)
	}
}
