package upfeed

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/store"
)

// A top-up's receipt goes up as the number printed on it, the string
// command_result sends too: its own ("R00000001"), or for a top-up credited
// before receipts were numbered, its entry id's.
func TestFeed_ReceiptIsTheNumberPrinted(t *testing.T) {
	r := newRig(t, 1)
	r.round()
	top := r.topUp("T-1", "pay-1", 100, nil)
	r.round()
	var got []LedgerEntry
	for _, m := range r.outbox(0) {
		if m.Kind == KindLedger {
			got = append(got, decode[LedgerBody](t, m).Entries...)
		}
	}
	if len(got) != 1 || got[0].Receipt != top.ReceiptNo() || got[0].Receipt == "" || got[0].Receipt[0] != 'R' {
		t.Fatalf("ledger = %+v; want the top-up with receipt %q", got, top.ReceiptNo())
	}
	legacy := store.Entry{ID: 7, Time: t0, Account: "T-1", Kind: store.TopUp, Amount: billing.Yuan, Ref: "old"}
	if e := ledgerEntry(legacy, time.UTC, nil); e.Receipt != "R00000007" {
		t.Errorf("legacy top-up's receipt = %q; want R00000007 (its entry id's)", e.Receipt)
	}
	charge := store.Entry{ID: 8, Time: t0, Account: "T-1", Kind: store.Charge, Amount: -billing.Fen}
	if e := ledgerEntry(charge, time.UTC, nil); e.Receipt != "" {
		t.Errorf("charge's receipt = %q; want none", e.Receipt)
	}
}

// damage closes the rig's database, writes v under key k of bucket in the
// file itself (a record the store cannot read), and opens it again.
func (r *rig) damage(bucket string, k, v []byte) {
	r.t.Helper()
	if err := r.db.Close(); err != nil {
		r.t.Fatal(err)
	}
	raw, err := bolt.Open(r.path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := raw.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put(k, v) }); err != nil {
		r.t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.open()
}

// One unreadable record stalls its own source only: a damaged event holds
// up the events, while the ledger, the quarter hours, the snapshots and the
// heartbeat go on, and the heartbeat names the stalled source; the round's
// error names it too (Run logs it).
func TestFeed_DamagedRecordStallsOnlyItsSource(t *testing.T) {
	r := newRig(t, 1)
	r.round()
	start := len(r.outbox(0))
	r.damage("events", binary.BigEndian.AppendUint64(nil, 1), []byte(`{"id":`))
	r.topUp("T-1", "pay-1", 100, nil)
	r.clock = time.Date(2026, 12, 1, 10, 45, 0, 0, shanghai)
	more, err := r.feed.Round(context.Background())
	if err == nil || !strings.Contains(err.Error(), "event") || more {
		t.Fatalf("Round = %v, %v; want an error naming the events, no more", more, err)
	}
	got := r.outbox(uint64(start))
	if want := []string{KindLedger, KindInterval, KindInterval, KindAccounts, KindMeterHealth, KindHeartbeat}; !slices.Equal(kinds(got), want) {
		t.Fatalf("with a damaged event = %v; want %v", kinds(got), want)
	}
	if hb := decode[HeartbeatBody](t, got[len(got)-1]); !slices.Equal(hb.Stalled, []string{KindEvent}) {
		t.Errorf("heartbeat stalled = %v; want [event]", hb.Stalled)
	}
}

// A catch-up longer than a round makes the snapshots and a heartbeat in
// its first round already, not only once the backlog is worked off.
func TestFeed_BacklogRoundMakesHeartbeat(t *testing.T) {
	r := newRig(t, 1)
	r.round()
	start := len(r.outbox(0))
	r.clock = r.clock.Add(30 * 24 * time.Hour)
	more, err := r.feed.Round(context.Background())
	if err != nil || !more {
		t.Fatalf("Round = %v, %v; want more: a month of quarters", more, err)
	}
	got := kinds(r.outbox(uint64(start)))
	if n := len(got); n < 3 || !slices.Equal(got[n-3:], []string{KindAccounts, KindMeterHealth, KindHeartbeat}) {
		t.Errorf("first round of a month's catch-up = %v; want it to end with accounts, meter_health, heartbeat", got)
	}
}

