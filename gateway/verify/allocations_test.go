package verify

import (
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/store"
)

// postCorridors posts rule corridors' day from vt0: T-1 0.60, T-2 0.40,
// T-3 nothing — posting 1, entries 1 and 2.
func postCorridors(t *testing.T, db *store.DB) store.Posting {
	t.Helper()
	p, _, err := db.PostAllocation(store.Posting{Rule: "corridors", Period: "2026-11-27", From: vt0, To: vt0.AddDate(0, 0, 1),
		Basis: "area", Tariff: "standard", Meters: []string{"M-PUB"}, PublicWh: 1000, Cost: billing.Yuan, Time: vt0, Actor: "gateway",
		Shares: []store.PostingShare{{Tenant: "T-1", Amount: 60 * billing.Fen}, {Tenant: "T-2", Amount: 40 * billing.Fen}, {Tenant: "T-3"}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// editPosting rewrites posting id's JSON through edit.
func editPosting(id uint64, edit func(map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("allocations")).Bucket([]byte("postings"))
		key := binary.BigEndian.AppendUint64(nil, id)
		var p map[string]any
		if err := json.Unmarshal(b.Get(key), &p); err != nil {
			return err
		}
		edit(p)
		raw, _ := json.Marshal(p)
		return b.Put(key, raw)
	}
}

// liveKey adds rule's period starting at from to the index of standing
// postings, naming posting id.
func liveKey(rule string, from time.Time, id uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		k := binary.BigEndian.AppendUint64(append([]byte(rule), 0), uint64(from.Unix()))
		return tx.Bucket([]byte("allocations")).Bucket([]byte("live")).Put(k, binary.BigEndian.AppendUint64(nil, id))
	}
}

// allocationDamages are the damaged databases only the allocation rule
// finds.
func allocationDamages() []damage {
	corridors := func(t *testing.T, db *store.DB) { postCorridors(t, db) }
	return []damage{
		// The cost edited: the shares no longer add up to it.
		{rule: "allocation", build: corridors, tamper: editPosting(1, func(p map[string]any) { p["cost"] = 1_010_000 })},
		// A share's amount edited: its entry no longer agrees.
		{rule: "allocation", build: corridors, tamper: editPosting(1, func(p map[string]any) {
			shares := p["shares"].([]any)
			shares[0].(map[string]any)["amount"], shares[1].(map[string]any)["amount"] = 500_000, 500_000
		})},
		// A second posting of the same rule and period standing, over the
		// same entries.
		{rule: "allocation", build: corridors, tamper: func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("allocations")).Bucket([]byte("postings"))
			raw := b.Get(binary.BigEndian.AppendUint64(nil, 1))
			var p map[string]any
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			p["id"] = 2
			raw, _ = json.Marshal(p)
			return b.Put(binary.BigEndian.AppendUint64(nil, 2), raw)
		}},
		// The postings lost (the bucket deleted): the entries belong to none.
		{rule: "allocation", build: corridors, tamper: func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("allocations")) }},
		// The index of standing postings names a posting under another
		// period of its rule (the next day), and under another rule: each
		// key must name the posting of its own rule and period.
		{rule: "allocation", build: corridors, tamper: liveKey("corridors", vt0.AddDate(0, 0, 1), 1)},
		{rule: "allocation", build: corridors, tamper: liveKey("lifts", vt0, 1)},
		// A posting marked reversed with no reversal entries.
		{rule: "allocation", build: corridors, tamper: editPosting(1, func(p map[string]any) {
			p["reversal"] = map[string]any{"time": vt0, "actor": "books", "reason": "x", "entries": []any{}}
		})},
	}
}

// A posting, its reversal and its period posted again pass verify.
func TestVerify_AcceptsAllocations(t *testing.T) {
	db := buildDamaged(t, damage{build: func(t *testing.T, db *store.DB) {
		p := postCorridors(t, db)
		if _, err := db.ReverseAllocation(p.ID, "books", "wrong areas", vt0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		postCorridors(t, db)
	}})
	v, err := Check(db)
	if err != nil || len(v) != 0 {
		t.Errorf("Check = %v, %v; want no violation", v, err)
	}
}
