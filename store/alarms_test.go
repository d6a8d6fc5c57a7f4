package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var at0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// post stores events one transaction each, a minute apart from at0 on.
func post(t *testing.T, db *DB, evs ...Event) []Event {
	t.Helper()
	var out []Event
	for i, e := range evs {
		if e.Time.IsZero() {
			e.Time = at0.Add(time.Duration(i) * time.Minute)
		}
		stored, err := db.PostEvents(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stored...)
	}
	return out
}

// alarmList is "kind subject state" of each alarm, newest first.
func alarmList(t *testing.T, db *DB, state string) []string {
	t.Helper()
	list, err := db.Alarms(state, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, fmt.Sprintf("%s %s %s", a.Kind, a.Subject, a.State()))
	}
	return out
}

// Each kind of the table raises an alarm of its severity about its
// subject; each of its clearing kinds clears it, for that subject only.
func TestAlarms_RaisedAndClearedByTheirEvents(t *testing.T) {
	for _, tt := range []struct {
		raise, other Event  // other: the same kind about another subject
		subject      string // raise's
		severity     string
		clears       []Event
	}{
		{raise: Event{Kind: "meter_offline", Meter: "M-1", Tenant: "T-1", Bus: "a"}, other: Event{Kind: "meter_offline", Meter: "M-2"}, subject: "M-1",
			severity: SeverityWarning, clears: []Event{{Kind: "meter_online", Meter: "M-1"}, {Kind: "meter_removed", Meter: "M-1"}}},
		{raise: Event{Kind: "bus_down", Bus: "a"}, other: Event{Kind: "bus_down", Bus: "b"}, subject: "a",
			severity: SeverityCritical, clears: []Event{{Kind: "bus_up", Bus: "a"}}},
		{raise: Event{Kind: "relay_fault", Meter: "M-1"}, other: Event{Kind: "relay_fault", Meter: "M-2"}, subject: "M-1", severity: SeverityCritical,
			clears: []Event{{Kind: "relay_opened", Meter: "M-1"}, {Kind: "relay_closed", Meter: "M-1"}, {Kind: "meter_removed", Meter: "M-1"}}},
		{raise: Event{Kind: "bypass_suspected", Meter: "M-1"}, other: Event{Kind: "bypass_suspected", Meter: "M-2"}, subject: "M-1", severity: SeverityCritical,
			clears: []Event{{Kind: "relay_closed", Meter: "M-1"}, {Kind: "meter_removed", Meter: "M-1"}}},
		// A rule alarm carries its configured severity.
		{raise: Event{Kind: "appliance", Meter: "M-1", Args: map[string]string{"severity": "critical"}}, other: Event{Kind: "appliance", Meter: "M-2"},
			subject: "M-1", severity: SeverityCritical,
			clears: []Event{{Kind: "appliance_cleared", Meter: "M-1"}, {Kind: "meter_removed", Meter: "M-1"}}},
		{raise: Event{Kind: "overload", Meter: "M-1", Args: map[string]string{"severity": "warning"}}, other: Event{Kind: "overload", Meter: "M-2"},
			subject: "M-1", severity: SeverityWarning, clears: []Event{{Kind: "overload_cleared", Meter: "M-1"}}},
	} {
		for _, clear := range tt.clears {
			t.Run(tt.raise.Kind+" by "+clear.Kind, func(t *testing.T) {
				db, _ := openTemp(t)
				subject := tt.subject
				tt.raise.Text = "raised"
				evs := post(t, db, tt.raise, tt.raise, tt.other)
				if got, want := alarmList(t, db, ""), []string{
					tt.other.Kind + " " + tt.other.Meter + tt.other.Bus + " active",
					tt.raise.Kind + " " + subject + " active",
				}; !slices.Equal(got, want) {
					t.Fatalf("after raising twice and another subject once: %q; want %q (one episode each)", got, want)
				}
				// Neither another kind nor the clear of another subject ends it.
				other := clear
				other.Meter, other.Bus = "M-9", "z"
				post(t, db, Event{Kind: "relay_opened", Meter: "M-3"}, other)
				if got := alarmList(t, db, AlarmActive); len(got) != 2 {
					t.Fatalf("after unrelated events: %q; want both still active", got)
				}
				cleared := post(t, db, clear)[0]
				list, err := db.Alarms("", 100)
				if err != nil {
					t.Fatal(err)
				}
				a := list[1]
				if a.State() != AlarmCleared || a.ClearedEvent != cleared.ID || !a.Cleared.Equal(cleared.Time) {
					t.Errorf("alarm after %s: %+v; want cleared by event %d at %s", clear.Kind, a, cleared.ID, cleared.Time)
				}
				if a.Severity != tt.severity || a.RaisedEvent != evs[0].ID || !a.Raised.Equal(evs[0].Time) || a.Text != "raised" ||
					a.Meter != tt.raise.Meter || a.Tenant != tt.raise.Tenant || a.Bus != tt.raise.Bus {
					t.Errorf("alarm = %+v; want %s, raised by event %d with its meter, tenant, bus and text", a, tt.severity, evs[0].ID)
				}
				if list[0].State() != AlarmActive {
					t.Errorf("the other subject's alarm is %s; want active", list[0].State())
				}
				// The next raise is a new episode.
				post(t, db, tt.raise)
				if got := alarmList(t, db, AlarmActive); len(got) != 2 || got[0] != tt.raise.Kind+" "+subject+" active" {
					t.Errorf("after raising again: %q; want a new active alarm", got)
				}
			})
		}
	}
}

