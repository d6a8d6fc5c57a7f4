package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func topUp(account, ref string, amount billing.Money) Entry {
	return Entry{Account: account, Amount: amount, Ref: ref, Channel: "cash", Time: t0, Actor: "ann"}
}

func TestPostTopUp_OncePerReference(t *testing.T) {
	db, _ := openTemp(t)
	first, existing, err := db.PostTopUp(topUp("T-1", "PAY-1", 100*billing.Yuan))
	if err != nil || existing || first.Balance != 100*billing.Yuan || first.ID == 0 {
		t.Fatalf("first top-up = %+v, %v, %v", first, existing, err)
	}
	again, existing, err := db.PostTopUp(topUp("T-1", "PAY-1", 100*billing.Yuan))
	if err != nil || !existing || again.ID != first.ID {
		t.Errorf("repeated reference = %+v, existing %v, %v; want the original entry", again, existing, err)
	}
	if _, _, err := db.PostTopUp(topUp("T-2", "PAY-1", 100*billing.Yuan)); !errors.Is(err, ErrRefConflict) {
		t.Errorf("reference reused for another account: err = %v; want ErrRefConflict", err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 99*billing.Yuan)); !errors.Is(err, ErrRefConflict) {
		t.Errorf("reference reused for another amount: err = %v; want ErrRefConflict", err)
	}
	acct, err := db.Account("T-1")
	if err != nil || acct.Balance != 100*billing.Yuan || acct.Entries != 1 {
		t.Errorf("account after one top-up sent three times = %+v, %v; want 100.00 and one entry", acct, err)
	}
	for _, bad := range []Entry{topUp("T-1", "PAY-9", 0), topUp("T-1", "PAY-9", -billing.Yuan), topUp("T-1", "", billing.Yuan), topUp("", "PAY-9", billing.Yuan)} {
		if _, _, err := db.PostTopUp(bad); !errors.Is(err, ErrBadEntry) {
			t.Errorf("PostTopUp(%+v): err = %v; want ErrBadEntry", bad, err)
		}
	}
}

// Concurrent deliveries of one payment credit it once.
func TestPostTopUp_ConcurrentDuplicates(t *testing.T) {
	db, _ := openTemp(t)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := db.PostTopUp(topUp("T-1", "PAY-X", 50*billing.Yuan)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	acct, _ := db.Account("T-1")
	if acct.Balance != 50*billing.Yuan || acct.Entries != 1 {
		t.Errorf("16 deliveries of one payment: balance %s, %d entries; want 50.00, 1", acct.Balance, acct.Entries)
	}
}

func TestCommitCycle_ChargesAndStateTogether(t *testing.T) {
	db, path := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 10*billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	charge := Entry{Account: "T-1", Kind: Charge, Amount: -152 * billing.Fen, Time: t0, Meter: "M-1", FromWh: 1000, ToWh: 2520, Wh: 1520, Window: "flat", UnitPrice: billing.Price(billing.Yuan)}
	_, err := db.CommitCycle(Cycle{Charges: []Entry{charge}, MeterState: map[string][]byte{"M-1": []byte(`{"baseline_wh":2520}`)}})
	if err != nil {
		t.Fatal(err)
	}
	// A cycle that fails part-way leaves no charge and no state behind.
	bad := Cycle{Charges: []Entry{charge, {Account: "", Kind: Charge, Amount: -1}}, MeterState: map[string][]byte{"M-1": []byte(`{"baseline_wh":9999}`)}}
	if _, err := db.CommitCycle(bad); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("cycle with a bad charge: err = %v; want ErrBadEntry", err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	acct, _ := db.Account("T-1")
	if acct.Balance != 10*billing.Yuan-152*billing.Fen || acct.Entries != 2 {
		t.Errorf("account = %+v; want 8.48 after one charge", acct)
	}
	states, err := db.MeterStates()
	if err != nil || string(states["M-1"]) != `{"baseline_wh":2520}` {
		t.Errorf("meter state = %q, %v; want the committed one", states["M-1"], err)
	}
	entries, err := db.Entries("T-1", 0, 10)
	if err != nil || len(entries) != 2 || entries[0].Kind != Charge || entries[0].Balance != acct.Balance || entries[1].Kind != TopUp {
		t.Errorf("entries newest first = %+v, %v", entries, err)
	}
	older, err := db.Entries("T-1", entries[0].ID, 10)
	if err != nil || len(older) != 1 || older[0].ID != entries[1].ID {
		t.Errorf("page before %d = %+v, %v", entries[0].ID, older, err)
	}
}

func TestPostEntry_AdjustmentAndReversal(t *testing.T) {
	db, _ := openTemp(t)
	top, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 20*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := db.PostEntry(Entry{Account: "T-1", Kind: Reversal, Amount: -top.Amount, Reverses: top.ID, Time: t0, Actor: "ann", Note: "cheque bounced"})
	if err != nil || rev.Balance != 0 {
		t.Errorf("reversal = %+v, %v; want balance 0", rev, err)
	}
	if _, err := db.PostEntry(topUp("T-1", "PAY-2", billing.Yuan)); !errors.Is(err, ErrBadEntry) {
		t.Errorf("a top-up through PostEntry: err = %v; want ErrBadEntry", err)
	}
	// A correction under a reference is kept once per reference by
	// PostCorrection; PostEntry would store it outside the index.
	if _, err := db.PostEntry(Entry{Account: "T-1", Kind: Adjustment, Amount: billing.Yuan, Time: t0, Actor: "ann", Note: "goodwill", Ref: "ADJ-1"}); !errors.Is(err, ErrBadEntry) {
		t.Errorf("an adjustment under a reference through PostEntry: err = %v; want ErrBadEntry", err)
	}
	var n int
	if err := db.EachEntry(func(Entry) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("EachEntry saw %d entries, %v; want 2 (the reversed top-up stays)", n, err)
	}
}

// A version-1 file (readings only) is upgraded in place and keeps its data.
func TestOpen_MigratesSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		latest, _ := tx.CreateBucket(bucketLatest)
		if _, err := tx.CreateBucket(bucketIntervals); err != nil {
			return err
		}
		if err := latest.Put([]byte("M-1"), []byte(`{"meter":"M-1","import_wh":42}`)); err != nil {
			return err
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema-1 file: %v", err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(); v != SchemaVersion {
		t.Errorf("schema after upgrade = %d; want %d", v, SchemaVersion)
	}
	latest, err := db.LatestReadings()
	if err != nil || latest["M-1"].ImportWh != 42 {
		t.Errorf("reading kept through the upgrade = %+v, %v", latest["M-1"], err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Errorf("ledger after upgrade: %v", err)
	}
}

func TestControl_PersistsWithEvents(t *testing.T) {
	db, path := openTemp(t)
	evs, err := db.PutControl(map[string][]byte{"meter/M-1": []byte(`{"desired":"open"}`)}, Event{Kind: "cutoff_scheduled", Tenant: "T-1", Text: "cut-off at 10:00"})
	if err != nil || len(evs) != 1 || evs[0].ID == 0 {
		t.Fatalf("PutControl = %+v, %v", evs, err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Controls()
	if err != nil || string(got["meter/M-1"]) != `{"desired":"open"}` {
		t.Errorf("Controls after reopen = %q, %v", got, err)
	}
	last, err := db.LastEvents(5)
	if err != nil || len(last) != 1 || last[0].Kind != "cutoff_scheduled" {
		t.Errorf("LastEvents = %+v, %v", last, err)
	}
}
