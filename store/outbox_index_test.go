package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A random history of the outbox — events queueing deliveries, sends that
// fail, succeed or give up, resends, prunes — checked after every step
// against a plain list of what each delivery should be: every state's
// pages (DeliveriesBefore) list exactly the deliveries in that state,
// newest first, a page at a time; a prune deletes exactly the finished
// deliveries older than its cut, but never a dead letter whose alarm is
// open; and CheckOutbox finds every index in agreement.
func TestOutbox_RandomHistoryIndexes(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			db := openRouted(t, filepath.Join(t.TempDir(), "m.db"))
			model := map[string]Delivery{} // id → what it should be
			now := at0
			sync := func(d Delivery) { model[d.ID] = d }
			pick := func(state string) (Delivery, bool) {
				var ids []string
				for id, d := range model {
					if d.State == state {
						ids = append(ids, id)
					}
				}
				if len(ids) == 0 {
					return Delivery{}, false
				}
				slices.Sort(ids)
				return model[ids[rng.IntN(len(ids))]], true
			}
			for step := range 300 {
				now = now.Add(time.Duration(rng.IntN(120)) * time.Minute)
				switch op := rng.IntN(10); {
				case op < 3:
					kind := []string{"warning_1", "overload"}[rng.IntN(2)]
					if _, err := db.PostEvents(Event{Time: now, Kind: kind, Tenant: "T-1", Meter: "M-1"}); err != nil {
						t.Fatal(err)
					}
					all, err := db.Deliveries("", 1000)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range all {
						if _, ok := model[d.ID]; !ok {
							sync(d)
						}
					}
				case op < 5:
					if d, ok := pick(DeliveryPending); ok {
						d, err := db.MarkDelivered(d.ID, now, "p")
						if err != nil {
							t.Fatal(err)
						}
						sync(d)
					}
				case op < 6:
					if d, ok := pick(DeliveryPending); ok {
						d, err := db.AttemptFailed(d.ID, now, now.Add(time.Minute), "busy", true)
						if err != nil {
							t.Fatal(err)
						}
						sync(d)
					}
				case op < 7:
					if d, ok := pick(DeliveryPending); ok {
						d, _, err := db.DeadLetter(d.ID, now, "refused", true)
						if err != nil {
							t.Fatal(err)
						}
						sync(d)
					}
				case op < 8:
					state := []string{DeliveryDead, DeliveryDelivered}[rng.IntN(2)]
					if d, ok := pick(state); ok {
						got, _, err := db.Resend(d.ID, now, "user:ann")
						if errors.Is(err, ErrDeliveryPending) && d.State == DeliveryDelivered {
							break // its last copy is still pending
						}
						if err != nil {
							t.Fatal(err)
						}
						sync(got)
						if state == DeliveryDelivered { // a new copy: its original changed too
							orig, err := db.Delivery(got.Of)
							if err != nil {
								t.Fatal(err)
							}
							sync(orig)
						}
					}
				case op < 9 && rng.IntN(2) == 0:
					// An operator acknowledges a dead letter's alarm: it
					// stays open (acknowledged), so the prune keeps the
					// dead letter until it is resent.
					open, err := db.Alarms(AlarmActive, 1000)
					if err != nil {
						t.Fatal(err)
					}
					for _, a := range open {
						if a.Kind == KindNotifyDeadLetter {
							if _, _, err := db.AckAlarm(a.ID, "seen", "user:ann", now); err != nil {
								t.Fatal(err)
							}
							break
						}
					}
				default:
					cut := now.Add(-time.Duration(rng.IntN(600)) * time.Minute)
					var open []Alarm
					for _, state := range []string{AlarmActive, AlarmAcknowledged} {
						list, err := db.Alarms(state, 1000)
						if err != nil {
							t.Fatal(err)
						}
						open = append(open, list...)
					}
					kept := map[string]bool{}
					for _, a := range open {
						if a.Kind == KindNotifyDeadLetter {
							kept[a.Subject] = true
						}
					}
					var wantGone []string
					for id, d := range model {
						if d.State != DeliveryPending && d.Done.Before(cut) && !kept[id] {
							wantGone = append(wantGone, id)
						}
					}
					total := 0
					for {
						n, more, err := db.PruneDeliveries(cut, 1+rng.IntN(4))
						if err != nil {
							t.Fatal(err)
						}
						total += n
						if !more {
							break
						}
					}
					if total != len(wantGone) {
						t.Fatalf("step %d: prune before %v deleted %d; want %d", step, cut, total, len(wantGone))
					}
					for _, id := range wantGone {
						if _, err := db.Delivery(id); !errors.Is(err, ErrNoDelivery) {
							t.Fatalf("step %d: %s after the prune: %v; want ErrNoDelivery", step, id, err)
						}
						delete(model, id)
					}
				}
				checkDeliveryPages(t, db, model, rng)
				if problems, err := db.CheckOutbox(); err != nil || len(problems) > 0 {
					t.Fatalf("step %d: CheckOutbox = %q, %v", step, problems, err)
				}
			}
		})
	}
}

