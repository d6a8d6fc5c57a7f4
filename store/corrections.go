package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

var (
	// ErrNoEntry is returned by a reversal of an entry id that names no
	// entry of the account.
	ErrNoEntry = errors.New("store: no such entry in the account")
	// ErrNotReversible is returned by a reversal of a reversal: a reversal
	// is undone by posting the original again (a new top-up, an
	// adjustment), never by a chain of reversals whose meaning no one can
	// read off the ledger.
	ErrNotReversible = errors.New("store: a reversal cannot be reversed")
	// ErrReversed is returned by a reversal of an entry reversed before:
	// each entry is undone at most once, and the first reversal stands.
	ErrReversed = errors.New("store: entry already reversed")
)

// ReceiptNumber is how a top-up's receipt number is written: "R" and at
// least eight digits. Fixed width, so that numbers sort as text in a
// spreadsheet; the letter, so that it is never taken for an amount. It
// carries neither year nor site: the database is the site's, one sequence
// for its whole life, and a sequence restarting each year would give a
// number twice. A top-up from before schema 8 has no number of its own:
// its receipt was printed as ReceiptNumber of its entry id, and the
// sequence starts above every such id (CorrectionIndex.Legacy).
func ReceiptNumber(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("R%08d", n)
}

// ReceiptNo is a top-up's receipt number as it was printed: its own, or
// for a top-up credited before receipts were numbered, its entry id's
// (ReceiptNumber says why they never meet); "" for any other entry. Pages,
// statements and reports show this, so that a tenant's receipt is found by
// the number on it.
func (e Entry) ReceiptNo() string {
	switch {
	case e.Kind != TopUp:
		return ""
	case e.Receipt != 0:
		return ReceiptNumber(e.Receipt)
	}
	return ReceiptNumber(e.ID)
}

// PostCorrection posts finance's adjustment or reversal once per
// reference, in its own durable transaction. e.Ref, e.Note (the reason)
// and e.Actor are required. An adjustment is e.Amount, a credit or a
// debit, never zero. A reversal names e.Reverses, an earlier entry of
// e.Account that is not itself a reversal and was not reversed before; its
// amount is that entry's negated (e.Amount, if given, must be it). An
// allocation's entry is not reversed alone (ErrNotReversible): its posting
// is (ReverseAllocation).
//
// If e.Ref was used before, for a correction of the same account, kind,
// amount (or reversed entry) and reason, the original entry is returned
// with existing = true and nothing changes; any other use of the reference
// (a top-up, another correction) is ErrRefConflict. A reversal that breaks
// a rule is ErrNoEntry, ErrNotReversible or ErrReversed; an entry missing a
// field or beyond billing.MaxMoney is ErrBadEntry. Nothing changes on an
// error.
func (db *DB) PostCorrection(e Entry) (stored Entry, existing bool, err error) {
	if e.Kind != Adjustment && e.Kind != Reversal {
		return Entry{}, false, fmt.Errorf("%w: a correction is an adjustment or a reversal, not %q", ErrBadEntry, e.Kind)
	}
	if e.Account == "" || e.Ref == "" || e.Note == "" || e.Actor == "" {
		return Entry{}, false, fmt.Errorf("%w: a correction needs an account, a reference, a reason and who (%q, %q, %q, %q)",
			ErrBadEntry, e.Account, e.Ref, e.Note, e.Actor)
	}
	if e.Kind == Adjustment && (e.Amount == 0 || e.Reverses != 0) {
		return Entry{}, false, fmt.Errorf("%w: an adjustment is a credit or a debit of its own (amount %s, reverses %d)", ErrBadEntry, e.Amount, e.Reverses)
	}
	if e.Kind == Reversal && e.Reverses == 0 {
		return Entry{}, false, fmt.Errorf("%w: a reversal names the entry it reverses", ErrBadEntry)
	}
	e.Receipt, e.Channel = 0, ""
	err = db.update(func(tx *bolt.Tx) error {
		if id := tx.Bucket(bucketRefs).Get([]byte(e.Ref)); id != nil {
			prev, err := getEntry(tx, binary.BigEndian.Uint64(id))
			if err != nil {
				return err
			}
			if !sameCorrection(prev, e) {
				return fmt.Errorf("%w: %s was %s %s of %s (entry %d, %q)", ErrRefConflict, e.Ref, prev.Kind, prev.Amount, prev.Account, prev.ID, prev.Note)
			}
			stored, existing = prev, true
			return nil
		}
		if e.Kind == Reversal {
			// An allocation is one share of a posting: it is undone with
			// its posting (ReverseAllocation), all shares together, or the
			// posting would stand with a share gone.
			if orig, err := reversible(tx, e); err != nil {
				return err
			} else if orig.Kind == Allocation {
				return fmt.Errorf("%w: entry %d is a share of an allocation posting; reverse the posting", ErrNotReversible, orig.ID)
			}
		}
		var err error
		if stored, err = appendCorrection(tx, e); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).Put([]byte(e.Ref), binary.BigEndian.AppendUint64(nil, stored.ID))
	})
	return stored, existing, err
}

