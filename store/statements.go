package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketStatements holds the tenants' monthly statements as they were
// issued: tenant id, 0, month ("2026-11") → JSON StoredStatement. It is
// created by the first statement stored rather than by a schema upgrade:
// a file without it simply has no statement yet, so neither an older
// gateway nor a read-only open (verify, backups) has anything to refuse,
// and the schema version stays where it is.
var bucketStatements = []byte("statements")

// keyStatementKey is the key the signed statement links are made with, in
// the meta bucket: random, made once, never shown.
var keyStatementKey = []byte("statement_link_key")

// StatementKeyLen is the length of the key StatementKey returns (HMAC-SHA256
// takes a key of its block size or less at full strength).
const StatementKeyLen = 32

// ErrNoStatement is returned for a month whose statement was not stored.
var ErrNoStatement = errors.New("store: no such statement")

// StoredStatement is a tenant's statement of one month as it was issued:
// its figures, encoded by whoever made them (gateway/report), and when.
// Once stored it never changes: the statement a tenant was sent is the
// one the gateway shows again.
type StoredStatement struct {
	Tenant    string          `json:"tenant"`
	Month     string          `json:"month"` // YYYY-MM of the site's calendar
	Generated time.Time       `json:"generated"`
	Figures   json.RawMessage `json:"figures"`
}

func statementKey(tenant, month string) []byte {
	return append(append([]byte(tenant), 0), month...)
}

// PutStatement stores s unless a statement of its tenant and month is
// stored already; it returns the one stored, with existing true when it
// was the earlier one (nothing changed). The write is durable when it
// returns.
func (db *DB) PutStatement(s StoredStatement) (stored StoredStatement, existing bool, err error) {
	if s.Tenant == "" || len(s.Month) != len("2006-01") || len(s.Figures) == 0 || bytes.IndexByte([]byte(s.Tenant), 0) >= 0 {
		return StoredStatement{}, false, fmt.Errorf("%w: statement %q of %q", ErrBadEntry, s.Month, s.Tenant)
	}
	err = db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStatements)
		if err != nil {
			return err
		}
		k := statementKey(s.Tenant, s.Month)
		if v := b.Get(k); v != nil {
			existing = true
			return decodeStatement(k, v, &stored)
		}
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		stored = s
		return b.Put(k, v)
	})
	return stored, existing, err
}

func decodeStatement(k, v []byte, s *StoredStatement) error {
	if err := json.Unmarshal(v, s); err != nil {
		return fmt.Errorf("statement %q: %w: %v", k, ErrCorrupt, err)
	}
	return nil
}

// Statement returns tenant's stored statement of month (YYYY-MM);
// ErrNoStatement if there is none.
func (db *DB) Statement(tenant, month string) (StoredStatement, error) {
	var s StoredStatement
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStatements)
		k := statementKey(tenant, month)
		var v []byte
		if b != nil {
			v = b.Get(k)
		}
		if v == nil {
			return fmt.Errorf("%w: %s of %s", ErrNoStatement, month, tenant)
		}
		return decodeStatement(k, v, &s)
	})
	return s, err
}

// StatementMonths returns the months of tenant's stored statements, oldest
// first.
func (db *DB) StatementMonths(tenant string) ([]string, error) {
	var out []string
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStatements)
		if b == nil {
			return nil
		}
		prefix := append([]byte(tenant), 0)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	return out, err
}

// HasStatement says whether tenant's statement of month is stored.
func (db *DB) HasStatement(tenant, month string) (bool, error) {
	var ok bool
	err := db.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStatements); b != nil {
			ok = b.Get(statementKey(tenant, month)) != nil
		}
		return nil
	})
	return ok, err
}

// EachEntryAfter calls fn for every entry with an id above after, in id
// order, inside one read transaction, stopping at fn's first error: the
// entries posted since a statement was computed.
func (db *DB) EachEntryAfter(after uint64, fn func(Entry) error) error {
	return db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w: %v", k, ErrCorrupt, err)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// firstEntriesRead is how many of an account's lowest ids FirstEntry reads
// for the earliest date among them.
const firstEntriesRead = 1000

// FirstEntry returns account's earliest-dated ledger entry among its first
// firstEntriesRead by id; ok is false for an account without one.
// Statements start with the month it falls in. Ids are in posting order,
// not time order: a charge is dated by its slot's last reading and posted
// at the end of the bus cycle after it, or at the first cycle after a
// restart, so a top-up posted in between (or just after the start) has a
// lower id and a later date — the lowest id's month could be the month
// after the first entry's, and that month would have no statement. An
// entry is posted behind at most the entries of one bus cycle and a
// restart's first cycle — a handful, never a thousand of the account's —
// so the earliest date is among the first firstEntriesRead.
func (db *DB) FirstEntry(account string) (e Entry, ok bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketByAcct).Bucket([]byte(account))
		if idx == nil {
			return nil
		}
		c := idx.Cursor()
		n := 0
		for k, _ := c.First(); k != nil && n < firstEntriesRead; k, _ = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("ledger index of %s: key %x: %w", account, k, ErrCorrupt)
			}
			got, err := getEntry(tx, binary.BigEndian.Uint64(k))
			if err != nil {
				return err
			}
			if !ok || got.Time.Before(e.Time) {
				e, ok = got, true
			}
			n++
		}
		return nil
	})
	if err != nil {
		return Entry{}, false, err
	}
	return e, ok, nil
}

// StatementKey returns the site's key for signing statement links, making
// it the first time (StatementKeyLen random bytes, stored in the database
// so that links stay valid across restarts, and go with the database to a
// new box). A read of a database that has none yet makes it: the call
// writes once in the database's life.
func (db *DB) StatementKey() ([]byte, error) {
	var key []byte
	err := db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyStatementKey); v != nil {
			key = bytes.Clone(v)
		}
		return nil
	})
	if err != nil || key != nil {
		return checkStatementKey(key, err)
	}
	fresh := make([]byte, StatementKeyLen)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: statement link key: %w", err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyStatementKey); v != nil { // made meanwhile by another caller: theirs stands
			key = bytes.Clone(v)
			return nil
		}
		key = fresh
		return meta.Put(keyStatementKey, fresh)
	})
	return checkStatementKey(key, err)
}

func checkStatementKey(key []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if len(key) != StatementKeyLen {
		return nil, fmt.Errorf("statement link key of %d bytes: %w", len(key), ErrCorrupt)
	}
	return key, nil
}