// An accounts provider that fails sends no accounts snapshot — not an
// empty one — and the snapshot is made at the next round that reads them;
// meter_health goes at once, and the heartbeat names accounts stalled.
func TestFeed_AccountsErrorSkipsSnapshot(t *testing.T) {
	r := newRig(t, 1)
	fail := true
	r.feed.Accounts = func() ([]Account, error) {
		if fail {
			return nil, errors.New("ledger unreadable")
		}
		return slices.Clone(r.accounts), nil
	}
	if _, err := r.feed.Round(context.Background()); err == nil || !strings.Contains(err.Error(), "ledger unreadable") {
		t.Fatalf("Round = %v; want the provider's error", err)
	}
	got := r.outbox(0)
	if want := []string{KindMeterHealth, KindHeartbeat}; !slices.Equal(kinds(got), want) {
		t.Fatalf("accounts failing = %v; want %v", kinds(got), want)
	}
	if hb := decode[HeartbeatBody](t, got[1]); !slices.Equal(hb.Stalled, []string{KindAccounts}) {
		t.Errorf("heartbeat stalled = %v; want [accounts]", hb.Stalled)
	}
	fail = false
	r.clock = r.clock.Add(10 * time.Second)
	r.round()
	got = r.outbox(2)
	if want := []string{KindAccounts}; !slices.Equal(kinds(got), want) {
		t.Fatalf("accounts read again = %v; want %v", kinds(got), want)
	}
	if a := decode[AccountsBody](t, got[0]); len(a.Accounts) != 2 {
		t.Errorf("accounts = %+v; want both tenants", a)
	}
}

// eventsOf returns the events the messages carry.
func eventsOf(t *testing.T, ms []store.UplinkMessage) []Event {
	var out []Event
	for _, m := range ms {
		if m.Kind == KindEvent {
			out = append(out, decode[EventBody](t, m).Events...)
		}
	}
	return out
}

// intervalsOf returns the interval messages' bodies.
func intervalsOf(t *testing.T, ms []store.UplinkMessage) []IntervalBody {
	var out []IntervalBody
	for _, m := range ms {
		if m.Kind == KindInterval {
			out = append(out, decode[IntervalBody](t, m))
		}
	}
	return out
}

// A clock that jumped to 11:07 and was corrected to 10:08: heartbeats and
// snapshots go on at once (they are due when the minute or quarter differs
// from the last, not only when later), the interval cursor ahead of the
// clock is rewound to the present quarter with one event saying so, and
// that quarter goes up (again: it supersedes the one sent at 11:07) once
// it closed.
func TestFeed_ClockStepsBack(t *testing.T) {
	r := newRig(t, 1)
	r.round()
	r.clock = time.Date(2026, 12, 1, 11, 7, 0, 0, shanghai)
	r.round()
	seen := len(r.outbox(0))
	r.clock = time.Date(2026, 12, 1, 10, 8, 0, 0, shanghai)
	r.cycle(30, "M-0001")
	r.round()
	r.clock = r.clock.Add(time.Minute)
	r.round()
	got := r.outbox(uint64(seen))
	count := map[string]int{}
	for _, k := range kinds(got) {
		count[k]++
	}
	if count[KindHeartbeat] != 2 || count[KindAccounts] != 1 || count[KindMeterHealth] != 1 {
		t.Fatalf("after the clock went back to 10:08 = %v; want a heartbeat at 10:08 and 10:09, a snapshot of 10:00", kinds(got))
	}
	var behind []Event
	for _, e := range eventsOf(t, got) {
		if e.Kind == KindClockBehind {
			behind = append(behind, e)
		}
	}
	if len(behind) != 1 || behind[0].Args["resent_from_at"] != "2026-12-01T10:00:00+08:00" {
		t.Errorf("clock events = %+v; want one %s naming the quarter sent again from", behind, KindClockBehind)
	}
	seen += len(got)
	r.clock = time.Date(2026, 12, 1, 10, 16, 0, 0, shanghai)
	r.cycle(5, "M-0001")
	r.clock = r.clock.Add(DefaultSettle)
	r.round()
	iv := intervalsOf(t, r.outbox(uint64(seen)))
	if len(iv) != 1 || !iv[0].Start.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, shanghai)) || iv[0].Meters[0].Wh != 30 {
		t.Fatalf("at 10:18 = %+v; want the quarter 10:00 again, with its 30 Wh", iv)
	}
}