// Events that raise or clear alarms through every way the store writes
// events: a bus cycle, enforcement's control, a lost file's record.
func TestAlarms_RaisedWithTheirEventsEverywhere(t *testing.T) {
	db, _ := openTemp(t)
	if _, err := db.CommitCycle(Cycle{Events: []Event{{Time: at0, Kind: "bypass_suspected", Meter: "M-1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutControl(nil, Event{Time: at0, Kind: "relay_fault", Meter: "M-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordLoss(Event{Time: at0, Kind: "database_unavailable"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"database_unavailable  active", "relay_fault M-2 active", "bypass_suspected M-1 active"}
	if got := alarmList(t, db, ""); !slices.Equal(got, want) {
		t.Errorf("alarms = %q; want %q", got, want)
	}
}

// An alarm is raised in its event's transaction: a transaction that fails
// after storing the event keeps neither.
func TestAlarms_RolledBackWithTheirEvent(t *testing.T) {
	db, _ := openTemp(t)
	boom := errors.New("boom")
	err := db.update(func(tx *bolt.Tx) error {
		if _, err := db.appendEvents(tx, []Event{{Time: at0, Kind: "meter_offline", Meter: "M-1"}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update = %v; want boom", err)
	}
	if got := alarmList(t, db, ""); len(got) != 0 {
		t.Errorf("alarms after the rollback = %q; want none", got)
	}
	post(t, db, Event{Kind: "meter_offline", Meter: "M-1"})
	if a, err := db.Alarm(1); err != nil || a.RaisedEvent != 1 {
		t.Errorf("alarm 1 = %+v, %v; want raised by event 1, the first stored", a, err)
	}
}

func TestAckAlarm(t *testing.T) {
	db, _ := openTemp(t)
	post(t, db, Event{Kind: "meter_offline", Meter: "M-1", Tenant: "T-1", Bus: "a"})
	ackAt := at0.Add(time.Hour)
	a, ev, err := db.AckAlarm(1, "breaker tripped; reset it", "token:till", ackAt)
	if err != nil {
		t.Fatal(err)
	}
	if a.State() != AlarmAcknowledged || !a.Acked.Equal(ackAt) || a.AckedBy != "token:till" || a.Note != "breaker tripped; reset it" || a.AckEvent != ev.ID {
		t.Errorf("acknowledged alarm = %+v; want who, when, the note and the event", a)
	}
	if ev.Kind != KindAlarmAcknowledged || ev.Meter != "M-1" || ev.Tenant != "T-1" || ev.Bus != "a" || !ev.Time.Equal(ackAt) ||
		ev.Text != "token:till acknowledged alarm 1 (meter_offline of M-1): breaker tripped; reset it" {
		t.Errorf("event = %+v; want alarm_acknowledged about M-1 naming who and the note", ev)
	}
	if want := map[string]string{"actor": "token:till", "alarm": "1", "kind": "meter_offline", "subject": "M-1", "note": "breaker tripped; reset it"}; !reflect.DeepEqual(ev.Args, want) {
		t.Errorf("event args = %v; want %v", ev.Args, want)
	}
	if stored, err := db.LastEvents(1); err != nil || !reflect.DeepEqual(stored[0], ev) {
		t.Errorf("last stored event = %+v, %v; want %+v", stored, err, ev)
	}
	if got, err := db.Alarm(1); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("stored alarm = %+v, %v; want %+v", got, err, a)
	}

	// A second acknowledgement is refused and stores nothing.
	if _, _, err := db.AckAlarm(1, "again", "user:bob", ackAt.Add(time.Minute)); !errors.Is(err, ErrAlarmAcked) {
		t.Errorf("second ack: err = %v; want ErrAlarmAcked", err)
	}
	if _, _, err := db.AckAlarm(7, "what?", "user:bob", ackAt); !errors.Is(err, ErrNoAlarm) {
		t.Errorf("ack of an unknown alarm: err = %v; want ErrNoAlarm", err)
	}
	if _, _, err := db.AckAlarm(1, " ", "user:bob", ackAt); err == nil {
		t.Error("ack without a note: no error")
	}
	if evs, _ := db.LastEvents(10); len(evs) != 2 {
		t.Errorf("%d events after the refused acks; want 2 (the raise and the first ack)", len(evs))
	}
	if got, _ := db.Alarm(1); !reflect.DeepEqual(got, a) {
		t.Errorf("alarm after the refused acks = %+v; want unchanged %+v", got, a)
	}

	// Acknowledged, it is still open: its clearing event clears it.
	post(t, db, Event{Kind: "meter_online", Meter: "M-1"})
	if got, _ := db.Alarm(1); got.State() != AlarmCleared || got.AckedBy != "token:till" {
		t.Errorf("after meter_online: %+v; want cleared, the acknowledgement kept", got)
	}

	// A cleared alarm nobody acknowledged may be: it stays cleared.
	post(t, db, Event{Kind: "relay_fault", Meter: "M-2"}, Event{Kind: "relay_closed", Meter: "M-2"})
	b, _, err := db.AckAlarm(2, "looked at it", "user:ann", ackAt)
	if err != nil || b.State() != AlarmCleared || b.AckedBy != "user:ann" {
		t.Errorf("ack of a cleared alarm = %+v, %v; want it cleared, with who looked", b, err)
	}
}

// A kind no event clears ends at its acknowledgement: the next event of
// its kind is a new episode.
func TestAckAlarm_EndsAKindNoEventClears(t *testing.T) {
	db, _ := openTemp(t)
	post(t, db, Event{Kind: "database_unavailable", Text: "lost"}, Event{Kind: "database_unavailable", Text: "lost again"})
	if got := alarmList(t, db, ""); len(got) != 1 {
		t.Fatalf("alarms = %q; want one episode", got)
	}
	a, ev, err := db.AckAlarm(1, "restored from the rescued copy", "user:ann", at0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a.State() != AlarmCleared || a.ClearedEvent != ev.ID || a.AckEvent != ev.ID {
		t.Errorf("acknowledged database_unavailable = %+v; want cleared by its acknowledgement %d", a, ev.ID)
	}
	post(t, db, Event{Kind: "database_unavailable", Text: "lost once more"})
	if got := alarmList(t, db, ""); !slices.Equal(got, []string{"database_unavailable  active", "database_unavailable  cleared"}) {
		t.Errorf("alarms = %q; want a new active one", got)
	}
}

func TestAlarms_ListsByStateNewestFirst(t *testing.T) {
	db, _ := openTemp(t)
	for i := 1; i <= 6; i++ {
		post(t, db, Event{Kind: "meter_offline", Meter: fmt.Sprintf("M-%d", i)})
	}
	post(t, db, Event{Kind: "meter_online", Meter: "M-2"}, Event{Kind: "meter_online", Meter: "M-5"})
	for _, id := range []uint64{3, 4} {
		if _, _, err := db.AckAlarm(id, "seen", "user:ann", at0); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(state string, limit int) []uint64 {
		list, err := db.Alarms(state, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, a := range list {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tt := range []struct {
		state string
		limit int
		want  []uint64
	}{
		{"", 100, []uint64{6, 5, 4, 3, 2, 1}},
		{"", 2, []uint64{6, 5}},
		{AlarmActive, 100, []uint64{6, 1}},
		{AlarmActive, 1, []uint64{6}},
		{AlarmAcknowledged, 100, []uint64{4, 3}},
		{AlarmCleared, 100, []uint64{5, 2}},
		{AlarmCleared, 1, []uint64{5}},
	} {
		if got := ids(tt.state, tt.limit); !slices.Equal(got, tt.want) {
			t.Errorf("Alarms(%q, %d) = %v; want %v", tt.state, tt.limit, got, tt.want)
		}
	}
	if _, err := db.Alarms("open", 10); err == nil {
		t.Error("Alarms(open): no error; want an unknown state refused")
	}
	idx, err := db.OpenAlarmIndex()
	if err != nil {
		t.Fatal(err)
	}
	want := map[AlarmKey]uint64{{"meter_offline", "M-1"}: 1, {"meter_offline", "M-3"}: 3, {"meter_offline", "M-4"}: 4, {"meter_offline", "M-6"}: 6}
	if fmt.Sprint(idx) != fmt.Sprint(want) {
		t.Errorf("open index = %v; want %v", idx, want)
	}
}

// Bus events stored before they named their bus raise and clear alarms
// about the bus their sentence names.
func TestAlarmSubject_BusFromTheSentence(t *testing.T) {
	for _, tt := range []struct {
		e    Event
		want string
	}{
		{Event{Kind: "bus_down", Bus: "east"}, "east"},
		{Event{Kind: "bus_down", Text: "Bus east wing is down: none of its 3 meters has answered for 30s."}, "east wing"},
		{Event{Kind: "bus_up", Text: "Bus a is up: meter M-1 answered."}, "a"},
		{Event{Kind: "bus_down", Text: "something else"}, ""},
	} {
		if got := AlarmSubject("bus_down", tt.e); got != tt.want {
			t.Errorf("AlarmSubject(%+v) = %q; want %q", tt.e, got, tt.want)
		}
	}
}

// A schema 4 file (before alarms) is upgraded with the alarms of the events
// it holds: an episode open then is open after, to be cleared by its event.
func TestOpen_UpgradesSchema4(t *testing.T) {
	db, path := openTemp(t)
	post(t, db,
		Event{Kind: "meter_offline", Meter: "M-1", Tenant: "T-1"},
		Event{Kind: "bus_down", Text: "Bus a is down: none of its 2 meters has answered for 30s."}, // before events named their bus
		Event{Kind: "relay_fault", Meter: "M-2"},
		Event{Kind: "relay_closed", Meter: "M-2"},
		Event{Kind: "topup_receipt", Tenant: "T-1"},
	)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAlarms, bucketAlarmsOpen} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 4))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaOld) {
		t.Errorf("read-only Open of a schema 4 file: %v; want ErrSchemaOld", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema 4 file: %v", err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(); v != SchemaVersion {
		t.Errorf("schema after upgrade = %d; want %d", v, SchemaVersion)
	}
	want := []string{"relay_fault M-2 cleared", "bus_down a active", "meter_offline M-1 active"}
	if got := alarmList(t, db, ""); !slices.Equal(got, want) {
		t.Fatalf("alarms after the upgrade = %q; want %q", got, want)
	}
	if a, _ := db.Alarm(1); a.RaisedEvent != 1 || a.Tenant != "T-1" {
		t.Errorf("alarm 1 = %+v; want raised by event 1 for T-1", a)
	}
	// The open episodes go on: a repeat is the same one, the end clears it.
	post(t, db, Event{Kind: "bus_down", Bus: "a"}, Event{Kind: "bus_up", Bus: "a"}, Event{Kind: "meter_online", Meter: "M-1"})
	want = []string{"relay_fault M-2 cleared", "bus_down a cleared", "meter_offline M-1 cleared"}
	if got := alarmList(t, db, ""); !slices.Equal(got, want) {
		t.Errorf("after their ends: %q; want %q", got, want)
	}
	if evs, _ := db.LastEvents(100); len(evs) != 8 || !strings.HasPrefix(evs[1].Text, "Bus a is down") {
		t.Errorf("events after the upgrade: %d; want the 5 kept and 3 since", len(evs))
	}
}

// Alarms survive a restart, with their index: an open one is still the
// episode a repeat joins.
func TestAlarms_KeptAcrossReopen(t *testing.T) {
	db, path := openTemp(t)
	post(t, db, Event{Kind: "relay_fault", Meter: "M-1"})
	if _, _, err := db.AckAlarm(1, "electrician called", "user:ann", at0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	post(t, db, Event{Kind: "relay_fault", Meter: "M-1"})
	if got := alarmList(t, db, ""); !slices.Equal(got, []string{"relay_fault M-1 acknowledged"}) {
		t.Errorf("alarms after reopening = %q; want the one, acknowledged", got)
	}
}

// AlarmEffect: what an event does to alarms, by the table.
func TestAlarmEffect(t *testing.T) {
	for kind, want := range map[string]string{"overload": "raise", "meter_offline": "raise", "overload_cleared": "clear",
		"meter_online": "clear", "relay_closed": "clear", "topup_receipt": "", "alarm_acknowledged": ""} {
		if got := AlarmEffect(Event{Kind: kind}); got != want {
			t.Errorf("AlarmEffect(%s) = %q; want %q", kind, got, want)
		}
	}
}
