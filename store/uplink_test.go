package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

func upMsgs(kind string, n int) []UplinkMessage {
	out := make([]UplinkMessage, n)
	for i := range out {
		out[i] = UplinkMessage{Kind: kind, Time: at0.Add(time.Duration(i) * time.Minute), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

func seqsOf(ms []UplinkMessage) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func reopen(t *testing.T, db *DB, path string, opts Options) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 200 * time.Millisecond
	}
	db2, err := Open(path, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = db2.Close() })
	return db2
}

// Seqs are contiguous from 1 and never given twice: not after every
// message was acknowledged and removed, not across a restart.
func TestUplink_SeqsContiguousNeverReused(t *testing.T) {
	db, path := openTemp(t)
	got, err := db.EnqueueUplink(upMsgs("event", 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 3}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("seqs = %v; want %v", seqsOf(got), want)
	}
	if err := db.AckUplink(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	s, err := db.UplinkStats()
	if err != nil || s != (UplinkStats{Head: 3}) {
		t.Fatalf("stats after acking all = %+v, %v; want head 3, nothing left", s, err)
	}
	db = reopen(t, db, path, Options{})
	got, err = db.EnqueueUplink(upMsgs("ledger", 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{4, 5}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("seqs after ack-all and restart = %v; want %v", seqsOf(got), want)
	}
	after, err := db.UplinkAfter(0, 10)
	if err != nil || !slices.Equal(seqsOf(after), []uint64{4, 5}) || after[0].Kind != "ledger" || string(after[1].Data) != `{"n":1}` || !after[1].Time.Equal(at0.Add(time.Minute)) {
		t.Fatalf("UplinkAfter(0) = %+v, %v; want 4 and 5 as queued", after, err)
	}
}

// Acknowledgements in any order remove exactly those messages; the
// watermark (Oldest) is the oldest left; unknown seqs are ignored; the
// counters follow.
func TestUplink_AckOutOfOrder(t *testing.T) {
	db, _ := openTemp(t)
	queued, err := db.EnqueueUplink(upMsgs("interval", 6), nil)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	sizes := map[uint64]int64{}
	for _, m := range queued {
		v, _ := json.Marshal(m)
		sizes[m.Seq] = int64(len(v))
		total += int64(len(v))
	}
	s, _ := db.UplinkStats()
	if s.Head != 6 || s.Oldest != 1 || s.Depth != 6 || s.Bytes != total || !s.OldestTime.Equal(at0) {
		t.Fatalf("stats = %+v; want head 6, oldest 1 at %v, depth 6, bytes %d", s, at0, total)
	}
	if err := db.AckUplink(3, 5, 99, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.AckUplink(1); err != nil {
		t.Fatal(err)
	}
	left, _ := db.UplinkAfter(0, 10)
	if want := []uint64{2, 4, 6}; !slices.Equal(seqsOf(left), want) {
		t.Fatalf("left = %v; want %v", seqsOf(left), want)
	}
	page, _ := db.UplinkAfter(2, 1)
	if !slices.Equal(seqsOf(page), []uint64{4}) {
		t.Fatalf("UplinkAfter(2, 1) = %v; want [4]", seqsOf(page))
	}
	s, _ = db.UplinkStats()
	if want := (UplinkStats{Head: 6, Oldest: 2, OldestTime: at0.Add(time.Minute), Depth: 3, Bytes: sizes[2] + sizes[4] + sizes[6]}); s != want {
		t.Fatalf("stats = %+v; want %+v", s, want)
	}
	if p, err := db.CheckUplink(checkNow); err != nil || len(p) != 0 {
		t.Fatalf("CheckUplink = %q, %v; want none", p, err)
	}
}

// A source's cursor moves with its messages: a transaction that fails
// sets neither; one that commits sets both, and they survive a restart.
func TestUplink_CursorsWithMessages(t *testing.T) {
	db, path := openTemp(t)
	if c, err := db.UplinkCursor("events"); c != nil || err != nil {
		t.Fatalf("cursor never set = %q, %v; want nil", c, err)
	}
	bad := append(upMsgs("event", 2), UplinkMessage{Kind: "event", Data: json.RawMessage(`{"n":`)})
	if _, err := db.EnqueueUplink(bad, map[string][]byte{"events": []byte("7")}); !errors.Is(err, ErrBadUplink) {
		t.Fatalf("EnqueueUplink with a broken body = %v; want ErrBadUplink", err)
	}
	if _, err := db.EnqueueUplink(upMsgs("event", 1), map[string][]byte{strings.Repeat("x", MaxUplinkCursor+1): []byte("7")}); !errors.Is(err, ErrBadUplink) {
		t.Fatalf("EnqueueUplink with a long cursor name = %v; want ErrBadUplink", err)
	}
	if c, _ := db.UplinkCursor("events"); c != nil {
		t.Fatalf("cursor after refused enqueues = %q; want nil", c)
	}
	if s, _ := db.UplinkStats(); s != (UplinkStats{}) {
		t.Fatalf("stats after refused enqueues = %+v; want empty", s)
	}
	// A transaction that fails after setting the cursor keeps nothing.
	boom := errors.New("boom")
	err := db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketUplinkMeta).Put([]byte(prefixUplinkCur+"events"), []byte("9")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if c, _ := db.UplinkCursor("events"); c != nil {
		t.Fatalf("cursor after a failed transaction = %q; want nil", c)
	}
	if _, err := db.EnqueueUplink(upMsgs("event", 2), map[string][]byte{"events": []byte("12"), "ledger": []byte("3")}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path, Options{})
	for name, want := range map[string]string{"events": "12", "ledger": "3"} {
		if c, err := db.UplinkCursor(name); string(c) != want || err != nil {
			t.Errorf("cursor %s = %q, %v; want %q", name, c, err, want)
		}
	}
	// A cursor alone, and one deleted.
	if _, err := db.EnqueueUplink(nil, map[string][]byte{"events": []byte("13"), "ledger": nil}); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.UplinkCursor("events"); string(c) != "13" {
		t.Errorf("cursor events = %q; want 13", c)
	}
	if c, _ := db.UplinkCursor("ledger"); c != nil {
		t.Errorf("deleted cursor = %q; want nil", c)
	}
	if s, _ := db.UplinkStats(); s.Head != 2 || s.Depth != 2 {
		t.Errorf("stats = %+v; want head 2, depth 2", s)
	}
}

// A read-only database (mallgrid verify) reads the outbox, including one
// nothing was ever queued in.
func TestUplink_ReadOnly(t *testing.T) {
	db, path := openTemp(t)
	db = reopen(t, db, path, Options{ReadOnly: true})
	if s, err := db.UplinkStats(); err != nil || s != (UplinkStats{}) {
		t.Fatalf("stats of an empty read-only outbox = %+v, %v", s, err)
	}
	if p, err := db.CheckUplink(checkNow); err != nil || len(p) != 0 {
		t.Fatalf("CheckUplink = %q, %v", p, err)
	}
	db = reopen(t, db, path, Options{})
	if _, err := db.EnqueueUplink(upMsgs("heartbeat", 2), map[string][]byte{"a": {1}}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path, Options{ReadOnly: true})
	if s, err := db.UplinkStats(); err != nil || s.Depth != 2 || s.Oldest != 1 {
		t.Fatalf("stats read-only = %+v, %v", s, err)
	}
	if ms, err := db.UplinkAfter(0, 5); err != nil || len(ms) != 2 {
		t.Fatalf("UplinkAfter read-only = %v, %v", ms, err)
	}
	if c, err := db.UplinkCursor("a"); err != nil || string(c) != "\x01" {
		t.Fatalf("cursor read-only = %q, %v", c, err)
	}
}

// EntriesAfter pages every account's entries in id order; an entry stored
// under another id is ErrCorrupt rather than a page that goes back.
func TestEntriesAfter(t *testing.T) {
	db, _ := openTemp(t)
	for i := range 5 {
		if _, _, err := db.PostTopUp(Entry{Time: at0, Account: fmt.Sprintf("T-%d", i%2), Kind: TopUp, Amount: billing.Money(1_000_000), Ref: fmt.Sprintf("r%d", i), Channel: "cash"}); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for after := uint64(0); ; {
		page, err := db.EntriesAfter(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.ID)
		}
		after = page[len(page)-1].ID
	}
	if want := []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("paged ids = %v; want %v", got, want)
	}
	err := db.update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(Entry{ID: 2, Account: "T-0", Kind: TopUp})
		return tx.Bucket(bucketEntries).Put(seqKey(4), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.EntriesAfter(0, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("EntriesAfter over an entry under another id = %v; want ErrCorrupt", err)
	}
}

// checkNow is the clock CheckUplink's tests check the time cursors by.
var checkNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// CheckUplink names each kind of damage.
func TestCheckUplink_Damaged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   string
	}{
		{"other seq", func(tx *bolt.Tx) error {
			v, _ := json.Marshal(UplinkMessage{Seq: 7, Kind: "event", Data: json.RawMessage(`{}`)})
			return tx.Bucket(bucketUplinkOut).Put(seqKey(2), v)
		}, "uplink message 2 holds seq 7"},
		{"undecodable", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkOut).Put(seqKey(2), []byte("{"))
		}, "uplink message 2 cannot be read"},
		{"short key", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkOut).Put([]byte{0}, []byte("{}"))
		}, "the key is not a seq"},
		{"above head", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkOut).SetSequence(1)
		}, "uplink message 2 is above the last seq given, 1"},
		{"no kind", func(tx *bolt.Tx) error {
			v, _ := json.Marshal(UplinkMessage{Seq: 2, Data: json.RawMessage(`{}`)})
			return tx.Bucket(bucketUplinkOut).Put(seqKey(2), v)
		}, "uplink message 2 has no kind"},
		{"depth", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put(keyUplinkDepth, seqKey(9))
		}, "uplink counter depth is 9; the outbox holds 3"},
		{"bytes", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put(keyUplinkBytes, []byte{1})
		}, "uplink counter bytes is 1 bytes, not 8"},
		// The feed's cursors (gateway/upfeed): a damaged one stalls its
		// source, or skips or repeats what it sends.
		{"cursor size", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put([]byte("cursor:events"), []byte{1})
		}, "uplink cursor events is 1 bytes, not 8"},
		{"events cursor ahead", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put([]byte("cursor:events"), seqKey(5))
		}, "uplink cursor events is event 5; the last event stored is 2"},
		{"ledger cursor ahead", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put([]byte("cursor:ledger"), seqKey(4))
		}, "uplink cursor ledger is entry 4; the last entry stored is 1"},
		{"interval cursor in the future", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put([]byte("cursor:interval"), seqKey(uint64(checkNow.Add(72*time.Hour).Unix())))
		}, "uplink cursor interval is 2026-12-04T10:00:00Z, more than a day after"},
		{"heartbeat cursor size", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUplinkMeta).Put([]byte("cursor:heartbeat"), []byte{1, 2, 3})
		}, "uplink cursor heartbeat is 3 bytes, not 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path := openTemp(t)
			// Cursors as the feed keeps them: at the last event and
			// entry stored, the quarter and minute of the clock.
			if _, err := db.PostEvents(Event{Time: checkNow, Kind: "a", Text: "a"}, Event{Time: checkNow, Kind: "b", Text: "b"}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.PostTopUp(Entry{Time: checkNow, Account: "T-1", Kind: TopUp, Amount: 1, Ref: "r"}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.EnqueueUplink(upMsgs("event", 3), map[string][]byte{"events": seqKey(2), "ledger": seqKey(1),
				"interval": seqKey(uint64(checkNow.Unix())), "heartbeat": seqKey(uint64(checkNow.Unix())), "snapshot": seqKey(0)}); err != nil {
				t.Fatal(err)
			}
			if p, err := db.CheckUplink(checkNow); err != nil || len(p) != 0 {
				t.Fatalf("CheckUplink before the damage = %q, %v; want nothing", p, err)
			}
			if err := db.bolt.Update(tc.damage); err != nil {
				t.Fatal(err)
			}
			db = reopen(t, db, path, Options{ReadOnly: true})
			p, err := db.CheckUplink(checkNow)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Fatalf("CheckUplink = %q; want one containing %q", p, tc.want)
			}
		})
	}
}

// QuarterEnergy reads one slot of many meters: what CommitCycle stored
// there, not the neighbouring slots, and no meter without one.
func TestQuarterEnergy(t *testing.T) {
	db, _ := openTemp(t)
	q := IntervalStart(at0)
	_, err := db.CommitCycle(Cycle{Energy: []IntervalEnergy{
		{Meter: "M-1", Time: q.Add(time.Minute), Wh: 10}, {Meter: "M-1", Time: q.Add(14 * time.Minute), Wh: 5},
		{Meter: "M-1", Time: q.Add(15 * time.Minute), Wh: 99}, {Meter: "M-2", Time: q.Add(-time.Second), Wh: 7},
		{Meter: "M-10", Time: q, Wh: 3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.QuarterEnergy([]string{"M-1", "M-2", "M-10", "M-3"}, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"M-1": 15, "M-10": 3}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("QuarterEnergy = %v; want %v", got, want)
	}
}