// A first start with the clock a day ahead, corrected an hour later: the
// quarters of the real present go up as they close (not a day later).
func TestFeed_FirstStartClockAhead(t *testing.T) {
	r := newRig(t, 1)
	r.clock = t0.Add(24 * time.Hour)
	r.round()
	r.clock = t0.Add(24*time.Hour + time.Hour)
	r.round()
	seen := len(r.outbox(0))
	r.clock = t0
	r.round()
	r.cycle(40, "M-0001")
	r.clock = time.Date(2026, 12, 1, 10, 16, 0, 0, shanghai)
	r.cycle(2, "M-0001")
	r.clock = r.clock.Add(DefaultSettle)
	r.round()
	iv := intervalsOf(t, r.outbox(uint64(seen)))
	if len(iv) != 1 || !iv[0].Start.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, shanghai)) || iv[0].Meters[0].Wh != 40 {
		t.Fatalf("at 10:18 after the correction = %+v; want the quarter 10:00, 40 Wh", iv)
	}
}

// A gateway stopped at 10:14 and started again at 10:17:30: the quarter
// 10:00–10:15 waits for the first poll after the start, which spreads the
// meter's energy of the stop back into it, and goes up with all of it
// (final); a meter that does not answer again holds its quarter an hour
// at most, then it goes up not final. A meter not read in a quarter
// holds nothing.
func TestFeed_QuarterWaitsForItsMeters(t *testing.T) {
	r := newRig(t, 3)
	r.round()
	r.clock = time.Date(2026, 12, 1, 10, 13, 0, 0, shanghai)
	r.cycle(100, "M-0001", "M-0002")
	if err := r.db.Close(); err != nil {
		t.Fatal(err)
	}
	r.clock = time.Date(2026, 12, 1, 10, 17, 30, 0, shanghai)
	r.open()
	r.round()
	seen := len(r.outbox(0))
	if iv := intervalsOf(t, r.outbox(0)); len(iv) != 0 {
		t.Fatalf("at the start, before a poll = %+v; want the quarter held for its meters", iv)
	}
	// The first poll: M-0001 answers, its 34 Wh since 10:13 spread over
	// 10:13–10:17:40, 14 of them before 10:15.
	poll := time.Date(2026, 12, 1, 10, 17, 40, 0, shanghai)
	if _, err := r.db.CommitCycle(store.Cycle{
		Readings: []store.Reading{{Meter: "M-0001", Time: poll, ImportWh: 134, Relay: "closed"}},
		Energy:   []store.IntervalEnergy{{Meter: "M-0001", Time: time.Date(2026, 12, 1, 10, 14, 0, 0, shanghai), Wh: 14}, {Meter: "M-0001", Time: poll, Wh: 20}},
	}); err != nil {
		t.Fatal(err)
	}
	r.clock = poll.Add(2 * time.Second)
	r.round()
	if iv := intervalsOf(t, r.outbox(uint64(seen))); len(iv) != 0 {
		t.Fatalf("M-0002 not read since 10:13 = %+v; want the quarter held for it", iv)
	}
	r.clock = time.Date(2026, 12, 1, 11, 16, 59, 0, shanghai)
	r.round()
	if iv := intervalsOf(t, r.outbox(uint64(seen))); len(iv) != 0 {
		t.Fatalf("at 11:16:59 = %+v; want the quarter held until 11:17 (its end, settle and an hour)", iv)
	}
	r.clock = time.Date(2026, 12, 1, 11, 17, 0, 0, shanghai)
	r.round()
	iv := intervalsOf(t, r.outbox(uint64(seen)))
	if len(iv) != 1 || !iv[0].Start.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, shanghai)) ||
		iv[0].Meters[0] != (MeterEnergy{Meter: "M-0001", Tenant: "T-1", Role: "tenant", Wh: 114, Final: true}) ||
		iv[0].Meters[1] != (MeterEnergy{Meter: "M-0002", Role: "public", Wh: 100, Final: false}) {
		t.Fatalf("at 11:17 = %+v; want 10:00 alone (10:15 waits for M-0001, read in it at 10:17:40), M-0001's 114 Wh final, M-0002's 100 not", iv)
	}
	// M-0001 answers again: 10:15 goes; M-0002 was not read in it, nor
	// in the quarters after, which go with it.
	r.cycle(1, "M-0001")
	r.round()
	if iv := intervalsOf(t, r.outbox(uint64(seen))); len(iv) != 5 || !iv[4].Start.Equal(time.Date(2026, 12, 1, 11, 0, 0, 0, shanghai)) || iv[1].Meters[0].Wh != 20 {
		t.Errorf("after M-0001's poll at 11:17 = %+v; want 10:15 (20 Wh) to 11:00", iv)
	}
}