// sameCorrection reports whether prev, stored under a reference, is what e
// asks for again: a client's retry, not a second correction.
func sameCorrection(prev, e Entry) bool {
	if prev.Kind != e.Kind || prev.Account != e.Account || prev.Note != e.Note {
		return false
	}
	if e.Kind == Reversal {
		return prev.Reverses == e.Reverses && (e.Amount == 0 || e.Amount == prev.Amount)
	}
	return prev.Amount == e.Amount
}

// appendCorrection appends e, a reversal checked against its original and
// indexed, or any other entry, in tx.
func appendCorrection(tx *bolt.Tx, e Entry) (Entry, error) {
	if e.Kind != Reversal {
		return appendEntry(tx, e)
	}
	orig, err := reversible(tx, e)
	if err != nil {
		return Entry{}, err
	}
	e.Amount = -orig.Amount
	stored, err := appendEntry(tx, e)
	if err != nil {
		return Entry{}, err
	}
	key := binary.BigEndian.AppendUint64(nil, orig.ID)
	return stored, tx.Bucket(bucketReversed).Put(key, binary.BigEndian.AppendUint64(nil, stored.ID))
}

// reversible returns the entry reversal e undoes, if the store's rules let
// it: an entry of e's account, not a reversal, not reversed before, whose
// negation is e's amount when e gives one.
func reversible(tx *bolt.Tx, e Entry) (Entry, error) {
	key := binary.BigEndian.AppendUint64(nil, e.Reverses)
	if tx.Bucket(bucketEntries).Get(key) == nil {
		return Entry{}, fmt.Errorf("%w: entry %d of %s", ErrNoEntry, e.Reverses, e.Account)
	}
	orig, err := getEntry(tx, e.Reverses)
	if err != nil {
		return Entry{}, err
	}
	switch {
	case orig.Account != e.Account:
		return Entry{}, fmt.Errorf("%w: entry %d of %s (it is %s's)", ErrNoEntry, e.Reverses, e.Account, orig.Account)
	case orig.Kind == Reversal:
		return Entry{}, fmt.Errorf("%w: entry %d reverses entry %d", ErrNotReversible, orig.ID, orig.Reverses)
	case e.Amount != 0 && e.Amount != -orig.Amount:
		return Entry{}, fmt.Errorf("%w: a reversal of %s is %s, not %s", ErrBadEntry, orig.Amount, -orig.Amount, e.Amount)
	}
	if by := tx.Bucket(bucketReversed).Get(key); by != nil {
		return Entry{}, fmt.Errorf("%w: entry %d by entry %d", ErrReversed, orig.ID, binary.BigEndian.Uint64(by))
	}
	if orig.Amount < -billing.MaxMoney || orig.Amount > billing.MaxMoney {
		return Entry{}, fmt.Errorf("%w: entry %d's amount %s", ErrCorrupt, orig.ID, orig.Amount)
	}
	return orig, nil
}

// ReversedBy returns, for those of ids that were reversed, the id of the
// reversal that undid each.
func (db *DB) ReversedBy(ids []uint64) (map[uint64]uint64, error) {
	out := make(map[uint64]uint64)
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReversed)
		for _, id := range ids {
			if v := b.Get(binary.BigEndian.AppendUint64(nil, id)); len(v) == 8 {
				out[id] = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return out, err
}

// Entry returns the entry with id; ErrNoEntry if there is none.
func (db *DB) Entry(id uint64) (Entry, error) {
	var e Entry
	err := db.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEntries).Get(binary.BigEndian.AppendUint64(nil, id)) == nil {
			return fmt.Errorf("%w: entry %d", ErrNoEntry, id)
		}
		var err error
		e, err = getEntry(tx, id)
		return err
	})
	return e, err
}

