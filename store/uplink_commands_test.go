package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var cmdAt = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func cmdResult(body string) UplinkMessage {
	return UplinkMessage{Kind: KindCommandResult, Time: cmdAt, Data: json.RawMessage(body)}
}

func outboxDepth(t *testing.T, db *DB) int64 {
	t.Helper()
	s, err := db.UplinkStats()
	if err != nil {
		t.Fatal(err)
	}
	return s.Depth
}

// A command's record, its result in the outbox and its events are stored
// together, kept across a reopen; the same id again stores nothing.
func TestFinishUplinkCommand_RecordAndResultTogether(t *testing.T) {
	db, path := openTemp(t)
	hash := sha256.Sum256([]byte(`{"id":"c-1"}`))
	expires := cmdAt.Add(time.Hour)
	msg, evs, err := db.FinishUplinkCommand("c-1", hash, expires, cmdResult(`{"id":"c-1","status":"ok"}`),
		Event{Time: cmdAt, Kind: "uplink_command_refused", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Seq != 1 || len(evs) != 1 || evs[0].ID == 0 {
		t.Fatalf("got seq %d, events %+v; want seq 1 and one stored event", msg.Seq, evs)
	}
	_, _, err = db.FinishUplinkCommand("c-1", hash, expires, cmdResult(`{"id":"c-1","status":"ok","again":true}`),
		Event{Time: cmdAt, Kind: "uplink_command_refused", Text: "y"})
	if !errors.Is(err, ErrCommandSeen) {
		t.Fatalf("second finish = %v; want ErrCommandSeen", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, seen, err := db.UplinkCommand("c-1")
	if err != nil || !seen {
		t.Fatalf("UplinkCommand = %v, %v; want seen", seen, err)
	}
	if string(rec.Result) != `{"id":"c-1","status":"ok"}` || !rec.Expires.Equal(expires) || !rec.Handled.Equal(cmdAt) ||
		rec.PayloadSHA256 != hex.EncodeToString(hash[:]) {
		t.Errorf("record = %+v; want the first result, expiry, time and hash", rec)
	}
	msgs, err := db.UplinkAfter(0, 10)
	if err != nil || len(msgs) != 1 || string(msgs[0].Data) != `{"id":"c-1","status":"ok"}` {
		t.Errorf("outbox = %+v, %v; want the first result alone", msgs, err)
	}
	if evs, _ := db.LastEvents(10); len(evs) != 1 || evs[0].Text != "x" {
		t.Errorf("events = %+v; want the first alone", evs)
	}
	if _, seen, err := db.UplinkCommand("c-2"); seen || err != nil {
		t.Errorf("unknown id: seen %v, %v; want not seen", seen, err)
	}
}

// When the event cannot be stored (its notification's id is taken), the
// record and the result are not kept either: a command handled is always
// answered and reported.
func TestFinishUplinkCommand_AllOrNothing(t *testing.T) {
	dup := func(string, Event) []Delivery { return []Delivery{{ID: "same", Channel: "sms"}} }
	db, err := Open(filepath.Join(t.TempDir(), "m.db"), Options{Route: dup})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.PostEvents(Event{Time: cmdAt, Kind: "x"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.FinishUplinkCommand("c-1", [32]byte{1}, cmdAt.Add(time.Hour), cmdResult(`{"id":"c-1"}`), Event{Time: cmdAt, Kind: "x"})
	if !errors.Is(err, ErrDeliveryExists) {
		t.Fatalf("finish = %v; want ErrDeliveryExists", err)
	}
	if _, seen, _ := db.UplinkCommand("c-1"); seen {
		t.Error("the command is recorded; want nothing kept")
	}
	if d := outboxDepth(t, db); d != 0 {
		t.Errorf("outbox depth %d; want 0", d)
	}
	_, _, err = db.ReportUplinkCommand(cmdResult(`{"id":""}`), Event{Time: cmdAt, Kind: "x"})
	if !errors.Is(err, ErrDeliveryExists) {
		t.Fatalf("report = %v; want ErrDeliveryExists", err)
	}
	if d := outboxDepth(t, db); d != 0 {
		t.Errorf("outbox depth %d after a failed report; want 0", d)
	}
}

func TestFinishUplinkCommand_Refused(t *testing.T) {
	db, _ := openTemp(t)
	for _, c := range []struct {
		name, id string
		msg      UplinkMessage
	}{
		{"no id", "", cmdResult(`{}`)},
		{"long id", strings.Repeat("x", MaxUplinkCommandID+1), cmdResult(`{}`)},
		{"other kind", "c-1", UplinkMessage{Kind: "ledger", Data: json.RawMessage(`{}`)}},
		{"not JSON", "c-1", cmdResult(`{`)},
	} {
		if _, _, err := db.FinishUplinkCommand(c.id, [32]byte{}, cmdAt, c.msg); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v; want ErrBadCommand", c.name, err)
		}
	}
	if _, _, err := db.ReportUplinkCommand(UplinkMessage{Kind: "event", Data: json.RawMessage(`{}`)}); !errors.Is(err, ErrBadCommand) {
		t.Errorf("report of another kind: %v; want ErrBadCommand", err)
	}
	if d := outboxDepth(t, db); d != 0 {
		t.Errorf("outbox depth %d; want 0", d)
	}
	if _, seen, _ := db.UplinkCommand(strings.Repeat("x", MaxUplinkCommandID)); seen {
		t.Error("a refused id is recorded")
	}
}

// A report queues the result and its events but records no id.
func TestReportUplinkCommand(t *testing.T) {
	db, _ := openTemp(t)
	msg, evs, err := db.ReportUplinkCommand(cmdResult(`{"id":"c-9","status":"refused"}`), Event{Time: cmdAt, Kind: "k", Text: "t"})
	if err != nil || msg.Seq != 1 || len(evs) != 1 {
		t.Fatalf("report = %+v, %+v, %v", msg, evs, err)
	}
	if _, seen, _ := db.UplinkCommand("c-9"); seen {
		t.Error("a reported command is recorded")
	}
}

// Pruning deletes the records expired more than keep before the cutoff,
// in batches, and keeps a damaged record for verify to report.
func TestPruneUplinkCommands(t *testing.T) {
	db, _ := openTemp(t)
	for i, exp := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, time.Hour} {
		id := string(rune('a' + i))
		if _, _, err := db.FinishUplinkCommand(id, [32]byte{}, cmdAt.Add(exp), cmdResult(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUplinkCommands).Put([]byte("broken"), []byte("{"))
	}); err != nil {
		t.Fatal(err)
	}
	n, err := db.PruneUplinkCommands(cmdAt, 90*time.Minute, 0)
	if err != nil || n != 0 {
		t.Fatalf("prune(batch 0) = %d, %v; want 0", n, err)
	}
	// Batches of one: both records expired before the cutoff go.
	n, err = db.PruneUplinkCommands(cmdAt, 90*time.Minute, 1)
	if err != nil || n != 2 {
		t.Fatalf("prune(batch 1) = %d, %v; want 2", n, err)
	}
	n, err = db.PruneUplinkCommands(cmdAt, 90*time.Minute, 10)
	if err != nil || n != 0 {
		t.Fatalf("prune again = %d, %v; want 0", n, err)
	}
	var left []string
	var bad []string
	if err := db.EachUplinkCommand(func(c UplinkCommand) error {
		left = append(left, c.ID)
		return nil
	}, func(id string, err error) {
		if errors.Is(err, ErrCorrupt) {
			bad = append(bad, id)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(left, ",") != "c,d" || strings.Join(bad, ",") != "broken" {
		t.Errorf("left %q, damaged %q; want c,d and broken", left, bad)
	}
	if err := db.EachUplinkCommand(func(UplinkCommand) error { return nil }, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("walk without bad = %v; want ErrCorrupt", err)
	}
	if _, _, err := db.UplinkCommand("broken"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("UplinkCommand(broken) = %v; want ErrCorrupt", err)
	}
}

// A clock jumped ahead prunes no more than the latest command handled
// allows: the records are still there when the clock is put right, and a
// captured command delivered again is still known.
func TestPruneUplinkCommands_ClockAhead(t *testing.T) {
	db, _ := openTemp(t)
	for i, exp := range []time.Duration{-3 * time.Hour, time.Hour, 6 * time.Hour} {
		if _, _, err := db.FinishUplinkCommand(string(rune('a'+i)), [32]byte{}, cmdAt.Add(exp), cmdResult(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Every record was handled at cmdAt; the clock says a year later.
	n, err := db.PruneUplinkCommands(cmdAt.AddDate(1, 0, 0), time.Hour, 10)
	if err != nil || n != 1 {
		t.Fatalf("prune a year ahead = %d, %v; want 1 (only a, expired 3 h before the latest handled)", n, err)
	}
	for _, id := range []string{"b", "c"} {
		if _, seen, _ := db.UplinkCommand(id); !seen {
			t.Errorf("%s pruned by a clock a year ahead", id)
		}
	}
	// The clock set back: the cutoff goes back with it.
	if _, _, err := db.FinishUplinkCommand("d", [32]byte{}, cmdAt.Add(2*time.Hour), UplinkMessage{Kind: KindCommandResult, Time: cmdAt.Add(8 * time.Hour), Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneUplinkCommands(cmdAt.Add(3*time.Hour), time.Hour, 10); err != nil || n != 1 {
		t.Fatalf("prune at +3h = %d, %v; want 1 (b, expired at +1h)", n, err)
	}
	if _, seen, _ := db.UplinkCommand("c"); !seen {
		t.Error("c (expires +6h) pruned at +3h")
	}
}
