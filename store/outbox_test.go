package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testRoute sends every warning_1 to the tenant over "sms" and every
// overload to the duty desk over "sms" and "hook".
func testRoute(_ string, e Event) []Delivery {
	switch e.Kind {
	case "warning_1":
		return []Delivery{{ID: fmt.Sprintf("%d-0-sms-t", e.ID), To: "tenant", Tenant: e.Tenant, Channel: "sms",
			Recipient: Recipient{Name: "Li Wei", Phone: "+8613800000101", Lang: "zh-CN"}}}
	case "overload":
		duty := Recipient{Name: "Duty desk", Email: "duty@plaza.example", Lang: "en"}
		return []Delivery{
			{ID: fmt.Sprintf("%d-1-sms-s0", e.ID), Route: 1, To: "staff", Channel: "sms", Recipient: duty},
			{ID: fmt.Sprintf("%d-1-hook-s0", e.ID), Route: 1, To: "staff", Channel: "hook", Recipient: duty},
		}
	}
	return nil
}

func openRouted(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{LockTimeout: 200 * time.Millisecond, Route: testRoute})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func ids(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID+" "+d.State)
	}
	return out
}

// Every stored event is routed in its own transaction: a cycle that fails
// after storing it queues nothing, one that commits queues its deliveries
// pending and due at the event's time.
func TestOutbox_QueuedWithTheirEvent(t *testing.T) {
	db := openRouted(t, filepath.Join(t.TempDir(), "m.db"))
	boom := errors.New("boom")
	err := db.update(func(tx *bolt.Tx) error {
		if _, err := db.appendEvents(tx, []Event{{Time: at0, Kind: "warning_1", Tenant: "T-1"}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update = %v; want boom", err)
	}
	if got, _ := db.Deliveries("", 10); len(got) != 0 {
		t.Fatalf("deliveries after a rollback = %q; want none", ids(got))
	}
	if _, err := db.CommitCycle(Cycle{Events: []Event{{Time: at0, Kind: "warning_1", Tenant: "T-1", Args: map[string]string{"balance": "80.00"}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Deliveries("", 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("deliveries = %q, %v; want one", ids(got), err)
	}
	d := got[0]
	if d.ID != "1-0-sms-t" || d.State != DeliveryPending || !d.Due.Equal(at0) || d.Event.ID != 1 || d.Event.Args["balance"] != "80.00" ||
		d.Tenant != "T-1" || d.Recipient.Phone != "+8613800000101" {
		t.Errorf("delivery = %+v; want 1-0-sms-t pending, due at the event's time, with the event and recipient", d)
	}
}

// A router that names an id already stored fails the event's transaction:
// neither the event nor a second delivery is kept.
func TestOutbox_DuplicateIDRefused(t *testing.T) {
	dup := func(string, Event) []Delivery { return []Delivery{{ID: "same", Channel: "sms"}} }
	db, err := Open(filepath.Join(t.TempDir(), "m.db"), Options{Route: dup})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.PostEvents(Event{Time: at0, Kind: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEvents(Event{Time: at0, Kind: "x"}); !errors.Is(err, ErrDeliveryExists) {
		t.Fatalf("second event = %v; want ErrDeliveryExists", err)
	}
	if evs, _ := db.LastEvents(10); len(evs) != 1 {
		t.Errorf("events = %d; want 1, the refused one not kept", len(evs))
	}
}

// Due deliveries come longest due first; delivered, retried, postponed and
// dead ones leave or move in the index.
func TestOutbox_Lifecycle(t *testing.T) {
	db := openRouted(t, filepath.Join(t.TempDir(), "m.db"))
	post(t, db, Event{Kind: "warning_1", Tenant: "T-1"}, Event{Kind: "overload", Meter: "M-1"}) // at0, at0+1m
	due, err := db.DueDeliveries(at0.Add(time.Hour), 10, nil)
	if want := []string{"1-0-sms-t pending", "2-1-sms-s0 pending", "2-1-hook-s0 pending"}; err != nil || !slices.Equal(ids(due), want) {
		t.Fatalf("due = %q, %v; want %q", ids(due), err, want)
	}
	if due, _ := db.DueDeliveries(at0, 10, nil); len(due) != 1 {
		t.Errorf("due at at0 = %q; want only the first", ids(due))
	}
	skipHook := func(d Delivery) bool { return d.Channel == "hook" }
	if due, _ := db.DueDeliveries(at0.Add(time.Hour), 10, skipHook); len(due) != 2 {
		t.Errorf("due without hook = %q; want 2", ids(due))
	}

	at := at0.Add(2 * time.Minute)
	if _, err := db.AttemptFailed("1-0-sms-t", at, at.Add(time.Minute), "busy", true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AttemptFailed("2-1-sms-s0", at, at.Add(30*time.Second), "key refused", false); err != nil {
		t.Fatal(err)
	}
	d, err := db.MarkDelivered("2-1-hook-s0", at, "")
	if err != nil || d.State != DeliveryDelivered || d.Attempts != 1 || !d.Done.Equal(at) {
		t.Errorf("delivered = %+v, %v", d, err)
	}
	if _, err := db.MarkDelivered("2-1-hook-s0", at, ""); !errors.Is(err, ErrDeliveryNotPending) {
		t.Errorf("marked delivered twice: %v; want ErrDeliveryNotPending", err)
	}
	due, _ = db.DueDeliveries(at.Add(time.Hour), 10, nil)
	if want := []string{"2-1-sms-s0 pending", "1-0-sms-t pending"}; !slices.Equal(ids(due), want) {
		t.Errorf("due after the attempts = %q; want %q (by their new due times)", ids(due), want)
	}
	if d, _ := db.Delivery("1-0-sms-t"); d.Attempts != 1 || d.LastError != "busy" {
		t.Errorf("after a spent attempt: %+v", d)
	}
	if d, _ := db.Delivery("2-1-sms-s0"); d.Attempts != 0 || d.LastError != "key refused" {
		t.Errorf("after a channel-wide failure: %+v; want no attempt spent", d)
	}
	if d, _ := db.Postpone("1-0-sms-t", at0.Add(10*time.Hour)); !d.Due.Equal(at0.Add(10 * time.Hour)) {
		t.Errorf("postponed: %+v", d)
	}
	if next, ok, _ := db.NextDue(); !ok || !next.Equal(at.Add(30*time.Second)) {
		t.Errorf("NextDue = %v, %v; want %v", next, ok, at.Add(30*time.Second))
	}

	d, ev, err := db.DeadLetter("2-1-sms-s0", at, "number refused", true)
	if err != nil || d.State != DeliveryDead || d.Attempts != 1 || ev.Kind != KindNotifyDeadLetter || ev.Args["delivery"] != "2-1-sms-s0" {
		t.Fatalf("dead letter = %+v, %+v, %v", d, ev, err)
	}
	if got := alarmList(t, db, AlarmActive); !slices.Equal(got, []string{"notify_dead_letter 2-1-sms-s0 active", "overload M-1 active"}) {
		t.Errorf("alarms = %q; want the dead letter's", got)
	}
	if got, _ := db.Deliveries(DeliveryDead, 10); !slices.Equal(ids(got), []string{"2-1-sms-s0 dead"}) {
		t.Errorf("dead = %q", ids(got))
	}
	if _, _, err := db.Resend("1-0-sms-t", at, "user:ann"); !errors.Is(err, ErrDeliveryPending) {
		t.Errorf("resend of a pending one: %v; want ErrDeliveryPending", err)
	}
	if _, _, err := db.Resend("nope", at, "user:ann"); !errors.Is(err, ErrNoDelivery) {
		t.Errorf("resend of an unknown one: %v; want ErrNoDelivery", err)
	}
	later := at.Add(time.Hour)
	d, ev, err = db.Resend("2-1-sms-s0", later, "user:ann")
	if err != nil || d.State != DeliveryPending || d.Attempts != 0 || d.Resends != 1 || !d.Due.Equal(later) || ev.Args["form"] != "" {
		t.Fatalf("resent = %+v, %+v, %v", d, ev, err)
	}
	if got := alarmList(t, db, ""); !slices.Equal(got, []string{"notify_dead_letter 2-1-sms-s0 cleared", "overload M-1 active"}) {
		t.Errorf("alarms after the resend = %q; want the dead letter's cleared", got)
	}
	if due, _ := db.DueDeliveries(later, 10, nil); !slices.Contains(ids(due), "2-1-sms-s0 pending") {
		t.Errorf("due after the resend = %q; want it back under its id", ids(due))
	}
	// A delivered one may be resent too, as a new delivery: the receiver
	// took the first one, and would drop its id if it came again.
	d, ev, err = db.Resend("2-1-hook-s0", later, "user:ann")
	if err != nil || d.ID != "2-1-hook-s0-r1" || d.Of != "2-1-hook-s0" || d.State != DeliveryPending || !d.Created.Equal(later) ||
		d.Event.ID != 2 || d.Channel != "hook" || ev.Args["form"] != "delivered" || ev.Args["delivery"] != d.ID || ev.Args["of"] != d.Of {
		t.Errorf("resend of a delivered one: %+v, %+v, %v", d, ev, err)
	}
	if orig, _ := db.Delivery("2-1-hook-s0"); orig.State != DeliveryDelivered || orig.Resends != 1 {
		t.Errorf("the original after its resend = %+v; want delivered, resent once", orig)
	}
	// A second click while the copy waits sends nothing more.
	if _, _, err := db.Resend("2-1-hook-s0", later, "user:ann"); !errors.Is(err, ErrDeliveryPending) {
		t.Errorf("second resend while the copy is pending: %v; want ErrDeliveryPending", err)
	}
	if _, err := db.MarkDelivered("2-1-hook-s0-r1", later, ""); err != nil {
		t.Fatal(err)
	}
	// Resending the delivered copy copies the original again: ids stay
	// <original>-r<n>, however often.
	if d, _, err := db.Resend("2-1-hook-s0-r1", later, "user:ann"); err != nil || d.ID != "2-1-hook-s0-r2" || d.Of != "2-1-hook-s0" {
		t.Errorf("resend of the copy = %q of %q, %v; want 2-1-hook-s0-r2 of the original", d.ID, d.Of, err)
	}
	if problems, err := db.CheckOutbox(); err != nil || len(problems) > 0 {
		t.Errorf("CheckOutbox = %q, %v", problems, err)
	}
}

// A send whose "delivered" never committed (the process killed between
// the service's answer and the write) is due again after a restart, under
// the same delivery id: at least once, nothing lost.
func TestOutbox_KilledBeforeMarkDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db := openRouted(t, path)
	post(t, db, Event{Kind: "warning_1", Tenant: "T-1"})
	due, err := db.DueDeliveries(at0, 1, nil)
	if err != nil || len(due) != 1 {
		t.Fatalf("due = %q, %v", ids(due), err)
	}
	sent := due[0].ID // … sent; the process dies before MarkDelivered
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openRouted(t, path)
	due, err = db.DueDeliveries(at0.Add(time.Minute), 10, nil)
	if err != nil || !slices.Equal(ids(due), []string{sent + " pending"}) {
		t.Fatalf("due after the restart = %q, %v; want %s again", ids(due), err, sent)
	}
	if _, err := db.MarkDelivered(sent, at0.Add(time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.DueDeliveries(at0.Add(time.Hour), 10, nil); len(due) != 0 {
		t.Errorf("due once delivered = %q; want none", ids(due))
	}
}

// A channel's pause raises one alarm however often it is reported, and its
// resumption clears it; ChannelsDown reads the open ones after a restart.
func TestOutbox_ChannelPauseOneAlarm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db := openRouted(t, path)
	if _, raised, err := db.ResumeChannel("sms", at0); err != nil || raised {
		t.Errorf("resume of a channel never paused: %v, %v; want nothing", raised, err)
	}
	for i := range 3 {
		_, raised, err := db.PauseChannel("sms", at0.Add(time.Duration(i)*time.Minute), "key refused")
		if err != nil || raised != (i == 0) {
			t.Errorf("pause %d: raised %v, %v; want only the first", i, raised, err)
		}
	}
	if _, _, err := db.PauseChannel("hook", at0, "401"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openRouted(t, path)
	if down, err := db.ChannelsDown(); err != nil || !slices.Equal(down, []string{"hook", "sms"}) {
		t.Errorf("down after a restart = %q, %v", down, err)
	}
	if _, raised, err := db.ResumeChannel("sms", at0.Add(time.Hour)); err != nil || !raised {
		t.Errorf("resume: %v, %v; want the alarm cleared", raised, err)
	}
	want := []string{"notify_channel_down hook active", "notify_channel_down sms cleared"}
	if got := alarmList(t, db, ""); !slices.Equal(got, want) {
		t.Errorf("alarms = %q; want %q", got, want)
	}
	if down, _ := db.ChannelsDown(); !slices.Equal(down, []string{"hook"}) {
		t.Errorf("down = %q; want hook", down)
	}
}

// A schema 5 file (before the outbox) is upgraded with an empty outbox:
// events stored before are not sent now.
func TestOpen_UpgradesSchema5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	post(t, db, Event{Kind: "warning_1", Tenant: "T-1"})
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOutbox, bucketOutboxIDs, bucketOutboxDue} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 5))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaOld) {
		t.Errorf("read-only Open of a schema 5 file: %v; want ErrSchemaOld", err)
	}
	db = openRouted(t, path)
	if v, _ := db.SchemaVersion(); v != SchemaVersion {
		t.Errorf("schema after upgrade = %d; want %d", v, SchemaVersion)
	}
	if got, _ := db.Deliveries("", 10); len(got) != 0 {
		t.Errorf("deliveries after the upgrade = %q; want none", ids(got))
	}
	post(t, db, Event{Kind: "warning_1", Tenant: "T-1"})
	if got, _ := db.Deliveries("", 10); !slices.Equal(ids(got), []string{"2-0-sms-t pending"}) {
		t.Errorf("deliveries after a new event = %q; want it queued", ids(got))
	}
}

func TestDeliveries_UnknownState(t *testing.T) {
	db, _ := openTemp(t)
	if _, err := db.Deliveries("sent", 10); err == nil {
		t.Error("Deliveries(sent): no error; want one")
	}
}
