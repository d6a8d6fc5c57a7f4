package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// EachEventBefore calls fn for the stored events with ids below before (0:
// from the newest), newest first, inside one read transaction, until fn
// returns false or the events run out. The events page scans back through
// them with its filters.
func (db *DB) EachEventBefore(before uint64, fn func(Event) bool) error {
	return db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else if sk, _ := c.Seek(binary.BigEndian.AppendUint64(nil, before)); sk == nil {
			k, v = c.Last() // every stored id is below before
		} else {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %x: %w: %v", k, ErrCorrupt, err)
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}
