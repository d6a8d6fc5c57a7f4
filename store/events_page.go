package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// eventScanChunk is how many events EachEventBefore reads in one
// transaction.
const eventScanChunk = 2000

// EachEventBefore calls fn for the stored events with ids below before (0:
// from the newest), newest first, until fn returns false or the events run
// out. The events page scans back through them with its filters, a read
// transaction at a time of at most eventScanChunk events, so that a long
// scan never holds one open (a commit growing the file waits for it).
func (db *DB) EachEventBefore(before uint64, fn func(Event) bool) error {
	for {
		var chunk []Event
		err := db.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEvents).Cursor()
			var k, v []byte
			if before == 0 {
				k, v = c.Last()
			} else if sk, _ := c.Seek(binary.BigEndian.AppendUint64(nil, before)); sk == nil {
				k, v = c.Last() // every stored id is below before
			} else {
				k, v = c.Prev()
			}
			for ; k != nil && len(chunk) < eventScanChunk; k, v = c.Prev() {
				var e Event
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("event %x: %w: %v", k, ErrCorrupt, err)
				}
				chunk = append(chunk, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if !fn(e) {
				return nil
			}
		}
		if len(chunk) < eventScanChunk {
			return nil
		}
		before = chunk[len(chunk)-1].ID
	}
}
