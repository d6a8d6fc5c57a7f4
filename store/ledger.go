package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

// Kind is what a ledger entry records.
type Kind string

// Entry kinds. Credits are positive amounts, debits negative.
const (
	TopUp      Kind = "topup"      // money paid in (cash, WeChat, Alipay, bank)
	Charge     Kind = "charge"     // energy used by the tenant's own meters
	Allocation Kind = "allocation" // the tenant's share of public-area energy
	Adjustment Kind = "adjustment" // an operator's correction, with a reason
	Reversal   Kind = "reversal"   // undoes one earlier entry, which stays
)

// Entry is one line of an account's ledger. Entries are never changed or
// deleted; a correction is a new entry.
type Entry struct {
	ID      uint64        `json:"id"` // one sequence over all accounts, in commit order
	Time    time.Time     `json:"time"`
	Account string        `json:"account"`
	Kind    Kind          `json:"kind"`
	Amount  billing.Money `json:"amount"`        // credit > 0, debit < 0
	Balance billing.Money `json:"balance_after"` // the account's balance with this entry

	// Source of a charge: the meter, the counter span it bills and the
	// counter chain that span is on (see Break), the time span the energy
	// was used in, the tariff window and the unit price.
	Meter     string        `json:"meter,omitempty"`
	Chain     int           `json:"chain,omitempty"`
	FromWh    int64         `json:"from_wh,omitempty"`
	ToWh      int64         `json:"to_wh,omitempty"`
	Wh        int64         `json:"wh,omitempty"`
	From      *time.Time    `json:"from,omitempty"`
	To        *time.Time    `json:"to,omitempty"`
	Window    string        `json:"window,omitempty"`
	UnitPrice billing.Price `json:"unit_price,omitempty"`

	// Source of a top-up, an adjustment or a reversal.
	// Ref is the payment's reference of a top-up, the request's of a
	// correction: one entry per reference, ever, over both.
	Ref      string `json:"ref,omitempty"`
	Channel  string `json:"channel,omitempty"` // cash | wechat | alipay | bank
	Reverses uint64 `json:"reverses,omitempty"`
	Actor    string `json:"actor,omitempty"` // who did it: an operator, a token's name, "gateway"
	// Note is a top-up's note, or a correction's reason.
	Note string `json:"note,omitempty"`
	// Receipt is a top-up's receipt number: one sequence for the site,
	// given in the top-up's transaction, so never skipped or given twice
	// (ReceiptNumber writes it). 0 for other entries, and for top-ups
	// credited before the gateway numbered receipts.
	Receipt uint64 `json:"receipt,omitempty"`
}

// Account is a tenant's prepaid account.
type Account struct {
	ID        string        `json:"id"`
	Balance   billing.Money `json:"balance"`
	Entries   int64         `json:"entries"`
	LastEntry uint64        `json:"last_entry"`
	Updated   time.Time     `json:"updated"`
}

var (
	// ErrRefConflict is returned when a payment reference already credited
	// is sent again for another account or amount: a duplicate delivery is
	// answered with the original entry; this is not a duplicate.
	ErrRefConflict = errors.New("store: payment reference already used for a different top-up")
	// ErrNoAccount is returned for an account that has no ledger yet.
	ErrNoAccount = errors.New("store: no such account")
	// ErrBadEntry is returned for an entry that breaks a ledger rule
	// (a top-up that is not a credit, an amount beyond billing.MaxMoney).
	ErrBadEntry = errors.New("store: entry refused")
)

// PostTopUp credits e.Amount to e.Account, once per payment reference: if
// e.Ref was credited before, the original entry is returned with
// existing = true and nothing changes (ErrRefConflict if that entry was for
// another account or amount). The entry is durable when PostTopUp returns.
func (db *DB) PostTopUp(e Entry) (stored Entry, existing bool, err error) {
	stored, _, existing, err = db.PostTopUpWithReceipt(e, nil)
	return stored, existing, err
}

// PostTopUpWithReceipt is PostTopUp that also stores, in the same
// transaction, the receipt event receipt makes of the stored entry (nil:
// none), so that a tenant's receipt can never be lost after the money is
// credited. A repeated reference stores no second receipt. Every top-up
// credited gets the site's next receipt number (Entry.Receipt), whether
// or not a receipt event is made; a repeated reference gets none.
func (db *DB) PostTopUpWithReceipt(e Entry, receipt func(Entry) Event) (stored Entry, event *Event, existing bool, err error) {
	return db.PostTopUpWith(e, TopUpOptions{Receipt: receipt})
}

// TopUpOptions is what PostTopUpWith stores with a top-up, in its
// transaction.
type TopUpOptions struct {
	// Receipt makes the receipt event of the stored entry; nil: none.
	Receipt func(Entry) Event
	// Invoice is the tenant's e-invoice request for the payment (Title,
	// TaxID, Email; the store fills in the rest); nil: none.
	Invoice *Invoice
}