// CorrectionIndex is the store's indexes of corrections, as verify reads
// them to hold against the entries.
type CorrectionIndex struct {
	Receipts    map[uint64]uint64 // receipt number → top-up entry id
	LastReceipt uint64            // the last number given (the sequence)
	// Legacy is the highest entry id when the database was upgraded to
	// schema 8 (0 for one made since): numbers up to it were the entry
	// ids of earlier top-ups' receipts, and the sequence starts after it.
	Legacy   uint64
	Reversed map[uint64]uint64 // reversed entry id → reversal entry id
	// Refs is the index that keeps a payment or a correction once per
	// reference: reference → the entry posted under it.
	Refs map[string]uint64
	Bad  []string // records that cannot be read
}

// Corrections returns the indexes of receipt numbers, reversals and
// references.
func (db *DB) Corrections() (CorrectionIndex, error) {
	ix := CorrectionIndex{Receipts: make(map[uint64]uint64), Reversed: make(map[uint64]uint64), Refs: make(map[string]uint64)}
	read := func(name string, b *bolt.Bucket, into map[uint64]uint64) error {
		return b.ForEach(func(k, v []byte) error {
			if string(k) == string(keyLegacyReceipts) && len(v) == 8 {
				ix.Legacy = binary.BigEndian.Uint64(v)
				return nil
			}
			if len(k) != 8 || len(v) != 8 {
				ix.Bad = append(ix.Bad, fmt.Sprintf("%s: record %x → %x is not two ids", name, k, v))
				return nil
			}
			into[binary.BigEndian.Uint64(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	}
	err := db.view(func(tx *bolt.Tx) error {
		receipts := tx.Bucket(bucketReceipts)
		ix.LastReceipt = receipts.Sequence()
		if err := read("receipts", receipts, ix.Receipts); err != nil {
			return err
		}
		if err := read("reversed", tx.Bucket(bucketReversed), ix.Reversed); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				ix.Bad = append(ix.Bad, fmt.Sprintf("topup_refs: reference %q → %x is not an entry id", k, v))
				return nil
			}
			ix.Refs[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return ix, err
}

// reversalJSON is the kind Reversal as every encoded reversal holds it.
var reversalJSON = []byte(`"` + string(Reversal) + `"`)

// keyLegacyReceipts, in the receipts bucket, holds CorrectionIndex.Legacy:
// 0 as a number key, a receipt number no top-up ever gets.
var keyLegacyReceipts = binary.BigEndian.AppendUint64(nil, 0)

// startReceipts starts the receipt numbers above every entry id given so
// far (the upgrade to schema 8).
func startReceipts(tx *bolt.Tx) error {
	last := tx.Bucket(bucketEntries).Sequence()
	receipts := tx.Bucket(bucketReceipts)
	if err := receipts.SetSequence(last); err != nil {
		return err
	}
	return receipts.Put(keyLegacyReceipts, binary.BigEndian.AppendUint64(nil, last))
}

// indexReversals indexes the reversals already in the ledger (the upgrade
// to schema 8); a second reversal of one entry, which the store now
// refuses, is left for verify to report. Only an entry whose bytes hold
// "reversal" (its kind as JSON writes it) is decoded: a ledger is charges
// by the million and reversals by the hundred, and decoding every entry
// made most of the upgrade's time.
func indexReversals(tx *bolt.Tx) error {
	idx := tx.Bucket(bucketReversed)
	return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
		if !bytes.Contains(v, reversalJSON) {
			return nil
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("entry %x: %w: %v", k, ErrCorrupt, err)
		}
		if e.Kind != Reversal || e.Reverses == 0 {
			return nil
		}
		key := binary.BigEndian.AppendUint64(nil, e.Reverses)
		if idx.Get(key) != nil {
			return nil
		}
		return idx.Put(key, binary.BigEndian.AppendUint64(nil, e.ID))
	})
}
