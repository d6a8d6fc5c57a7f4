package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func auditAt(at time.Time, actor, action, target string) AuditRecord {
	return AuditRecord{Time: at, Actor: actor, Role: "operator", Address: "10.0.0.7", Action: action, Target: target, Outcome: "ok"}
}

func appendAudit(t *testing.T, db *DB, r AuditRecord) AuditRecord {
	t.Helper()
	got, err := db.AppendAudit(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkChain fails the test unless the audit log holds n records in a
// whole chain.
func checkChain(t *testing.T, db *DB, n int) {
	t.Helper()
	c, err := db.CheckAuditChain()
	if err != nil || c.Fault != nil || c.Records != n {
		t.Fatalf("CheckAuditChain = %+v, %v; want %d records, whole", c, err, n)
	}
	last, err := db.AuditRecords(AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := "" // an empty log has no last hash
	if len(last) == 1 {
		want = last[0].Hash
	}
	if c.Last != want {
		t.Errorf("CheckAuditChain's last hash = %q; want the newest record's, %q", c.Last, want)
	}
}

// The hash is the documented encoding and nothing else: this value was
// computed outside Go from the package documentation's recipe (netstrings
// of the version and every field, SHA-256), as an outside auditor would.
func TestAuditHash_Documented(t *testing.T) {
	r := AuditRecord{Seq: 1, Time: time.Date(2026, 11, 27, 18, 0, 0, 500_000_000, time.FixedZone("CST", 8*3600)),
		Actor: "user:alice", Role: "operator", Address: "10.0.0.7", Action: "POST /api/v1/accounts/{tenant}/topups",
		Target: "T-101", Before: "balance 10.00", After: "balance 110.00", Reason: "cash at the desk", Outcome: "ok", Prev: AuditGenesis}
	const want = "236f275cba07b929394e5b2f2df25ed899933fd633352f16f334eafa58d20905"
	if got := AuditHash(r); got != want {
		t.Errorf("AuditHash = %s; want %s", got, want)
	}
	// Moving a byte from one field to the next changes the hash: fields
	// are delimited by their lengths, not by a separator a field can hold.
	r2 := r
	r2.Before, r2.After = "balance 10.00b", "alance 110.00"
	if AuditHash(r2) == want {
		t.Error("a byte moved between Before and After kept the hash")
	}
}

func TestAppendAudit_Chains(t *testing.T) {
	db, path := openTemp(t)
	var recs []AuditRecord
	for i, action := range []string{"login_failed", "POST /api/v1/accounts/{tenant}/topups", "POST /api/v1/meters/{id}/relay"} {
		r := auditAt(t0.Add(time.Duration(i)*time.Minute), "user:alice", action, "T-1")
		r.Seq, r.Prev, r.Hash = 99, "forged", "forged" // the store sets these
		recs = append(recs, appendAudit(t, db, r))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: Seq = %d", i, r.Seq)
		}
		wantPrev := AuditGenesis
		if i > 0 {
			wantPrev = recs[i-1].Hash
		}
		if r.Prev != wantPrev {
			t.Errorf("record %d: Prev = %s; want %s", r.Seq, r.Prev, wantPrev)
		}
		if r.Hash != AuditHash(r) || len(r.Hash) != 64 {
			t.Errorf("record %d: Hash = %s; want %s", r.Seq, r.Hash, AuditHash(r))
		}
	}
	checkChain(t, db, 3)
	// It lasts: reopened, the chain is whole and goes on from its last hash.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r4 := appendAudit(t, db, auditAt(t0.Add(time.Hour), "token:till", "POST /logout", ""))
	if r4.Seq != 4 || r4.Prev != recs[2].Hash {
		t.Errorf("after reopening: Seq %d, Prev %s; want 4 after %s", r4.Seq, r4.Prev, recs[2].Hash)
	}
	checkChain(t, db, 4)
	got, err := db.AuditRecords(AuditFilter{})
	if err != nil || len(got) != 4 || got[0] != r4 || got[3].Hash != recs[0].Hash || !got[3].Time.Equal(recs[0].Time) {
		t.Errorf("AuditRecords = %+v, %v; want the 4 records as appended, newest first", got, err)
	}
}

// A record's text is stored as JSON gives it back: bytes that are not
// UTF-8 (a username tried at the login form) must not break the chain.
func TestAppendAudit_NotUTF8(t *testing.T) {
	db, _ := openTemp(t)
	r := appendAudit(t, db, auditAt(t0, "bad\xffname", "login_failed", ""))
	if r.Actor != "bad\uFFFDname" {
		t.Errorf("Actor = %q; want the bad byte replaced", r.Actor)
	}
	checkChain(t, db, 1)
}

func TestAppendAudit_Refused(t *testing.T) {
	db, _ := openTemp(t)
	for _, r := range []AuditRecord{
		{Action: "login_failed"},                    // no time
		{Time: t0, Actor: "user:alice"},             // no action
		{Time: t0.AddDate(9000, 0, 0), Action: "x"}, // no JSON for year 11026
	} {
		if _, err := db.AppendAudit(r); !errors.Is(err, ErrBadAudit) {
			t.Errorf("AppendAudit(%+v) = %v; want ErrBadAudit", r, err)
		}
	}
	checkChain(t, db, 0)
	if r := appendAudit(t, db, auditAt(t0, "user:alice", "login_failed", "")); r.Seq != 1 {
		t.Errorf("first record after refusals has Seq %d; want 1", r.Seq)
	}
}

func TestAuditRecords_Filters(t *testing.T) {
	db, _ := openTemp(t)
	// Seq: 1 alice topup T-1 @0, 2 bob relay M-1 @1h, 3 alice relay M-2 @2h,
	// 4 bob topup T-2 @3h, 5 alice login_failed @4h, 6 alice topup T-1 @1h30
	// (a clock set back).
	for _, r := range []AuditRecord{
		auditAt(t0, "user:alice", "POST /api/v1/accounts/{tenant}/topups", "T-1"),
		auditAt(t0.Add(time.Hour), "user:bob", "POST /api/v1/meters/{id}/relay", "M-1"),
		auditAt(t0.Add(2*time.Hour), "user:alice", "POST /api/v1/meters/{id}/relay", "M-2"),
		auditAt(t0.Add(3*time.Hour), "user:bob", "POST /api/v1/accounts/{tenant}/topups", "T-2"),
		auditAt(t0.Add(4*time.Hour), "user:alice", "login_failed", ""),
		auditAt(t0.Add(90*time.Minute), "user:alice", "POST /api/v1/accounts/{tenant}/topups", "T-1"),
	} {
		appendAudit(t, db, r)
	}
	for _, tt := range []struct {
		name string
		f    AuditFilter
		want string // sequence numbers, newest first
	}{
		{"all", AuditFilter{}, "6 5 4 3 2 1"},
		{"from", AuditFilter{From: t0.Add(2 * time.Hour)}, "5 4 3"},
		{"to is exclusive", AuditFilter{To: t0.Add(time.Hour)}, "1"},
		{"time range, across a clock set back", AuditFilter{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}, "6 2"},
		{"actor", AuditFilter{Actor: "user:bob"}, "4 2"},
		{"actor is exact", AuditFilter{Actor: "user:al"}, ""},
		{"action prefix", AuditFilter{Action: "POST /api/v1/meters/"}, "3 2"},
		{"target", AuditFilter{Target: "T-1"}, "6 1"},
		{"together", AuditFilter{Actor: "user:alice", Action: "POST /api/v1/accounts/", From: t0.Add(time.Minute)}, "6"},
		{"limit", AuditFilter{Limit: 2}, "6 5"},
		{"before", AuditFilter{Before: 5, Limit: 2}, "4 3"},
		{"before the first", AuditFilter{Before: 1}, ""},
		{"before past the end", AuditFilter{Before: 100}, "6 5 4 3 2 1"},
		{"before with a filter", AuditFilter{Before: 6, Actor: "user:alice"}, "5 3 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.AuditRecords(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []string
			for _, r := range got {
				seqs = append(seqs, fmt.Sprint(r.Seq))
			}
			if s := strings.Join(seqs, " "); s != tt.want {
				t.Errorf("AuditRecords(%+v) = %q; want %q", tt.f, s, tt.want)
			}
		})
	}
}

// Paging through a log longer than the largest page visits every record
// once, newest first; a limit past MaxAuditLimit is cut to it.
func TestAuditRecords_Paging(t *testing.T) {
	db, _ := openTemp(t)
	const n = MaxAuditLimit + 150
	for i := 0; i < n; i++ {
		appendAudit(t, db, auditAt(t0.Add(time.Duration(i)*time.Second), "user:alice", "x", ""))
	}
	first, err := db.AuditRecords(AuditFilter{Limit: 5 * MaxAuditLimit})
	if err != nil || len(first) != MaxAuditLimit {
		t.Fatalf("a page asking for %d = %d records, %v; want %d", 5*MaxAuditLimit, len(first), err, MaxAuditLimit)
	}
	if def, _ := db.AuditRecords(AuditFilter{}); len(def) != DefaultAuditLimit {
		t.Errorf("default page = %d records; want %d", len(def), DefaultAuditLimit)
	}
	want := uint64(n)
	for before := uint64(0); ; {
		page, err := db.AuditRecords(AuditFilter{Before: before, Limit: 400})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.Seq != want {
				t.Fatalf("paging: got record %d; want %d", r.Seq, want)
			}
			want--
		}
		before = page[len(page)-1].Seq
	}
	if want != 0 {
		t.Errorf("paging stopped before record %d", want)
	}
}