// A link down with nobody acknowledging: heartbeats every minute until the
// oldest message waiting is ten minutes old, then every 15 minutes; once
// it is an hour old, an uplink_backlog event raises an alarm, which the
// event the backlog's draining stores clears. The heartbeat tells the
// oldest message's age.
func TestFeed_BacklogSlowsHeartbeatsAndRaisesAlarm(t *testing.T) {
	r := newRig(t, 1)
	var beats []string
	for r.clock = t0; !r.clock.After(t0.Add(61 * time.Minute)); r.clock = r.clock.Add(time.Minute) {
		from := len(r.outbox(0))
		r.round()
		for _, m := range r.outbox(uint64(from)) {
			if m.Kind == KindHeartbeat {
				beats = append(beats, m.Time.Format("15:04"))
			}
		}
	}
	want := []string{"10:07", "10:08", "10:09", "10:10", "10:11", "10:12", "10:13", "10:14", "10:15", "10:16", "10:17", "10:32", "10:47", "11:02"}
	if !slices.Equal(beats, want) {
		t.Errorf("heartbeats %v; want %v", beats, want)
	}
	all := r.outbox(0)
	var last HeartbeatBody
	for _, m := range all {
		if m.Kind == KindHeartbeat {
			last = decode[HeartbeatBody](t, m)
		}
	}
	if last.Outbox.OldestAgeS != 55*60 {
		t.Errorf("heartbeat at 11:02: oldest_age_s %d; want 3300 (the oldest made at 10:07)", last.Outbox.OldestAgeS)
	}
	alarms := func(state string) []store.Alarm {
		t.Helper()
		as, err := r.db.Alarms(state, 10)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	if as := alarms(store.AlarmActive); len(as) != 1 || as[0].Kind != store.KindUplinkBacklog {
		t.Fatalf("alarms at 11:08 = %+v; want one %s", as, store.KindUplinkBacklog)
	}
	r.clock = r.clock.Add(time.Minute)
	r.round()
	var seqs []uint64
	for _, m := range r.outbox(0) {
		seqs = append(seqs, m.Seq)
	}
	if err := r.db.AckUplink(seqs...); err != nil {
		t.Fatal(err)
	}
	r.clock = r.clock.Add(time.Second)
	r.round()
	if as := alarms(store.AlarmActive); len(as) != 0 {
		t.Errorf("alarms once drained = %+v; want the backlog's cleared", as)
	}
	var kinds []string
	for _, e := range eventsOf(t, r.outbox(0)) {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Contains(kinds, store.KindUplinkBacklogCleared) {
		t.Errorf("events after draining = %v; want %s", kinds, store.KindUplinkBacklogCleared)
	}
}
