package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// The API's state names are the store's: a view's state is the stored
// alarm's as it is.
func TestAlarms_StateNamesAreTheStores(t *testing.T) {
	for api, st := range map[string]string{web.AlarmActive: store.AlarmActive, web.AlarmAcknowledged: store.AlarmAcknowledged, web.AlarmCleared: store.AlarmCleared} {
		if api != st {
			t.Errorf("web state %q, store state %q; want the same", api, st)
		}
	}
}

func newAlarms(t *testing.T) (*Alarms, *store.DB, time.Time) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}]\ntenants: [{id: T-1, name: Shop}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return &Alarms{DB: db, Now: func() time.Time { return now }, Events: live.NewHub(db, cfg), Log: zerolog.Nop()}, db, now
}

// The view carries every stored field under the API's names, times only
// once they happened; an acknowledgement is streamed with its id; refusals
// are web's errors and change nothing.
func TestAlarms_ListAndAck(t *testing.T) {
	a, db, now := newAlarms(t)
	raisedAt := now.Add(-time.Hour)
	raised, err := db.PostEvents(store.Event{Time: raisedAt, Kind: "relay_fault", Meter: "M-1", Tenant: "T-1", Bus: "b", Text: "relay of M-1 does not follow"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.List(web.AlarmActive, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("List(active) = %+v, %v; want the relay fault", list, err)
	}
	raw, _ := json.Marshal(list[0])
	if want := `{"id":1,"kind":"relay_fault","severity":"critical","state":"active","meter":"M-1","tenant":"T-1","bus":"b",` +
		`"text":"relay of M-1 does not follow","raised":"2026-11-30T09:00:00Z","raised_event":` + itoa(raised[0].ID) + `}`; string(raw) != want {
		t.Errorf("active alarm JSON =\n%s\nwant\n%s", raw, want)
	}

	stream, stop := a.Events.Subscribe()
	defer stop()
	v, err := a.Ack(context.Background(), 1, "electrician on the way", "token:till")
	if err != nil {
		t.Fatal(err)
	}
	if v.State != web.AlarmAcknowledged || v.Acked == nil || !v.Acked.Equal(now) || v.AckedBy != "token:till" || v.Note != "electrician on the way" || v.Cleared != nil {
		t.Errorf("acknowledged view = %+v; want acknowledged now by token:till with the note, not cleared", v)
	}
	select {
	case e := <-stream:
		if e.Kind != store.KindAlarmAcknowledged || e.ID == 0 || e.Meter != "M-1" {
			t.Errorf("streamed %+v; want the stored alarm_acknowledged of M-1", e)
		}
	case <-time.After(2 * time.Second):
		t.Error("no alarm_acknowledged streamed")
	}

	for _, tt := range []struct {
		name string
		id   uint64
		note string
		want error
	}{
		{"again", 1, "again", web.ErrConflict},
		{"unknown", 9, "what?", web.ErrNotFound},
		{"no note", 1, "  ", web.ErrInvalid},
	} {
		if _, err := a.Ack(context.Background(), tt.id, tt.note, "user:bob"); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v; want %v", tt.name, err, tt.want)
		}
	}
	if evs, _ := db.LastEvents(10); len(evs) != 2 {
		t.Errorf("%d events after the refusals; want 2", len(evs))
	}
	if _, err := a.List("open", 10); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("List(open): err = %v; want ErrInvalid", err)
	}

	cleared, err := db.PostEvents(store.Event{Time: now.Add(time.Minute), Kind: "relay_closed", Meter: "M-1"})
	if err != nil {
		t.Fatal(err)
	}
	list, err = a.List("", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("List() = %+v, %v", list, err)
	}
	if c := list[0]; c.State != web.AlarmCleared || c.Cleared == nil || !c.Cleared.Equal(now.Add(time.Minute)) || c.ClearedEvent != cleared[0].ID || c.AckedBy != "token:till" {
		t.Errorf("cleared view = %+v; want cleared by event %d, the acknowledgement kept", c, cleared[0].ID)
	}
}

func itoa(n uint64) string {
	raw, _ := json.Marshal(n)
	return string(raw)
}
