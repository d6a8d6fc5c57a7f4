package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

// bucketAllocations holds the allocation postings: sub-bucket "postings"
// (posting id, uint64 BE, its own sequence → JSON Posting) and "live"
// (rule, 0, the period's start in Unix seconds BE → the id of the posting
// that stands for it). It is made by the first posting rather than by a
// schema upgrade, and a file without it has posted none: a database of
// the same schema from before allocation opens unchanged. (Verify finds
// allocation entries whose posting is missing, so a bucket lost to damage
// is not mistaken for none.)
var (
	bucketAllocations = []byte("allocations")
	allocPostings     = []byte("postings")
	allocLive         = []byte("live")
)

// Posting is one allocation rule's public-area cost over one period,
// shared out to its tenants and posted to their ledgers as allocation
// entries, in one transaction.
type Posting struct {
	ID     uint64    `json:"id"`
	Rule   string    `json:"rule"`
	Period string    `json:"period"` // what statements name it by: "2026-11", "2026-11-30"
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Basis is the rule's basis ("area", "area 50% + consumption 50%"),
	// Tariff the tariff its energy was priced at, Meters its public meters.
	Basis  string   `json:"basis"`
	Tariff string   `json:"tariff"`
	Meters []string `json:"meters"`
	// PublicWh is the public meters' energy over [From, To), Cost its
	// price in whole fen: Σ Shares' Amount.
	PublicWh int64          `json:"public_wh"`
	Cost     billing.Money  `json:"cost"`
	Shares   []PostingShare `json:"shares"`
	Time     time.Time      `json:"time"`  // when it was posted
	Actor    string         `json:"actor"` // "gateway" for the period's automatic posting
	// Reversal, once set, says the posting was undone; the period may then
	// be posted again.
	Reversal *PostingReversal `json:"reversal,omitempty"`
}

// PostingShare is one tenant's part of a posting.
type PostingShare struct {
	Tenant string        `json:"tenant"`
	Basis  string        `json:"basis"`  // how it was worked out, for the tenant to check
	Amount billing.Money `json:"amount"` // what the tenant is charged, whole fen, >= 0
	Entry  uint64        `json:"entry,omitempty"`
}

// PostingReversal is who undid a posting, when, why, and its reversal
// entries (one per allocation entry of the posting).
type PostingReversal struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason"`
	Entries []uint64  `json:"entries"`
}

var (
	// ErrNoPosting is returned for a posting id that names none.
	ErrNoPosting = errors.New("store: no such allocation posting")
	// ErrPostingReversed is returned by ReverseAllocation for a posting
	// reversed before: a posting is undone once.
	ErrPostingReversed = errors.New("store: allocation posting already reversed")
	// ErrPostingOverlap is returned by PostAllocation for a period that
	// overlaps another period of the same rule that stands (the rule's
	// period was changed from day to month, say): public energy is shared
	// once.
	ErrPostingOverlap = errors.New("store: allocation period overlaps one already posted")
	// ErrBadPosting is returned for a posting whose shares do not add up
	// to its cost, or that lacks its rule, period or actor.
	ErrBadPosting = errors.New("store: allocation posting refused")
)

// PostAllocation stores p and its tenants' allocation entries (a debit
// for each share above zero, its Note saying how it was worked out) in one
// durable transaction, once per rule and period: if a posting of p.Rule
// for the period starting at p.From stands, it is returned with existing =
// true and nothing changes. A period overlapping another that stands is
// ErrPostingOverlap; shares that do not add up to the cost, or a share
// below zero, ErrBadPosting. The posting's id, time and entries are set in
// what it returns.
func (db *DB) PostAllocation(p Posting) (stored Posting, existing bool, err error) {
	if err := checkPosting(p); err != nil {
		return Posting{}, false, err
	}
	err = db.update(func(tx *bolt.Tx) error {
		postings, live, err := allocBuckets(tx)
		if err != nil {
			return err
		}
		prev, next, at, err := neighbours(postings, live, p.Rule, p.From)
		if err != nil {
			return err
		}
		if at != nil {
			if !at.To.Equal(p.To) {
				return fmt.Errorf("%w: %s %s to %s stands (posting %d)", ErrPostingOverlap, at.Rule, at.From.Format(time.RFC3339), at.To.Format(time.RFC3339), at.ID)
			}
			stored, existing = *at, true
			return nil
		}
		for _, o := range []*Posting{prev, next} {
			if o != nil && o.From.Before(p.To) && p.From.Before(o.To) {
				return fmt.Errorf("%w: %s %s to %s stands (posting %d)", ErrPostingOverlap, o.Rule, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339), o.ID)
			}
		}
		id, err := postings.NextSequence()
		if err != nil {
			return err
		}
		p.ID = id
		for i, s := range p.Shares {
			if s.Amount == 0 {
				continue
			}
			from, to := p.From, p.To
			e, err := appendEntry(tx, Entry{Time: p.Time, Account: s.Tenant, Kind: Allocation, Amount: -s.Amount,
				From: &from, To: &to, Actor: p.Actor, Note: allocationNote(p, s)})
			if err != nil {
				return err
			}
			p.Shares[i].Entry = e.ID
		}
		if err := putPosting(postings, p); err != nil {
			return err
		}
		stored = p
		return live.Put(liveKey(p.Rule, p.From), binary.BigEndian.AppendUint64(nil, id))
	})
	if err != nil {
		return Posting{}, false, err
	}
	return stored, existing, nil
}

