package store

import (
	bolt "go.etcd.io/bbolt"
)

// PutControl stores enforcement state (an account's policy status, a
// meter's desired relay state and override) under key, together with
// events about it, in one durable transaction: a cut-off decided is
// remembered before it is carried out, and survives a restart. It returns
// the events with their ids.
func (db *DB) PutControl(values map[string][]byte, events ...Event) ([]Event, error) {
	var out []Event
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketControl)
		for k, v := range values {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		var err error
		out, err = db.appendEvents(tx, events)
		return err
	})
	return out, err
}

// Controls returns every stored enforcement value by key.
func (db *DB) Controls() (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketControl).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}
