package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

func correction(kind Kind, account, ref, reason string, amount billing.Money, reverses uint64) Entry {
	return Entry{Account: account, Kind: kind, Amount: amount, Reverses: reverses, Ref: ref, Note: reason, Actor: "fay", Time: t0}
}

// Receipt numbers follow one another over the site's accounts; a repeated
// reference gets none, and a top-up refused inside its transaction gives
// its number back; the sequence goes on after a reopen.
func TestPostTopUp_ReceiptNumbers(t *testing.T) {
	db, path := openTemp(t)
	var got []uint64
	for _, tu := range []Entry{topUp("T-1", "PAY-1", billing.Yuan), topUp("T-2", "PAY-2", billing.Yuan), topUp("T-1", "PAY-1", billing.Yuan)} {
		e, _, err := db.PostTopUp(tu)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Receipt)
	}
	if want := []uint64{1, 2, 1}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("receipts of PAY-1, PAY-2, PAY-1 again = %v; want %v", got, want)
	}
	// Refused after its number was taken: the balance would pass MaxMoney.
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-BIG", billing.MaxMoney)); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("a top-up past MaxMoney: %v; want ErrBadEntry", err)
	}
	db.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, _, err := db.PostTopUp(topUp("T-3", "PAY-3", billing.Yuan))
	if err != nil || e.Receipt != 3 || ReceiptNumber(e.Receipt) != "R00000003" {
		t.Errorf("next top-up after a refused one and a reopen: receipt %d (%s), %v; want 3, R00000003", e.Receipt, ReceiptNumber(e.Receipt), err)
	}
	ix, err := db.Corrections()
	if err != nil || ix.LastReceipt != 3 || len(ix.Receipts) != 3 || ix.Receipts[3] != e.ID {
		t.Errorf("index = %+v, %v; want numbers 1..3, 3 → entry %d", ix, err, e.ID)
	}
}

