package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// An event whose stored id is not its key's is corruption: a reader that
// pages on by the last id returned (verify does) would go back to the
// start and round for ever.
func TestEventsAfter_IDOtherThanItsKeyIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.PostEvents(Event{Kind: "a", Text: "one"}, Event{Kind: "b", Text: "two"}, Event{Kind: "c", Text: "three"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.EventsAfter(0, 10); err != nil || len(got) != 3 {
		t.Fatalf("undamaged: %d events, %v", len(got), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	last := evs[2]
	last.ID = evs[0].ID // a flipped byte in the JSON's id
	raw, _ := json.Marshal(last)
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put(binary.BigEndian.AppendUint64(nil, evs[2].ID), raw)
	}); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.EventsAfter(0, 10); !errors.Is(err, ErrCorrupt) {
		t.Errorf("EventsAfter over an event holding another id = %v; want ErrCorrupt", err)
	}
}