// PostTopUpWith is PostTopUpWithReceipt that also stores opt.Invoice, the
// tenant's invoice request, with the top-up: both or neither. A request
// without a title is ErrBadEntry. A repeated reference for the same
// account and amount is the payment credited before, and is answered with
// its entry (existing) whatever the request: with the same request as the
// first (title, tax id, e-mail in any case) or none, nothing changes — a
// retry that leaves it out loses nothing, the first stands —; a request
// the first entry did not have is stored then, in this call's transaction
// (the money is already there: a payment entered at the till before the
// tenant asked for an invoice); and another request than the first is
// ErrInvoiceConflict, returned with the entry and existing, and nothing
// changes. Another account or amount is ErrRefConflict.
func (db *DB) PostTopUpWith(e Entry, opt TopUpOptions) (stored Entry, event *Event, existing bool, err error) {
	if e.Kind == "" {
		e.Kind = TopUp
	}
	if e.Kind != TopUp || e.Amount <= 0 || e.Amount > billing.MaxMoney || e.Ref == "" || e.Account == "" {
		return Entry{}, nil, false, fmt.Errorf("%w: top-up of %s to %q with reference %q", ErrBadEntry, e.Amount, e.Account, e.Ref)
	}
	if opt.Invoice != nil && opt.Invoice.Title == "" {
		return Entry{}, nil, false, fmt.Errorf("%w: the invoice request of %q has no title", ErrBadEntry, e.Ref)
	}
	err = db.update(func(tx *bolt.Tx) error {
		if id := tx.Bucket(bucketRefs).Get([]byte(e.Ref)); id != nil {
			prev, err := getEntry(tx, binary.BigEndian.Uint64(id))
			if err != nil {
				return err
			}
			if prev.Kind != TopUp || prev.Account != e.Account || prev.Amount != e.Amount {
				return fmt.Errorf("%w: %s was %s %s to %s (entry %d)", ErrRefConflict, e.Ref, prev.Kind, prev.Amount, prev.Account, prev.ID)
			}
			stored, existing = prev, true
			if opt.Invoice == nil {
				return nil
			}
			inv, err := getInvoice(tx, e.Ref)
			switch {
			case err != nil:
				return err
			case inv == nil:
				return putInvoiceRequest(tx, prev, *opt.Invoice, e.Time)
			case !sameRequest(*inv, *opt.Invoice):
				// The first request is the tenant's: its tax id (a
				// person's national id number) and e-mail are not for
				// whoever sent another, nor for the logs this reaches.
				return fmt.Errorf("%w: %s was credited with another invoice request (entry %d)", ErrInvoiceConflict, e.Ref, prev.ID)
			}
			stored, existing = prev, true
			return nil
		}
		// The number is taken in the transaction that credits the money:
		// a top-up rolled back gives its number back with it.
		receipts := tx.Bucket(bucketReceipts)
		n, err := receipts.NextSequence()
		if err != nil {
			return err
		}
		e.Receipt = n
		stored, err = appendEntry(tx, e)
		if err != nil {
			return err
		}
		if err := receipts.Put(binary.BigEndian.AppendUint64(nil, n), binary.BigEndian.AppendUint64(nil, stored.ID)); err != nil {
			return err
		}
		if opt.Invoice != nil {
			if err := putInvoiceRequest(tx, stored, *opt.Invoice, stored.Time); err != nil {
				return err
			}
		}
		if opt.Receipt != nil {
			evs, err := db.appendEvents(tx, []Event{opt.Receipt(stored)})
			if err != nil {
				return err
			}
			event = &evs[0]
		}
		return tx.Bucket(bucketRefs).Put([]byte(e.Ref), binary.BigEndian.AppendUint64(nil, stored.ID))
	})
	if err != nil && !errors.Is(err, ErrInvoiceConflict) {
		return Entry{}, nil, false, err
	}
	return stored, event, existing, err
}

// PostEntry appends an adjustment or reversal (or any entry without a
// payment reference: one under a reference is ErrBadEntry) in its own
// durable transaction. A reversal keeps the
// rules of PostCorrection (ErrNoEntry, ErrNotReversible, ErrReversed);
// finance's corrections, kept once per reference, go through
// PostCorrection.
func (db *DB) PostEntry(e Entry) (Entry, error) {
	switch e.Kind {
	case Charge, Allocation, Adjustment, Reversal:
	case TopUp, "":
		return Entry{}, fmt.Errorf("%w: top-ups go through PostTopUp, which keeps them once per reference", ErrBadEntry)
	default:
		return Entry{}, fmt.Errorf("%w: unknown kind %q", ErrBadEntry, e.Kind)
	}
	if e.Receipt != 0 {
		return Entry{}, fmt.Errorf("%w: receipt numbers are top-ups'", ErrBadEntry)
	}
	if e.Ref != "" {
		// Stored here, the reference would be in no index: a retry under it
		// would be posted again, and verify reports it (ref_index).
		return Entry{}, fmt.Errorf("%w: an entry under reference %q goes through PostCorrection, which keeps it once", ErrBadEntry, e.Ref)
	}
	var stored Entry
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		stored, err = appendCorrection(tx, e)
		return err
	})
	return stored, err
}