func TestPostCorrection_Reversal(t *testing.T) {
	db, _ := openTemp(t)
	top, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 20*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := db.PostTopUp(topUp("T-2", "PAY-2", 5*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	rev, existing, err := db.PostCorrection(correction(Reversal, "T-1", "REV-1", "cheque bounced", 0, top.ID))
	if err != nil || existing || rev.Amount != -20*billing.Yuan || rev.Balance != 0 || rev.Reverses != top.ID || rev.Receipt != 0 {
		t.Fatalf("reversal = %+v, %v, %v; want -20.00, balance 0", rev, existing, err)
	}
	again, existing, err := db.PostCorrection(correction(Reversal, "T-1", "REV-1", "cheque bounced", 0, top.ID))
	if err != nil || !existing || again.ID != rev.ID {
		t.Errorf("the same reversal again = %+v, %v, %v; want the first, existing", again, existing, err)
	}
	for _, tt := range []struct {
		name string
		e    Entry
		want error
	}{
		{"reversed twice", correction(Reversal, "T-1", "REV-2", "again", 0, top.ID), ErrReversed},
		{"a reversal reversed", correction(Reversal, "T-1", "REV-3", "undo", 0, rev.ID), ErrNotReversible},
		{"another account's entry", correction(Reversal, "T-1", "REV-4", "wrong", 0, other.ID), ErrNoEntry},
		{"no such entry", correction(Reversal, "T-1", "REV-5", "wrong", 0, 999), ErrNoEntry},
		{"the wrong amount", correction(Reversal, "T-2", "REV-6", "wrong", billing.Yuan, other.ID), ErrBadEntry},
		{"same reference, another reason", correction(Reversal, "T-1", "REV-1", "bounced", 0, top.ID), ErrRefConflict},
		{"same reference, another entry", correction(Reversal, "T-2", "REV-1", "cheque bounced", 0, other.ID), ErrRefConflict},
		{"a payment's reference", correction(Reversal, "T-2", "PAY-2", "refund", 0, other.ID), ErrRefConflict},
		{"no reason", correction(Reversal, "T-2", "REV-7", "", 0, other.ID), ErrBadEntry},
		{"no entry named", correction(Reversal, "T-2", "REV-8", "x", 0, 0), ErrBadEntry},
	} {
		if _, _, err := db.PostCorrection(tt.e); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v; want %v", tt.name, err, tt.want)
		}
	}
	// An allocation's share is undone with its posting, not alone.
	share, err := db.PostEntry(Entry{Account: "T-2", Kind: Allocation, Amount: -billing.Yuan, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostCorrection(correction(Reversal, "T-2", "REV-9", "wrong share", 0, share.ID)); !errors.Is(err, ErrNotReversible) {
		t.Errorf("a reversal of an allocation's share: %v; want ErrNotReversible", err)
	}
	// Through PostEntry the same rules hold.
	if _, err := db.PostEntry(Entry{Account: "T-1", Kind: Reversal, Amount: 20 * billing.Yuan, Reverses: rev.ID, Time: t0}); !errors.Is(err, ErrNotReversible) {
		t.Errorf("PostEntry of a reversal of a reversal: %v; want ErrNotReversible", err)
	}
	if _, err := db.PostEntry(Entry{Account: "T-1", Kind: Reversal, Amount: -20 * billing.Yuan, Reverses: top.ID, Time: t0}); !errors.Is(err, ErrReversed) {
		t.Errorf("PostEntry of a second reversal: %v; want ErrReversed", err)
	}
	// A correction's reference is no payment's.
	if _, _, err := db.PostTopUp(topUp("T-1", "REV-1", 20*billing.Yuan)); !errors.Is(err, ErrRefConflict) {
		t.Errorf("a top-up under a correction's reference: %v; want ErrRefConflict", err)
	}
	by, err := db.ReversedBy([]uint64{top.ID, other.ID, rev.ID})
	if err != nil || len(by) != 1 || by[top.ID] != rev.ID {
		t.Errorf("ReversedBy = %v, %v; want only %d → %d", by, err, top.ID, rev.ID)
	}
	for id, want := range map[string]billing.Money{"T-1": 0, "T-2": 4 * billing.Yuan} {
		if a, err := db.Account(id); err != nil || a.Balance != want {
			t.Errorf("%s = %+v, %v; want balance %s (the refusals changed nothing)", id, a, err, want)
		}
	}
}

func TestPostCorrection_Adjustment(t *testing.T) {
	db, _ := openTemp(t)
	credit, existing, err := db.PostCorrection(correction(Adjustment, "T-1", "ADJ-1", "meter test refund", 5*billing.Yuan, 0))
	if err != nil || existing || credit.Balance != 5*billing.Yuan {
		t.Fatalf("credit = %+v, %v, %v", credit, existing, err)
	}
	debit, _, err := db.PostCorrection(correction(Adjustment, "T-1", "ADJ-2", "unbilled repair", -1230*billing.Fen, 0))
	if err != nil || debit.Balance != 5*billing.Yuan-1230*billing.Fen {
		t.Fatalf("debit = %+v, %v", debit, err)
	}
	if _, _, err := db.PostCorrection(correction(Adjustment, "T-1", "ADJ-1", "meter test refund", 6*billing.Yuan, 0)); !errors.Is(err, ErrRefConflict) {
		t.Errorf("same reference, another amount: %v; want ErrRefConflict", err)
	}
	if _, _, err := db.PostCorrection(correction(Reversal, "T-1", "ADJ-1", "meter test refund", 0, credit.ID)); !errors.Is(err, ErrRefConflict) {
		t.Errorf("same reference, a reversal: %v; want ErrRefConflict", err)
	}
	for _, bad := range []Entry{
		correction(Adjustment, "T-1", "ADJ-3", "nothing", 0, 0),
		correction(Adjustment, "T-1", "", "no ref", billing.Yuan, 0),
		correction(Adjustment, "T-1", "ADJ-4", "", billing.Yuan, 0),
		correction(Adjustment, "", "ADJ-5", "x", billing.Yuan, 0),
		correction(TopUp, "T-1", "ADJ-6", "x", billing.Yuan, 0),
		{Account: "T-1", Kind: Adjustment, Amount: billing.Yuan, Ref: "ADJ-7", Note: "x", Time: t0}, // who?
	} {
		if _, _, err := db.PostCorrection(bad); !errors.Is(err, ErrBadEntry) {
			t.Errorf("PostCorrection(%+v): %v; want ErrBadEntry", bad, err)
		}
	}
	// A debit adjustment reversed: a credit back.
	rev, _, err := db.PostCorrection(correction(Reversal, "T-1", "REV-1", "posted to the wrong tenant", 0, debit.ID))
	if err != nil || rev.Amount != 1230*billing.Fen || rev.Balance != 5*billing.Yuan {
		t.Errorf("reversal of the debit = %+v, %v; want +12.30, balance 5.00", rev, err)
	}
}

// A schema-7 file's reversals are indexed by the upgrade: none of them is
// reversed again; receipt numbers start above every entry id, the numbers
// the receipts of its top-ups were printed with.
func TestOpen_MigratesSchema7(t *testing.T) {
	db, path := openTemp(t)
	top, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 20*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEntry(Entry{Account: "T-1", Kind: Reversal, Amount: -top.Amount, Reverses: top.ID, Time: t0, Actor: "ann", Note: "bounced"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Back to what a schema-7 gateway left: no receipts, no index.
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketReceipts, bucketReversed} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 7))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema-7 file: %v", err)
	}
	defer db.Close()
	if _, _, err := db.PostCorrection(correction(Reversal, "T-1", "REV-9", "again", 0, top.ID)); !errors.Is(err, ErrReversed) {
		t.Errorf("reversal of an entry reversed before the upgrade: %v; want ErrReversed", err)
	}
	e, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan))
	if err != nil || e.Receipt != 3 || e.ID != 3 {
		t.Errorf("first top-up after the upgrade: entry %d, receipt %d, %v; want entry 3, receipt 3 (entries 1 and 2 before)", e.ID, e.Receipt, err)
	}
	if ix, err := db.Corrections(); err != nil || ix.Legacy != 2 || ix.LastReceipt != 3 || len(ix.Receipts) != 1 {
		t.Errorf("index after the upgrade = %+v, %v; want legacy 2, last 3, one receipt", ix, err)
	}
}

