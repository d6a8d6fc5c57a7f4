package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// UplinkCommand is the record of one signed command from the group's
// platform that the gateway handled (gateway/uplink): kept so that the
// same command delivered again is answered with its first result, and a
// command under an id already handled but with other bytes is known for a
// replay. A record is kept until its command has expired (PruneUplinkCommands):
// an expired command is refused whatever its id.
type UplinkCommand struct {
	ID string `json:"id"`
	// PayloadSHA256 is the SHA-256 of the command's signed bytes, hex.
	PayloadSHA256 string `json:"payload_sha256"`
	// Result is the body of the command_result first sent up for it.
	Result json.RawMessage `json:"result"`
	// Expires is the command's expires_at; Handled when its result was
	// stored.
	Expires time.Time `json:"expires_at"`
	Handled time.Time `json:"handled"`
	// A top-up's payment as the command named it — its ref, tenant and
	// amount (billing.Money's decimal form) — so that verify can hold a
	// result that names an entry against the entry itself.
	Ref    string `json:"ref,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	Amount string `json:"amount,omitempty"`
}

// MaxUplinkCommandID bounds a command id, in bytes: the platform's ids are
// UUIDs or order numbers, and the id is a bbolt key.
const MaxUplinkCommandID = 64

var (
	// ErrCommandSeen is returned by FinishUplinkCommand for an id recorded
	// before: nothing is stored, and the caller answers from the record
	// (UplinkCommand).
	ErrCommandSeen = errors.New("store: uplink command already handled")
	// ErrBadCommand is returned by FinishUplinkCommand for an id of no or
	// more than MaxUplinkCommandID bytes, or a result that is not a
	// command_result with a JSON body; nothing is stored.
	ErrBadCommand = errors.New("store: uplink command record refused")
)

// KindCommandResult is the uplink message kind of a command's result.
const KindCommandResult = "command_result"

// UplinkCommand returns the record of the command id; seen is false (and
// the record zero) when no command of that id was recorded, or its record
// was pruned. ErrCorrupt for a record that cannot be read.
func (db *DB) UplinkCommand(id string) (rec UplinkCommand, seen bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUplinkCommands).Get([]byte(id))
		if v == nil {
			return nil
		}
		seen = true
		rec, err = decodeUplinkCommand([]byte(id), v)
		return err
	})
	return rec, seen, err
}

// FinishUplinkCommand records the command id (the SHA-256 of its signed
// bytes, its expiry, result.Data as its result) and, in the same durable
// transaction, queues result in the uplink outbox and stores events (a
// refusal's, for the control room): a command is either handled and
// answered or neither, so a command redelivered after a crash is handled
// again rather than answered never. It returns the queued message with its
// seq and the events with their ids. ErrCommandSeen when id was recorded
// before (nothing stored; a command handled twice at once, or a caller
// that did not look), ErrBadCommand for an id or result it refuses.
func (db *DB) FinishUplinkCommand(id string, payloadHash [32]byte, expires time.Time, result UplinkMessage, events ...Event) (UplinkMessage, []Event, error) {
	return db.FinishUplinkCommandRecord(UplinkCommand{ID: id, PayloadSHA256: hex.EncodeToString(payloadHash[:]), Expires: expires}, result, events...)
}

// FinishUplinkCommandRecord is FinishUplinkCommand with the record given
// whole (its Result and Handled are result's): a top-up's carries its
// payment (Ref, Tenant, Amount).
func (db *DB) FinishUplinkCommandRecord(r UplinkCommand, result UplinkMessage, events ...Event) (UplinkMessage, []Event, error) {
	id := r.ID
	if id == "" || len(id) > MaxUplinkCommandID {
		return UplinkMessage{}, nil, fmt.Errorf("%w: id of %d bytes", ErrBadCommand, len(id))
	}
	if err := checkCommandResult(result); err != nil {
		return UplinkMessage{}, nil, err
	}
	r.Result, r.Handled = result.Data, result.Time
	rec, err := json.Marshal(r)
	if err != nil {
		return UplinkMessage{}, nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	var msg UplinkMessage
	var stored []Event
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUplinkCommands)
		if b.Get([]byte(id)) != nil {
			return fmt.Errorf("%w: %q", ErrCommandSeen, id)
		}
		if err := b.Put([]byte(id), rec); err != nil {
			return err
		}
		var err error
		if msg, stored, err = db.appendCommandResult(tx, result, events); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return UplinkMessage{}, nil, err
	}
	return msg, stored, nil
}

// ReportUplinkCommand queues the result of a command that is not recorded
// — one refused before it could be trusted or placed (a forged, stale or
// unreadable command, another site's), or a duplicate delivery answered
// again — and stores events with it, in one durable transaction. It
// returns the queued message with its seq and the events with their ids.
// ErrBadCommand for a result that is not a command_result with a JSON
// body; nothing is stored.
func (db *DB) ReportUplinkCommand(result UplinkMessage, events ...Event) (UplinkMessage, []Event, error) {
	if err := checkCommandResult(result); err != nil {
		return UplinkMessage{}, nil, err
	}
	var msg UplinkMessage
	var stored []Event
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		msg, stored, err = db.appendCommandResult(tx, result, events)
		return err
	})
	if err != nil {
		return UplinkMessage{}, nil, err
	}
	return msg, stored, nil
}

func checkCommandResult(m UplinkMessage) error {
	if m.Kind != KindCommandResult || !json.Valid(m.Data) {
		return fmt.Errorf("%w: want a %s message with a JSON body, got kind %q", ErrBadCommand, KindCommandResult, m.Kind)
	}
	return nil
}

func (db *DB) appendCommandResult(tx *bolt.Tx, result UplinkMessage, events []Event) (UplinkMessage, []Event, error) {
	msgs, err := appendUplink(tx, []UplinkMessage{result})
	if err != nil {
		return UplinkMessage{}, nil, err
	}
	var stored []Event
	if len(events) > 0 {
		if stored, err = db.appendEvents(tx, events); err != nil {
			return UplinkMessage{}, nil, err
		}
	}
	return msgs[0], stored, nil
}

// PruneUplinkCommands deletes the records of commands that expired more
// than keep before the cutoff, and returns how many it deleted. The cutoff
// is the earlier of now and the latest time a recorded command was handled:
// a clock jumped ahead (a year, say) prunes no more than the commands
// handled so far allow, so the records of commands that are live again
// once the clock is put right are still there to find a replay. keep is
// the margin for a clock set back: a command is refused as expired by the
// gateway's clock, so its record is needed as long as that clock might
// take it for live again. The bucket is read in a read-only transaction;
// the deletions go in durable transactions of at most batch records each,
// every record looked at again in its transaction, so that the writers of
// the ledger wait for one short batch, not for a walk of the whole
// bucket. A record that cannot be read is kept (verify reports it).
func (db *DB) PruneUplinkCommands(now time.Time, keep time.Duration, batch int) (int, error) {
	if batch <= 0 {
		return 0, nil
	}
	type seen struct {
		key     []byte
		expires time.Time
	}
	var recs []seen
	var latest time.Time
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUplinkCommands).ForEach(func(k, v []byte) error {
			rec, ok := pruneFields(v)
			if !ok {
				return nil
			}
			if rec.Handled.After(latest) {
				latest = rec.Handled
			}
			recs = append(recs, seen{key: bytes.Clone(k), expires: rec.Expires})
			return nil
		})
	})
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	cutoff := now
	if latest.Before(cutoff) {
		cutoff = latest
	}
	cutoff = cutoff.Add(-keep)
	var old [][]byte
	for _, r := range recs {
		if r.expires.Before(cutoff) {
			old = append(old, r.key)
		}
	}
	n := 0
	for len(old) > 0 {
		part := old[:min(batch, len(old))]
		old = old[len(part):]
		err := db.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketUplinkCommands)
			for _, k := range part {
				// Looked at again: the record may have changed since the scan.
				rec, ok := pruneFields(b.Get(k))
				if !ok || !rec.Expires.Before(cutoff) {
					continue
				}
				if err := b.Delete(k); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// pruneFields reads what pruning needs of a record; false for a missing
// or damaged one, which is kept.
func pruneFields(v []byte) (rec struct {
	Expires time.Time `json:"expires_at"`
	Handled time.Time `json:"handled"`
}, ok bool) {
	if v == nil || json.Unmarshal(v, &rec) != nil || rec.Expires.IsZero() {
		return rec, false
	}
	return rec, true
}

// EachUplinkCommand calls fn with every command record, in id order; a
// record that cannot be read is passed to bad instead (nil bad: ErrCorrupt
// ends the walk). fn's error ends the walk and is returned.
func (db *DB) EachUplinkCommand(fn func(UplinkCommand) error, bad func(id string, err error)) error {
	return db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUplinkCommands).ForEach(func(k, v []byte) error {
			rec, err := decodeUplinkCommand(k, v)
			if err != nil {
				if bad == nil {
					return err
				}
				bad(string(k), err)
				return nil
			}
			return fn(rec)
		})
	})
}

func decodeUplinkCommand(k, v []byte) (UplinkCommand, error) {
	var rec UplinkCommand
	if err := json.Unmarshal(v, &rec); err != nil {
		return UplinkCommand{}, fmt.Errorf("uplink command %q: %w: %v", k, ErrCorrupt, err)
	}
	if rec.ID != string(k) {
		return UplinkCommand{}, fmt.Errorf("uplink command %q holds id %q: %w", k, rec.ID, ErrCorrupt)
	}
	if h, err := hex.DecodeString(rec.PayloadSHA256); err != nil || len(h) != 32 {
		return UplinkCommand{}, fmt.Errorf("uplink command %q: payload hash %q is not a SHA-256: %w", k, rec.PayloadSHA256, ErrCorrupt)
	}
	if !json.Valid(rec.Result) || rec.Expires.IsZero() {
		return UplinkCommand{}, fmt.Errorf("uplink command %q: no result or no expiry: %w", k, ErrCorrupt)
	}
	return rec, nil
}

// CreditedRef returns the entry that credited the payment reference ref;
// found is false when no entry did. The uplink asks it before refusing a
// trusted top-up, so that a refusal never hides a payment credited before
// (a command whose credit was kept but whose record was not, delivered
// again after it expired).
func (db *DB) CreditedRef(ref string) (e Entry, found bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketRefs).Get([]byte(ref))
		if id == nil {
			return nil
		}
		if len(id) != 8 {
			return fmt.Errorf("payment reference %q: entry id of %d bytes: %w", ref, len(id), ErrCorrupt)
		}
		var err error
		e, err = getEntry(tx, binary.BigEndian.Uint64(id))
		found = err == nil
		return err
	})
	return e, found, err
}
