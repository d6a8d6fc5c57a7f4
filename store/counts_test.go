package store

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Open alarms are counted by kind, severity (a rule's own, carried by its
// event) and state; cleared ones are not.
func TestOpenAlarmCounts(t *testing.T) {
	db := openRouted(t, filepath.Join(t.TempDir(), "m.db"))
	post(t, db,
		Event{Kind: "meter_offline", Meter: "M-1", Tenant: "T-1", Bus: "a"},
		Event{Kind: "meter_offline", Meter: "M-2", Tenant: "T-2", Bus: "a"},
		Event{Kind: "meter_offline", Meter: "M-3", Tenant: "T-3", Bus: "a"},
		Event{Kind: "overload", Meter: "M-3", Tenant: "T-3", Args: map[string]string{"severity": SeverityCritical}},
		Event{Kind: "meter_online", Meter: "M-2"},
	)
	if _, _, err := db.AckAlarm(1, "breaker reset", "token:till", at0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := db.OpenAlarmCounts()
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[OpenAlarmCount]bool)
	for _, c := range got {
		counts[c] = true
	}
	want := map[OpenAlarmCount]bool{
		{Kind: "meter_offline", Severity: SeverityWarning, State: AlarmAcknowledged, N: 1}: true,
		{Kind: "meter_offline", Severity: SeverityWarning, State: AlarmActive, N: 1}:       true,
		{Kind: "overload", Severity: SeverityCritical, State: AlarmActive, N: 1}:           true,
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("OpenAlarmCounts = %v; want %v", got, want)
	}
}

// The outbox's depth is its pending deliveries; dead letters are counted
// apart, delivered ones not at all.
func TestDeliveryCounts(t *testing.T) {
	db := openRouted(t, filepath.Join(t.TempDir(), "m.db"))
	if got, err := db.DeliveryCounts(); err != nil || !reflect.DeepEqual(got, map[string]int64{DeliveryPending: 0, DeliveryDead: 0}) {
		t.Errorf("empty outbox: DeliveryCounts = %v, %v; want 0 pending, 0 dead", got, err)
	}
	// Two to the duty desk, one to the tenant.
	evs := post(t, db, Event{Kind: "overload", Meter: "M-1", Tenant: "T-1"}, Event{Kind: "warning_1", Tenant: "T-1"})
	ds, err := db.Deliveries(DeliveryPending, 10)
	if err != nil || len(ds) != 3 {
		t.Fatalf("pending = %v, %v; want 3 deliveries of %v", ds, err, evs)
	}
	if _, _, err := db.DeadLetter(ds[0].ID, at0.Add(time.Hour), "refused", true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkDelivered(ds[1].ID, at0.Add(time.Hour), "p-1"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.DeliveryCounts(); err != nil || !reflect.DeepEqual(got, map[string]int64{DeliveryPending: 1, DeliveryDead: 1}) {
		t.Errorf("DeliveryCounts = %v, %v; want 1 pending, 1 dead", got, err)
	}
}