// The upgrade to schema 8 decodes only the entries whose bytes hold
// "reversal": an entry that is not a reversal is not read at all (here one
// that could not be decoded; before, every entry of a ledger of millions
// was), and an adjustment whose reason is "reversal" is read and not
// indexed.
func TestOpen_MigratesSchema7_ReadsOnlyReversals(t *testing.T) {
	db, path := openTemp(t)
	top, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 20*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := db.PostEntry(Entry{Account: "T-1", Kind: Reversal, Amount: -top.Amount, Reverses: top.ID, Time: t0, Actor: "ann", Note: "bounced"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEntry(Entry{Account: "T-1", Kind: Adjustment, Amount: billing.Yuan, Time: t0, Actor: "ann", Note: "reversal"}); err != nil {
		t.Fatal(err)
	}
	charge, err := db.PostEntry(Entry{Account: "T-1", Kind: Charge, Amount: -billing.Yuan, Time: t0, Meter: "M-1"})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketReceipts, bucketReversed} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketEntries).Put(binary.BigEndian.AppendUint64(nil, charge.ID), []byte(`{"kind":"charge",`)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 7))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema-7 file: %v", err)
	}
	defer db.Close()
	if ix, err := db.Corrections(); err != nil || len(ix.Reversed) != 1 || ix.Reversed[top.ID] != rev.ID {
		t.Errorf("reversals indexed by the upgrade = %v, %v; want entry %d reversed by %d alone", ix.Reversed, err, top.ID, rev.ID)
	}
}

func TestEntry_ReceiptNo(t *testing.T) {
	for _, tt := range []struct {
		e    Entry
		want string
	}{
		{Entry{ID: 42, Kind: TopUp, Receipt: 7}, "R00000007"},
		{Entry{ID: 42, Kind: TopUp}, "R00000042"}, // from before numbering: its entry id, as printed then
		{Entry{ID: 42, Kind: Adjustment}, ""},
		{Entry{ID: 123456789, Kind: TopUp, Receipt: 123456789}, "R123456789"},
	} {
		if got := tt.e.ReceiptNo(); got != tt.want {
			t.Errorf("%+v.ReceiptNo() = %q; want %q", tt.e, got, tt.want)
		}
	}
}

// Concurrent reversals of one entry, under different references: one is
// posted, every other refused with ErrReversed; the same reference sent
// concurrently is posted once and answered with it.
func TestPostCorrection_ConcurrentReversals(t *testing.T) {
	db, _ := openTemp(t)
	top, _, err := db.PostTopUp(topUp("T-1", "PAY-1", 50*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	posted, refused, same := 0, 0, map[uint64]int{}
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := fmt.Sprintf("REV-%d", i%4) // four goroutines share each reference
			e, existing, err := db.PostCorrection(correction(Reversal, "T-1", ref, "bounced", 0, top.ID))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				same[e.ID]++
				if !existing {
					posted++
				}
			case errors.Is(err, ErrReversed):
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	acct, _ := db.Account("T-1")
	if posted != 1 || len(same) != 1 || acct.Balance != 0 || acct.Entries != 2 {
		t.Errorf("16 reversals of one entry: %d posted, %d refused, answers %v; balance %s over %d entries; want one reversal",
			posted, refused, same, acct.Balance, acct.Entries)
	}
}