// allocationNote is what an allocation entry says of itself: the rule,
// the period, the posting, the tenant's basis and what was shared.
func allocationNote(p Posting, s PostingShare) string {
	return fmt.Sprintf("allocation %s %s (posting %d): %s; public energy %d.%03d kWh of %d meter(s) at tariff %s, cost %s",
		p.Rule, p.Period, p.ID, s.Basis, p.PublicWh/1000, p.PublicWh%1000, len(p.Meters), p.Tariff, p.Cost)
}

func checkPosting(p Posting) error {
	if p.Rule == "" || p.Period == "" || p.Actor == "" || !p.From.Before(p.To) {
		return fmt.Errorf("%w: rule %q period %q from %s to %s by %q", ErrBadPosting, p.Rule, p.Period, p.From, p.To, p.Actor)
	}
	if p.Cost < 0 || p.Cost > billing.MaxMoney || p.PublicWh < 0 {
		return fmt.Errorf("%w: cost %s of %d Wh", ErrBadPosting, p.Cost, p.PublicWh)
	}
	var sum billing.Money
	seen := make(map[string]bool)
	for _, s := range p.Shares {
		if s.Tenant == "" || seen[s.Tenant] || s.Amount < 0 || s.Amount > p.Cost {
			return fmt.Errorf("%w: share of %s to %q", ErrBadPosting, s.Amount, s.Tenant)
		}
		seen[s.Tenant] = true
		sum += s.Amount
	}
	if sum != p.Cost {
		return fmt.Errorf("%w: shares add up to %s, cost %s", ErrBadPosting, sum, p.Cost)
	}
	return nil
}

// ReverseAllocation undoes posting id, once: a reversal entry for each of
// its allocation entries (reason as their note), the posting marked
// reversed, and its period free to be posted again — all in one durable
// transaction. actor and reason are required (ErrBadPosting). An unknown
// id is ErrNoPosting; a posting reversed before ErrPostingReversed.
func (db *DB) ReverseAllocation(id uint64, actor, reason string, at time.Time) (Posting, error) {
	if actor == "" || reason == "" {
		return Posting{}, fmt.Errorf("%w: a reversal needs who and why", ErrBadPosting)
	}
	var p Posting
	err := db.update(func(tx *bolt.Tx) error {
		postings, live, err := allocBuckets(tx)
		if err != nil {
			return err
		}
		got, err := getPosting(postings, id)
		if err != nil {
			return err
		}
		p = got
		if p.Reversal != nil {
			return fmt.Errorf("%w: posting %d by %s at %s", ErrPostingReversed, id, p.Reversal.Actor, p.Reversal.Time.Format(time.RFC3339))
		}
		rev := &PostingReversal{Time: at, Actor: actor, Reason: reason}
		for _, s := range p.Shares {
			if s.Entry == 0 {
				continue
			}
			e, err := appendCorrection(tx, Entry{Time: at, Account: s.Tenant, Kind: Reversal, Amount: s.Amount, Reverses: s.Entry,
				Actor: actor, Note: fmt.Sprintf("reversal of allocation %s %s (posting %d): %s", p.Rule, p.Period, p.ID, reason)})
			if err != nil {
				return err
			}
			rev.Entries = append(rev.Entries, e.ID)
		}
		p.Reversal = rev
		if err := putPosting(postings, p); err != nil {
			return err
		}
		key := liveKey(p.Rule, p.From)
		if v := live.Get(key); v != nil && binary.BigEndian.Uint64(v) == id {
			return live.Delete(key)
		}
		return nil
	})
	if err != nil {
		return Posting{}, err
	}
	return p, nil
}

// Posting returns posting id; ErrNoPosting if there is none.
func (db *DB) Posting(id uint64) (Posting, error) {
	var p Posting
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAllocations)
		if b == nil || b.Bucket(allocPostings) == nil {
			return fmt.Errorf("%w: %d", ErrNoPosting, id)
		}
		var err error
		p, err = getPosting(b.Bucket(allocPostings), id)
		return err
	})
	return p, err
}

