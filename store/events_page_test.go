package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// EachEventBefore walks back from the newest or from below an id, to the
// first event, and stops when told.
func TestEachEventBefore(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "e.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var evs []Event
	for i := range eventScanChunk + 5 { // across a read chunk
		evs = append(evs, Event{Time: at.Add(time.Duration(i) * time.Second), Kind: "test", Text: "x"})
	}
	if _, err := db.PostEvents(evs...); err != nil {
		t.Fatal(err)
	}
	walk := func(before uint64, max int) []uint64 {
		var ids []uint64
		if err := db.EachEventBefore(before, func(e Event) bool {
			ids = append(ids, e.ID)
			return len(ids) < max
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	// The database's own first event (database_created) comes first.
	all := walk(0, 1<<30)
	if len(all) < eventScanChunk+5 || all[0] <= all[1] {
		t.Fatalf("from the newest: %d events; want every event, newest first", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]-1 {
			t.Fatalf("event %d after %d: one skipped or repeated across a chunk", all[i], all[i-1])
		}
	}
	newest := all[0]
	if got := walk(newest, 2); len(got) != 2 || got[0] != newest-1 || got[1] != newest-2 {
		t.Errorf("below %d, two: %v; want %d, %d", newest, got, newest-1, newest-2)
	}
	if got := walk(newest+100, 1); len(got) != 1 || got[0] != newest {
		t.Errorf("below an id past the end: %v; want the newest, %d", got, newest)
	}
	if got := walk(1, 10); len(got) != 0 {
		t.Errorf("below the first id: %v; want none", got)
	}
}

// EachAlarmBefore walks every alarm back from the newest, across its
// read chunks, and from below an id.
func TestEachAlarmBefore(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	const n = alarmScanChunk + 300
	var evs []Event
	for i := range n { // one episode per meter: n alarms
		evs = append(evs, Event{Time: at, Kind: "meter_offline", Meter: fmt.Sprintf("M-%d", i), Text: "x"})
	}
	if _, err := db.PostEvents(evs...); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	if err := db.EachAlarmBefore(0, func(a Alarm) bool { ids = append(ids, a.ID); return true }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != n || ids[0] != n || ids[n-1] != 1 {
		t.Fatalf("walked %d alarms from %d to %d; want %d, from %d to 1", len(ids), ids[0], ids[len(ids)-1], n, n)
	}
	for i := 1; i < n; i++ {
		if ids[i] != ids[i-1]-1 {
			t.Fatalf("alarm %d after %d: one skipped or repeated across a chunk", ids[i], ids[i-1])
		}
	}
	var below []uint64
	if err := db.EachAlarmBefore(11, func(a Alarm) bool { below = append(below, a.ID); return len(below) < 3 }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(below) != "[10 9 8]" {
		t.Errorf("below 11, three: %v; want [10 9 8]", below)
	}
}