// checkDeliveryPages reads every state's deliveries page by page and holds them to
// the model.
func checkDeliveryPages(t *testing.T, db *DB, model map[string]Delivery, rng *rand.Rand) {
	t.Helper()
	for _, state := range []string{"", DeliveryPending, DeliveryDelivered, DeliveryDead} {
		var want []string
		for _, d := range model {
			if state == "" || d.State == state {
				want = append(want, fmt.Sprintf("%08d %s %s", d.Seq, d.ID, d.State))
			}
		}
		slices.Sort(want)
		slices.Reverse(want)
		var got []string
		before, size := uint64(0), 1+rng.IntN(5)
		for {
			page, err := db.DeliveriesBefore(state, before, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page {
				got = append(got, fmt.Sprintf("%08d %s %s", d.Seq, d.ID, d.State))
			}
			if len(page) < size {
				break
			}
			before = page[len(page)-1].Seq
		}
		if !slices.Equal(got, want) {
			t.Fatalf("state %q in pages of %d:\n got %q\nwant %q", state, size, got, want)
		}
	}
}

// CheckOutbox finds an index out of step with the deliveries: a delivery
// missing from its state's index, and a due key naming nothing.
func TestCheckOutbox_FindsBrokenIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db := openRouted(t, path)
	post(t, db, Event{Kind: "warning_1", Tenant: "T-1"})
	if problems, err := db.CheckOutbox(); err != nil || len(problems) > 0 {
		t.Fatalf("CheckOutbox of a whole outbox = %q, %v", problems, err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketOutboxState).Delete(stateKey(DeliveryPending, 1)); err != nil {
			return err
		}
		return tx.Bucket(bucketOutboxDue).Put(binary.BigEndian.AppendUint64(seqKey(5), 77), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	problems, err := db.CheckOutbox()
	if err != nil || len(problems) != 2 {
		t.Fatalf("CheckOutbox = %q, %v; want the missing state key and the stray due key", problems, err)
	}
}

// A schema 6 file's deliveries are indexed by the upgrade: listed by
// state, pruned when old, and CheckOutbox finds the indexes whole.
func TestOpen_UpgradesSchema6(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db := openRouted(t, path)
	post(t, db, Event{Kind: "warning_1", Tenant: "T-1"}, Event{Kind: "overload", Meter: "M-1"})
	if _, err := db.MarkDelivered("1-0-sms-t", at0, ""); err != nil {
		t.Fatal(err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOutboxState, bucketOutboxDone} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 6))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openRouted(t, path)
	if v, _ := db.SchemaVersion(); v != SchemaVersion {
		t.Errorf("schema after upgrade = %d; want %d", v, SchemaVersion)
	}
	if got, _ := db.Deliveries(DeliveryPending, 10); !slices.Equal(ids(got), []string{"2-1-hook-s0 pending", "2-1-sms-s0 pending"}) {
		t.Errorf("pending after the upgrade = %q", ids(got))
	}
	if problems, err := db.CheckOutbox(); err != nil || len(problems) > 0 {
		t.Errorf("CheckOutbox after the upgrade = %q, %v", problems, err)
	}
	if n, _, err := db.PruneDeliveries(at0.Add(time.Second), 10); err != nil || n != 1 {
		t.Errorf("prune after the upgrade = %d, %v; want the delivered one", n, err)
	}
}
