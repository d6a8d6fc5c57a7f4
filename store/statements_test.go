package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestDB_PutStatement_Once(t *testing.T) {
	db, _ := openTemp(t)
	at := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	first := StoredStatement{Tenant: "T-1", Month: "2026-11", Generated: at, Figures: json.RawMessage(`{"closing":"1.00"}`)}
	got, existing, err := db.PutStatement(first)
	if err != nil || existing {
		t.Fatalf("first: existing %v, %v", existing, err)
	}
	// A second run (after a restart, say) with other figures keeps the one
	// issued.
	again := first
	again.Generated, again.Figures = at.Add(time.Hour), json.RawMessage(`{"closing":"2.00"}`)
	got, existing, err = db.PutStatement(again)
	if err != nil || !existing || !bytes.Equal(got.Figures, first.Figures) || !got.Generated.Equal(at) {
		t.Fatalf("second: got %s at %v, existing %v, %v; want the first kept", got.Figures, got.Generated, existing, err)
	}
	stored, err := db.Statement("T-1", "2026-11")
	if err != nil || !bytes.Equal(stored.Figures, first.Figures) {
		t.Fatalf("Statement: %s, %v", stored.Figures, err)
	}
	if _, err := db.Statement("T-1", "2026-10"); !errors.Is(err, ErrNoStatement) {
		t.Errorf("a month not stored: %v; want ErrNoStatement", err)
	}
	for _, bad := range []StoredStatement{{Month: "2026-11", Figures: first.Figures}, {Tenant: "T-1", Month: "2026-1", Figures: first.Figures},
		{Tenant: "T-1", Month: "2026-11"}, {Tenant: "T\x001", Month: "2026-11", Figures: first.Figures}} {
		if _, _, err := db.PutStatement(bad); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%+v: %v; want ErrBadEntry", bad, err)
		}
	}
}

func TestDB_StatementMonths_OneTenant(t *testing.T) {
	db, _ := openTemp(t)
	for _, s := range []struct{ tenant, month string }{{"T-1", "2026-11"}, {"T-10", "2026-09"}, {"T-1", "2026-09"}, {"T-1", "2026-10"}} {
		if _, _, err := db.PutStatement(StoredStatement{Tenant: s.tenant, Month: s.month, Figures: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.StatementMonths("T-1")
	if want := []string{"2026-09", "2026-10", "2026-11"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("T-1: %v, %v; want %v (not T-10's)", got, err, want)
	}
	if ok, err := db.HasStatement("T-10", "2026-09"); !ok || err != nil {
		t.Errorf("HasStatement T-10 2026-09 = %v, %v", ok, err)
	}
	if ok, _ := db.HasStatement("T-10", "2026-10"); ok {
		t.Error("HasStatement T-10 2026-10 = true")
	}
}

// The link key is made once and kept: links stay valid after a restart.
func TestDB_StatementKey_Kept(t *testing.T) {
	db, path := openTemp(t)
	key, err := db.StatementKey()
	if err != nil || len(key) != StatementKeyLen {
		t.Fatalf("key %x, %v", key, err)
	}
	if again, _ := db.StatementKey(); !bytes.Equal(again, key) {
		t.Fatal("a second call made another key")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if again, _ := db.StatementKey(); !bytes.Equal(again, key) {
		t.Error("the key changed across a reopen")
	}
}

// A file that never stored a statement has no statements bucket, and a
// read-only open (verify, backups) reads it as having none.
func TestDB_Statements_ReadOnlyWithoutBucket(t *testing.T) {
	db, path := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if months, err := ro.StatementMonths("T-1"); err != nil || len(months) != 0 {
		t.Errorf("months %v, %v", months, err)
	}
	if _, err := ro.Statement("T-1", "2026-11"); !errors.Is(err, ErrNoStatement) {
		t.Errorf("Statement: %v; want ErrNoStatement", err)
	}
}

func TestDB_FirstEntry(t *testing.T) {
	db, _ := openTemp(t)
	if _, ok, err := db.FirstEntry("T-1"); ok || err != nil {
		t.Fatalf("no ledger: ok %v, %v", ok, err)
	}
	at := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	for i, acct := range []string{"T-10", "T-1", "T-1"} {
		if _, _, err := db.PostTopUp(Entry{Time: at.Add(time.Duration(i) * time.Hour), Account: acct, Amount: 1_000_000, Ref: fmt.Sprint("R-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	e, ok, err := db.FirstEntry("T-1")
	if err != nil || !ok || e.ID != 2 || !e.Time.Equal(at.Add(time.Hour)) {
		t.Errorf("T-1's first: %+v %v %v; want entry 2", e, ok, err)
	}
}

func TestDB_EachEntryAfter(t *testing.T) {
	db, _ := openTemp(t)
	for i := range 5 {
		if _, _, err := db.PostTopUp(Entry{Time: time.Unix(int64(i), 0), Account: "T-1", Amount: 1_000_000, Ref: fmt.Sprint("A-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		after uint64
		want  []uint64
	}{{0, []uint64{1, 2, 3, 4, 5}}, {3, []uint64{4, 5}}, {5, nil}, {99, nil}} {
		var got []uint64
		if err := db.EachEntryAfter(c.after, func(e Entry) error { got = append(got, e.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("after %d: %v; want %v", c.after, got, c.want)
		}
	}
}

// A new tenant's first two entries out of time order: a top-up at
// 00:00:00.05 posted while the charge dated by the reading at 23:59:59.9
// waited for the end of its bus cycle. The first entry is the charge, in
// November — the lowest id's month (December) would skip November.
func TestDB_FirstEntry_EarliestDated(t *testing.T) {
	db, _ := openTemp(t)
	loc := time.FixedZone("CST", 8*3600)
	topUp := time.Date(2026, 12, 1, 0, 0, 0, 50_000_000, loc)
	read := time.Date(2026, 11, 30, 23, 59, 59, 900_000_000, loc)
	if _, _, err := db.PostTopUp(Entry{Time: topUp, Account: "T-9", Amount: 100_000_000, Ref: "R-1"}); err != nil {
		t.Fatal(err)
	}
	from := read.Add(-IntervalLength)
	if _, err := db.CommitCycle(Cycle{Charges: []Entry{{Time: read, Account: "T-9", Kind: Charge, Amount: -1_000_000, Meter: "M-9", Wh: 1000, From: &from, To: &read}}}); err != nil {
		t.Fatal(err)
	}
	e, ok, err := db.FirstEntry("T-9")
	if err != nil || !ok || e.Kind != Charge || !e.Time.Equal(read) {
		t.Errorf("first: %+v %v %v; want the charge dated %s", e, ok, err, read)
	}
}
