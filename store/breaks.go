package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Break is where one of a meter's counter chains starts: its first reading
// (chain 0), a counter reset accepted on evidence, or an operator's meter
// exchange. Every charge names the chain its counter span lies on, and a
// chain's charges must cover it from NewStartWh to where the next chain's
// break says it ended (OldEndWh), or to the meter's baseline: so verify can
// follow each counter on its own, and tell a reset the gateway accepted from
// energy charged twice or skipped. Breaks are appended, never changed; an
// exchange recorded after its reset was accepted Amends the reset's break,
// and the latest break of a chain is the one that holds.
type Break struct {
	Meter      string    `json:"meter"`
	Chain      int       `json:"chain"`
	Kind       string    `json:"kind"` // baseline | reset | exchanged
	At         time.Time `json:"at"`
	OldEndWh   int64     `json:"old_end_wh,omitempty"` // the previous chain's last counter billed
	NewStartWh int64     `json:"new_start_wh"`         // this chain's first counter
	Amends     bool      `json:"amends,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	Note       string    `json:"note,omitempty"`
}

func appendBreaks(tx *bolt.Tx, breaks []Break) error {
	b := tx.Bucket(bucketBreaks)
	b.FillPercent = 1.0 // keys only grow
	for _, br := range breaks {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(br)
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
			return fmt.Errorf("break of meter %s: %w", br.Meter, err)
		}
	}
	return nil
}

// Breaks returns every meter's chain breaks in the order they were stored.
func (db *DB) Breaks() ([]Break, error) {
	var out []Break
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBreaks).ForEach(func(k, v []byte) error {
			var br Break
			if err := json.Unmarshal(v, &br); err != nil {
				return fmt.Errorf("break %x: %w: %v", k, ErrCorrupt, err)
			}
			out = append(out, br)
			return nil
		})
	})
	return out, err
}