// Appends from many goroutines at once stay one contiguous chain.
func TestAppendAudit_Concurrent(t *testing.T) {
	db, _ := openTemp(t)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := db.AppendAudit(auditAt(t0, fmt.Sprintf("user:%d", w), "x", fmt.Sprint(i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkChain(t, db, workers*each)
}

// A write the store refuses is refused for the audit log alike: after the
// file was deleted from its path, ErrUnavailable, and nothing is appended.
func TestAppendAudit_FileDeleted(t *testing.T) {
	db, path := openTemp(t)
	appendAudit(t, db, auditAt(t0, "user:alice", "x", ""))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAudit(auditAt(t0, "user:alice", "y", "")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("AppendAudit after the file was deleted = %v; want ErrUnavailable", err)
	}
	checkChain(t, db, 1) // reads go on from the open file
}

// TestAppendAudit_NoSpace fills the disk for real, as TestDB_Update_NoSpace
// does: the append fails with ErrNoSpace, Health fails, nothing of it is
// kept (not even its sequence number); with space back the next record
// follows the last one kept, and the chain is whole.
func TestAppendAudit_NoSpace(t *testing.T) {
	if !inChild(t, "MALLGRID_TEST_AUDIT_FSIZE_CHILD") {
		return
	}
	db, path := openTemp(t)
	r1 := appendAudit(t, db, auditAt(t0, "user:alice", "x", ""))
	pageSize := uint64(db.bolt.Info().PageSize)
	restore := setFileSizeLimit(t, 2*pageSize) // the two meta pages only
	_, err := db.AppendAudit(auditAt(t0, "user:alice", "lost", ""))
	if !errors.Is(err, ErrNoSpace) {
		restore()
		t.Fatalf("AppendAudit on a full disk = %v; want ErrNoSpace", err)
	}
	if err := db.Health(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Health on a full disk = %v; want ErrNoSpace", err)
	}
	restore()
	r2 := appendAudit(t, db, auditAt(t0, "user:alice", "kept", ""))
	if r2.Seq != 2 || r2.Prev != r1.Hash {
		t.Errorf("after space came back: Seq %d, Prev %s; want 2 after %s", r2.Seq, r2.Prev, r1.Hash)
	}
	if err := db.Health(); err != nil {
		t.Errorf("Health after a write succeeded = %v", err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after the full disk: %v", err)
	}
	defer db.Close()
	checkChain(t, db, 2)
	got, err := db.AuditRecords(AuditFilter{})
	if err != nil || len(got) != 2 || got[0].Action != "kept" || got[1].Action != "x" {
		t.Errorf("records = %+v, %v; want x then kept, nothing of the lost one", got, err)
	}
}

// auditTamper edits the audit bucket of the file at path behind the
// store's back.
func auditTamper(t *testing.T, path string, edit func(b *bolt.Bucket) error) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(func(tx *bolt.Tx) error { return edit(tx.Bucket(bucketAudit)) }); err != nil {
		t.Fatal(err)
	}
}

func auditKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// rewrite decodes record seq, edits it and stores it back.
func rewrite(b *bolt.Bucket, seq uint64, edit func(r *AuditRecord)) error {
	var r AuditRecord
	if err := json.Unmarshal(b.Get(auditKey(seq)), &r); err != nil {
		return err
	}
	edit(&r)
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(auditKey(seq), v)
}

// Every way of changing the log behind the store's back breaks the chain
// at the record it touched, and says how.
func TestCheckAuditChain_FindsTampering(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(b *bolt.Bucket) error
		seq     uint64
		problem string
	}{
		{"actor edited", func(b *bolt.Bucket) error {
			return rewrite(b, 3, func(r *AuditRecord) { r.Actor = "user:mallory" })
		}, 3, "it was changed"},
		{"hash recomputed after an edit", func(b *bolt.Bucket) error {
			return rewrite(b, 2, func(r *AuditRecord) { r.Reason = "nothing to see"; r.Hash = AuditHash(*r) })
		}, 3, "a record before it was changed"},
		{"first record's Prev", func(b *bolt.Bucket) error {
			return rewrite(b, 1, func(r *AuditRecord) { r.Prev = strings.Repeat("1", 64); r.Hash = AuditHash(*r) })
		}, 1, "the first record names"},
		{"record deleted", func(b *bolt.Bucket) error { return b.Delete(auditKey(2)) }, 3, "record 2 is missing"},
		{"last record deleted", func(b *bolt.Bucket) error { return b.Delete(auditKey(4)) }, 4, "numbered 4 records"},
		{"record added", func(b *bolt.Bucket) error {
			var r AuditRecord
			_ = json.Unmarshal(b.Get(auditKey(4)), &r)
			r.Prev, r.Seq, r.Action = r.Hash, 5, "forged"
			r.Hash = AuditHash(r)
			v, _ := json.Marshal(r)
			return b.Put(auditKey(5), v)
		}, 5, "added behind its back"},
		{"two swapped", func(b *bolt.Bucket) error {
			v2, v3 := append([]byte(nil), b.Get(auditKey(2))...), append([]byte(nil), b.Get(auditKey(3))...)
			if err := b.Put(auditKey(2), v3); err != nil {
				return err
			}
			return b.Put(auditKey(3), v2)
		}, 2, "holds record 3"},
		{"unreadable", func(b *bolt.Bucket) error { return b.Put(auditKey(2), []byte("{")) }, 2, "cannot be read"},
		{"odd key", func(b *bolt.Bucket) error { return b.Put([]byte("zz"), []byte("{}")) }, 5, "a key of 2 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, path := openTemp(t)
			for i := 0; i < 4; i++ {
				appendAudit(t, db, auditAt(t0.Add(time.Duration(i)*time.Minute), "user:alice", "x", fmt.Sprint(i)))
			}
			checkChain(t, db, 4)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			auditTamper(t, path, tt.edit)
			db, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			c, err := db.CheckAuditChain()
			if err != nil {
				t.Fatal(err)
			}
			if fault := c.Fault; c.Last != "" || fault == nil || fault.Seq != tt.seq || !strings.Contains(fault.Problem, tt.problem) {
				t.Errorf("CheckAuditChain = %+v; want record %d: …%s…, and no last hash", c, tt.seq, tt.problem)
			}
		})
	}
}
