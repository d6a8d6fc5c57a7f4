package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditVersion names the encoding a record's hash is computed over (see
// the package documentation, "The audit log"). A new encoding gets a new
// name; records keep the one they were written with.
const AuditVersion = "mallgrid-audit/1"

// AuditGenesis is the Prev of the first record: there is none before it.
var AuditGenesis = strings.Repeat("0", 64)

// Limits of AuditRecords.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// ErrBadAudit is returned by AppendAudit for a record without a time or an
// action: a record that says neither when nor what cannot be audited.
var ErrBadAudit = errors.New("store: audit record refused")

// AuditRecord is one entry of the control room's audit log: a change made
// through the web application or the API (who, in which role, from which
// address, what, to what, the state before and after, why, and how it
// ended), or a failed login. Records are appended, never changed; each
// carries the hash of the one before it (Prev) and its own (Hash), so that
// a record changed, removed or moved breaks the chain at that record.
type AuditRecord struct {
	Seq     uint64    `json:"seq"` // 1, 2, 3 …, in commit order
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Role    string    `json:"role"`
	Address string    `json:"address"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Before  string    `json:"before"`
	After   string    `json:"after"`
	Reason  string    `json:"reason"`
	Outcome string    `json:"outcome"`
	Prev    string    `json:"prev"` // hex SHA-256 of the record before; AuditGenesis for the first
	Hash    string    `json:"hash"` // hex SHA-256 of this record's canonical encoding (AuditHash)
}

// AuditHash returns the hex SHA-256 of r's canonical encoding (version
// AuditVersion): netstrings of the version, then Seq in decimal, Time as
// RFC 3339 with nanoseconds (as the stored record has it), Actor, Role,
// Address, Action, Target, Before, After, Reason, Outcome and Prev. Hash
// itself is not part of it.
func AuditHash(r AuditRecord) string {
	var buf bytes.Buffer
	for _, f := range []string{AuditVersion, strconv.FormatUint(r.Seq, 10), r.Time.Format(time.RFC3339Nano),
		r.Actor, r.Role, r.Address, r.Action, r.Target, r.Before, r.After, r.Reason, r.Outcome, r.Prev} {
		// A netstring (length:bytes,) cannot be confused with another
		// split of the same bytes, whatever the fields hold.
		buf.WriteString(strconv.Itoa(len(f)))
		buf.WriteByte(':')
		buf.WriteString(f)
		buf.WriteByte(',')
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// normalize makes r's text what its stored JSON gives back: JSON replaces
// bytes that are not UTF-8, and the hash must be recomputable from the
// stored record.
func (r *AuditRecord) normalize() {
	for _, f := range []*string{&r.Actor, &r.Role, &r.Address, &r.Action, &r.Target, &r.Before, &r.After, &r.Reason, &r.Outcome} {
		*f = strings.ToValidUTF8(*f, "\uFFFD")
	}
	r.Time = r.Time.Round(0) // no monotonic reading: it is not stored
}

// AppendAudit appends r to the audit log in its own durable transaction,
// through the store's one write path (so a full disk or a lost file refuses
// it as it refuses a top-up, and nothing of it is kept). It sets r.Seq to
// the next number, r.Prev to the last record's hash and r.Hash, ignoring
// what the caller put there, and returns the record as stored. It returns
// ErrBadAudit for a record without Time or Action, and ErrCorrupt when the
// last record cannot be read (the chain could not go on from it).
func (db *DB) AppendAudit(r AuditRecord) (AuditRecord, error) {
	if r.Time.IsZero() || r.Action == "" {
		return AuditRecord{}, fmt.Errorf("%w: a record needs a time and an action", ErrBadAudit)
	}
	r.normalize()
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		b.FillPercent = 1.0 // keys only grow
		r.Prev = AuditGenesis
		if k, v := b.Cursor().Last(); k != nil {
			var last AuditRecord
			if err := json.Unmarshal(v, &last); err != nil {
				return fmt.Errorf("audit record %x: %w: %v", k, ErrCorrupt, err)
			}
			r.Prev = last.Hash
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		r.Hash = AuditHash(r)
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadAudit, err) // a time beyond year 9999
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
	})
	if err != nil {
		return AuditRecord{}, fmt.Errorf("audit %s: %w", r.Action, err)
	}
	return r, nil
}

// AuditFilter selects audit records; zero fields select everything.
type AuditFilter struct {
	From, To time.Time // From ≤ Time < To; zero: unbounded
	Actor    string    // exactly this actor
	Action   string    // actions starting with this
	Target   string    // exactly this target
	Before   uint64    // only records before this sequence number (paging); 0: from the newest
	Limit    int       // at most this many; ≤ 0: DefaultAuditLimit; above MaxAuditLimit: MaxAuditLimit
}

func (f AuditFilter) match(r AuditRecord) bool {
	return (f.From.IsZero() || !r.Time.Before(f.From)) &&
		(f.To.IsZero() || r.Time.Before(f.To)) &&
		(f.Actor == "" || r.Actor == f.Actor) &&
		strings.HasPrefix(r.Action, f.Action) &&
		(f.Target == "" || r.Target == f.Target)
}

// AuditRecords returns the records f selects, newest first. Times are
// not assumed to grow with the sequence (a clock may be set back), so a
// time range reads every record before f.Before; the next page of a full
// one is asked for with Before set to its last record's Seq. A record that
// cannot be decoded is an error wrapping ErrCorrupt.
func (db *DB) AuditRecords(f AuditFilter) ([]AuditRecord, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultAuditLimit
	case limit > MaxAuditLimit:
		limit = MaxAuditLimit
	}
	var out []AuditRecord
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else {
			if k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, f.Before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev() // Seek lands on Before or after it
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("audit record %x: %w: %v", k, ErrCorrupt, err)
			}
			if f.match(r) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// AuditFault is where the audit chain first breaks.
type AuditFault struct {
	Seq     uint64 // the record (its key) at which the chain breaks
	Problem string
}

func (f AuditFault) String() string { return fmt.Sprintf("audit record %d: %s", f.Seq, f.Problem) }

// AuditChain is what CheckAuditChain found.
type AuditChain struct {
	Records int         // records read, up to and with the faulty one if there is one
	Last    string      // the last record's Hash while the chain is whole; "" for an empty log
	Fault   *AuditFault // where the chain first breaks; nil when it is whole
}

// CheckAuditChain walks the whole audit log, oldest first, and returns how
// many records it holds, the last one's hash and the first place the chain
// breaks, if it does: the records are numbered 1, 2, 3 … with no gap, each
// stored under its own number, each one's Prev is the Hash of the one
// before (the first one's AuditGenesis), each Hash is what AuditHash gives
// for the record, and the last number is the log's sequence (the last
// records were not cut off). A record that cannot be decoded is a fault,
// not an error; the error is for a database that cannot be read.
//
// What the chain cannot show is a log rewritten from some record to its end
// with every hash recomputed: the last record's hash, kept outside the
// gateway, is what proves that.
func (db *DB) CheckAuditChain() (AuditChain, error) {
	var (
		n     int
		fault *AuditFault
		prev  = AuditGenesis
	)
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		want := uint64(1)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n++
			if len(k) != 8 {
				fault = &AuditFault{Seq: want, Problem: fmt.Sprintf("a key of %d bytes (%x) where record %d should be", len(k), k, want)}
				return nil
			}
			key := binary.BigEndian.Uint64(k)
			if key != want {
				// Keys come in order, so key > want: records between are gone.
				fault = &AuditFault{Seq: key, Problem: fmt.Sprintf("follows record %d: record %d is missing", want-1, want)}
				return nil
			}
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				fault = &AuditFault{Seq: key, Problem: fmt.Sprintf("cannot be read: %v", err)}
				return nil
			}
			switch {
			case r.Seq != key:
				fault = &AuditFault{Seq: key, Problem: fmt.Sprintf("holds record %d: records were moved", r.Seq)}
			case r.Prev != prev && key == 1:
				fault = &AuditFault{Seq: key, Problem: fmt.Sprintf("names %s as the hash before it; the first record names %s", r.Prev, AuditGenesis)}
			case r.Prev != prev:
				fault = &AuditFault{Seq: key, Problem: fmt.Sprintf("names %s as the hash before it; record %d's is %s: a record before it was changed or replaced", r.Prev, key-1, prev)}
			case AuditHash(r) != r.Hash:
				fault = &AuditFault{Seq: key, Problem: fmt.Sprintf("its content hashes to %s, not the %s it carries: it was changed", AuditHash(r), r.Hash)}
			}
			if fault != nil {
				return nil
			}
			prev = r.Hash
			want++
		}
		switch last := want - 1; {
		case b.Sequence() > last:
			fault = &AuditFault{Seq: last + 1, Problem: fmt.Sprintf("missing: the log numbered %d records, and they end at %d", b.Sequence(), last)}
		case b.Sequence() < last:
			fault = &AuditFault{Seq: b.Sequence() + 1, Problem: fmt.Sprintf("not numbered by the log, which numbered %d records: it was added behind its back", b.Sequence())}
		}
		return nil
	})
	if err != nil {
		return AuditChain{}, err
	}
	c := AuditChain{Records: n, Fault: fault}
	if fault == nil && n > 0 {
		c.Last = prev
	}
	return c, nil
}