// EachPosting calls fn for every posting in id order (the order they were
// posted), stopping at fn's first error.
func (db *DB) EachPosting(fn func(Posting) error) error {
	return db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAllocations)
		if b == nil || b.Bucket(allocPostings) == nil {
			return nil
		}
		return b.Bucket(allocPostings).ForEach(func(k, v []byte) error {
			p, err := decodePosting(k, v)
			if err != nil {
				return err
			}
			return fn(p)
		})
	})
}

// LatestPosting returns rule's posting of the latest period (the
// greatest To; of two, the one made last), reversed or not; false when
// the rule has none. It is the period the rule's automatic posting
// resumes after: not the posting made last, which is an older period when
// finance posts one by hand after later ones, and resuming from it would
// post the later periods finance reversed again.
func (db *DB) LatestPosting(rule string) (p Posting, found bool, err error) {
	err = db.EachPosting(func(got Posting) error {
		if got.Rule == rule && (!found || !got.To.Before(p.To)) {
			p, found = got, true
		}
		return nil
	})
	return p, found, err
}

// LivePostings returns the id of the posting that stands for each rule and
// period start ("rule\x00" + RFC 3339 start), for verify.
func (db *DB) LivePostings() (map[string]uint64, error) {
	out := make(map[string]uint64)
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAllocations)
		if b == nil || b.Bucket(allocLive) == nil {
			return nil
		}
		return b.Bucket(allocLive).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k) != i+9 || len(v) != 8 {
				return fmt.Errorf("allocation index %x: %w", k, ErrCorrupt)
			}
			from := time.Unix(int64(binary.BigEndian.Uint64(k[i+1:])), 0).UTC()
			out[string(k[:i])+"\x00"+from.Format(time.RFC3339)] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return out, err
}

func allocBuckets(tx *bolt.Tx) (postings, live *bolt.Bucket, err error) {
	b, err := tx.CreateBucketIfNotExists(bucketAllocations)
	if err != nil {
		return nil, nil, err
	}
	if postings, err = b.CreateBucketIfNotExists(allocPostings); err != nil {
		return nil, nil, err
	}
	postings.FillPercent = 1.0 // ids only grow
	if live, err = b.CreateBucketIfNotExists(allocLive); err != nil {
		return nil, nil, err
	}
	return postings, live, nil
}

func liveKey(rule string, from time.Time) []byte {
	k := append([]byte(rule), 0)
	return binary.BigEndian.AppendUint64(k, uint64(from.Unix()))
}

// neighbours returns rule's standing postings that start last before from
// and first after it, and the one that starts at from, if any.
func neighbours(postings, live *bolt.Bucket, rule string, from time.Time) (prev, next, at *Posting, err error) {
	prefix := append([]byte(rule), 0)
	load := func(v []byte) (*Posting, error) {
		if len(v) != 8 {
			return nil, fmt.Errorf("allocation index of %s: %w", rule, ErrCorrupt)
		}
		p, err := getPosting(postings, binary.BigEndian.Uint64(v))
		return &p, err
	}
	c := live.Cursor()
	key := liveKey(rule, from)
	k, v := c.Seek(key)
	if k != nil && bytes.Equal(k, key) {
		if at, err = load(v); err != nil {
			return nil, nil, nil, err
		}
		k, v = c.Next()
	}
	if k != nil && bytes.HasPrefix(k, prefix) {
		if next, err = load(v); err != nil {
			return nil, nil, nil, err
		}
	}
	// The key before from: Prev from where Seek landed, or the last key
	// when Seek ran off the end.
	var pk, pv []byte
	if sk, _ := c.Seek(key); sk != nil {
		pk, pv = c.Prev()
	} else {
		pk, pv = c.Last()
	}
	if pk != nil && bytes.HasPrefix(pk, prefix) {
		if prev, err = load(pv); err != nil {
			return nil, nil, nil, err
		}
	}
	return prev, next, at, nil
}

func putPosting(postings *bolt.Bucket, p Posting) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return postings.Put(binary.BigEndian.AppendUint64(nil, p.ID), v)
}

func getPosting(postings *bolt.Bucket, id uint64) (Posting, error) {
	k := binary.BigEndian.AppendUint64(nil, id)
	v := postings.Get(k)
	if v == nil {
		return Posting{}, fmt.Errorf("%w: %d", ErrNoPosting, id)
	}
	return decodePosting(k, v)
}

func decodePosting(k, v []byte) (Posting, error) {
	var p Posting
	if err := json.Unmarshal(v, &p); err != nil {
		return Posting{}, fmt.Errorf("allocation posting %x: %w: %v", k, ErrCorrupt, err)
	}
	return p, nil
}