// appendEntry gives e the next id and the account's new balance and
// stores it with the account, in tx.
func appendEntry(tx *bolt.Tx, e Entry) (Entry, error) {
	if e.Account == "" || e.Amount < -billing.MaxMoney || e.Amount > billing.MaxMoney {
		return Entry{}, fmt.Errorf("%w: %s %s to %q", ErrBadEntry, e.Kind, e.Amount, e.Account)
	}
	acct, err := getAccount(tx, e.Account)
	if errors.Is(err, ErrNoAccount) {
		acct, err = Account{ID: e.Account}, nil
	}
	if err != nil {
		return Entry{}, err
	}
	entries := tx.Bucket(bucketEntries)
	entries.FillPercent = 1.0 // ids only grow
	id, err := entries.NextSequence()
	if err != nil {
		return Entry{}, err
	}
	e.ID = id
	e.Balance = acct.Balance + e.Amount
	if e.Balance < -billing.MaxMoney || e.Balance > billing.MaxMoney {
		return Entry{}, fmt.Errorf("%w: balance of %s would be %s", ErrBadEntry, e.Account, e.Balance)
	}
	key := binary.BigEndian.AppendUint64(nil, id)
	v, err := json.Marshal(e)
	if err != nil {
		return Entry{}, err
	}
	if err := entries.Put(key, v); err != nil {
		return Entry{}, err
	}
	idx, err := tx.Bucket(bucketByAcct).CreateBucketIfNotExists([]byte(e.Account))
	if err != nil {
		return Entry{}, err
	}
	idx.FillPercent = 1.0
	if err := idx.Put(key, nil); err != nil {
		return Entry{}, err
	}
	acct.Balance, acct.Entries, acct.LastEntry, acct.Updated = e.Balance, acct.Entries+1, id, e.Time
	return e, putAccount(tx, acct)
}

func getEntry(tx *bolt.Tx, id uint64) (Entry, error) {
	v := tx.Bucket(bucketEntries).Get(binary.BigEndian.AppendUint64(nil, id))
	if v == nil {
		return Entry{}, fmt.Errorf("entry %d: %w", id, ErrCorrupt)
	}
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w: %v", id, ErrCorrupt, err)
	}
	if e.ID != id {
		// Readers page on by the last id they were given.
		return Entry{}, fmt.Errorf("entry %d holds id %d: %w", id, e.ID, ErrCorrupt)
	}
	return e, nil
}

func getAccount(tx *bolt.Tx, id string) (Account, error) {
	v := tx.Bucket(bucketAccounts).Get([]byte(id))
	if v == nil {
		return Account{}, fmt.Errorf("%w: %s", ErrNoAccount, id)
	}
	var a Account
	if err := json.Unmarshal(v, &a); err != nil {
		return Account{}, fmt.Errorf("account %s: %w: %v", id, ErrCorrupt, err)
	}
	return a, nil
}

func putAccount(tx *bolt.Tx, a Account) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketAccounts).Put([]byte(a.ID), v)
}

// Account returns one account; ErrNoAccount if it has no entry yet.
func (db *DB) Account(id string) (Account, error) {
	var a Account
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		a, err = getAccount(tx, id)
		return err
	})
	return a, err
}

// Accounts returns every account with a ledger, by id.
func (db *DB) Accounts() ([]Account, error) {
	var out []Account
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			var a Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("account %s: %w: %v", k, ErrCorrupt, err)
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// Entries returns up to limit entries of account with ids below before (0:
// from the newest), newest first — a page of its ledger.
func (db *DB) Entries(account string, before uint64, limit int) ([]Entry, error) {
	var out []Entry
	err := db.view(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketByAcct).Bucket([]byte(account))
		if idx == nil {
			return nil
		}
		c := idx.Cursor()
		var k []byte
		if before == 0 {
			k, _ = c.Last()
		} else {
			c.Seek(binary.BigEndian.AppendUint64(nil, before))
			k, _ = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			e, err := getEntry(tx, binary.BigEndian.Uint64(k))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// EachEntry calls fn for every entry in id order, inside one read
// transaction (a consistent snapshot), stopping at fn's first error.
func (db *DB) EachEntry(fn func(Entry) error) error {
	return db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w: %v", k, ErrCorrupt, err)
			}
			return fn(e)
		})
	})
}
