package upfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zoneinfo

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

// t0 is 10:07 in Shanghai: seven minutes into a quarter hour.
var t0 = time.Date(2026, 12, 1, 10, 7, 0, 0, shanghai)

// rig is a feed over a real database file with a fake clock.
type rig struct {
	t     testing.TB
	path  string
	db    *store.DB
	cfg   *config.Config
	clock time.Time
	feed  *Feed
	// accounts and health are what the providers return.
	accounts []Account
	health   []MeterHealth
	buses    []Bus
}

func newRig(t testing.TB, meters int) *rig {
	t.Helper()
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "m.db"), cfg: &config.Config{Location: shanghai}, clock: t0}
	for i := range meters {
		m := config.Meter{ID: fmt.Sprintf("M-%04d", i+1), Role: config.TenantMeter, Tenant: fmt.Sprintf("T-%d", i%3+1)}
		if i == 1 {
			m.Role, m.Tenant = config.PublicMeter, ""
		}
		r.cfg.Meters = append(r.cfg.Meters, m)
	}
	r.accounts = []Account{{Tenant: "T-2", Balance: 12_500_000, State: "normal", Relay: "closed"}, {Tenant: "T-1", Balance: -3_000_000, State: "cut_off", Relay: "open"}}
	r.health = []MeterHealth{{Meter: "M-0001", Online: true, LastSeen: t0.Add(-time.Minute)}, {Meter: "M-0002", Errors: 4}}
	r.buses = []Bus{{Name: "rs485-b", Up: false}, {Name: "rs485-a", Up: true}}
	r.open()
	t.Cleanup(func() { _ = r.db.Close() })
	return r
}

// open opens the file and makes a new Feed on it: a gateway's start.
func (r *rig) open() {
	r.t.Helper()
	db, err := store.Open(r.path, store.Options{LockTimeout: time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	r.db = db
	r.feed = &Feed{
		DB: db, SiteID: "riverside-plaza", Config: r.cfg, Now: func() time.Time { return r.clock },
		Accounts: func() ([]Account, error) { return slices.Clone(r.accounts), nil },
		Meters:   func() []MeterHealth { return slices.Clone(r.health) },
		Buses:    func() []Bus { return slices.Clone(r.buses) },
		Version:  "1.15.0", Log: zerolog.Nop(),
	}
}

// restart closes the database and opens it again with a new Feed.
func (r *rig) restart() {
	r.t.Helper()
	if err := r.db.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.open()
}

// round runs rounds until one leaves no work, as Run does.
func (r *rig) round() {
	r.t.Helper()
	for range 1000 {
		more, err := r.feed.Round(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if !more {
			return
		}
	}
	r.t.Fatal("rounds never finished")
}

// outbox returns every message not acknowledged, oldest first.
func (r *rig) outbox(after uint64) []store.UplinkMessage {
	r.t.Helper()
	var out []store.UplinkMessage
	for {
		page, err := r.db.UplinkAfter(after, 100)
		if err != nil {
			r.t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

func kinds(ms []store.UplinkMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Kind)
	}
	return out
}

func decode[T any](t *testing.T, m store.UplinkMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("message %d (%s): %v", m.Seq, m.Kind, err)
	}
	return v
}

func (r *rig) topUp(tenant, ref string, yuan int64, inv *store.Invoice) store.Entry {
	r.t.Helper()
	e, _, _, err := r.db.PostTopUpWith(store.Entry{Time: r.clock, Account: tenant, Kind: store.TopUp, Amount: billing.Money(yuan) * billing.Yuan, Ref: ref, Channel: "wechat", Actor: "till"}, store.TopUpOptions{Invoice: inv})
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

// cycle commits what a bus cycle at the clock's time would: readings of
// the meters, wh each into the present quarter hour, and a charge of it.
func (r *rig) cycle(wh int64, meters ...string) {
	r.t.Helper()
	c := store.Cycle{}
	for _, m := range meters {
		c.Readings = append(c.Readings, store.Reading{Meter: m, Time: r.clock, ImportWh: wh, Relay: "closed"})
		c.Energy = append(c.Energy, store.IntervalEnergy{Meter: m, Time: r.clock, Wh: wh})
	}
	if len(meters) > 0 {
		from := r.clock.Add(-time.Minute)
		c.Charges = append(c.Charges, store.Entry{Time: r.clock, Account: "T-1", Kind: store.Charge, Amount: -billing.Money(wh) * 1000, Meter: meters[0], Wh: wh, From: &from, To: &r.clock, Window: "flat", UnitPrice: billing.Price(billing.Yuan)})
	}
	c.Events = []store.Event{{Time: r.clock, Kind: "meter_online", Meter: meters[0], Text: "Meter answers again."}}
	if _, err := r.db.CommitCycle(c); err != nil {
		r.t.Fatal(err)
	}
}

// A day's quarter hours as the pipeline writes them: what was stored
// before the first start is not sent; the messages come in the order of
// the rounds, each source's news once, the quarter hour only once it
// closed and settled, a snapshot each quarter, a heartbeat each minute.
func TestFeed_QuarterHours(t *testing.T) {
	r := newRig(t, 2)
	r.clock = t0.Add(-20 * time.Minute)
	r.topUp("T-1", "before-1", 50, nil)
	r.cycle(100, "M-0001")
	r.clock = t0

	r.round()
	got := r.outbox(0)
	if want := []string{KindAccounts, KindMeterHealth, KindHeartbeat}; !slices.Equal(kinds(got), want) {
		t.Fatalf("first round = %v; want %v", kinds(got), want)
	}
	acc := decode[AccountsBody](t, got[0])
	if !acc.Quarter.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, shanghai)) || !acc.At.Equal(t0) || len(acc.Accounts) != 2 || acc.Accounts[0] != (AccountState{Tenant: "T-1", Balance: "-3.00", State: "cut_off", Relay: "open"}) || acc.Parts != 1 {
		t.Errorf("accounts = %+v; want T-1 first, -3.00, of 10:00 taken at 10:07", acc)
	}
	mh := decode[MeterHealthBody](t, got[1])
	if len(mh.Meters) != 2 || mh.Meters[0].LastSeen == nil || !mh.Meters[0].LastSeen.Equal(t0.Add(-time.Minute)) || mh.Meters[1].LastSeen != nil || mh.Meters[1].Errors != 4 {
		t.Errorf("meter_health = %+v", mh)
	}
	hb := decode[HeartbeatBody](t, got[2])
	if hb.Version != "1.15.0" || hb.Outbox.Head != 2 || hb.Outbox.Oldest != 1 || hb.Outbox.Depth != 2 || hb.Buses.Up != 1 || hb.Buses.Total != 2 || !slices.Equal(hb.Buses.Down, []string{"rs485-b"}) {
		t.Errorf("heartbeat = %+v; want head 2, oldest 1, depth 2, bus rs485-b down", hb)
	}
	if ts := got[0].Time.Format(time.RFC3339); ts != "2026-12-01T10:07:00+08:00" {
		t.Errorf("message time %s; want 2026-12-01T10:07:00+08:00, the site's zone", ts)
	}

	// News of the minute: two events (a cycle's and a receipt-less
	// top-up has none), a top-up with an invoice request and a charge.
	r.clock = t0.Add(time.Minute)
	top := r.topUp("T-1", "pay-1", 100, &store.Invoice{Title: "Riverside Tea Ltd", TaxID: "91310000MA1FL0000X"})
	r.cycle(50, "M-0001")
	r.round()
	r.clock = r.clock.Add(30 * time.Second)
	r.round() // the same minute, nothing new: nothing made
	got = r.outbox(3)
	if want := []string{KindEvent, KindLedger, KindHeartbeat}; !slices.Equal(kinds(got), want) {
		t.Fatalf("second minute = %v; want %v", kinds(got), want)
	}
	ev := decode[EventBody](t, got[0])
	if len(ev.Events) != 1 || ev.Events[0].Kind != "meter_online" || ev.Events[0].ID != 2 {
		t.Errorf("events = %+v; want only the new meter_online (id 2), not the one from before the start", ev)
	}
	led := decode[LedgerBody](t, got[1])
	if len(led.Entries) != 2 || led.Entries[0].ID != top.ID || led.Entries[0].Amount != "100.00" || led.Entries[0].Balance != "149.90" ||
		led.Entries[0].Invoice == nil || *led.Entries[0].Invoice != (Invoice{Title: "Riverside Tea Ltd", TaxID: "91310000MA1FL0000X", Status: store.InvoiceRequested}) ||
		led.Entries[1].Kind != "charge" || led.Entries[1].Amount != "-0.05" || led.Entries[1].UnitPrice != "1.00" || led.Entries[1].Wh != 50 || led.Entries[1].Invoice != nil {
		t.Errorf("ledger = %+v; want the top-up with its invoice request, then the charge", led.Entries)
	}

	// 10:16: a new quarter's snapshot; 10:00–10:15 is not settled yet.
	r.clock = time.Date(2026, 12, 1, 10, 16, 0, 0, shanghai)
	r.cycle(20, "M-0001")
	r.round()
	got = r.outbox(6)
	if want := []string{KindEvent, KindLedger, KindAccounts, KindMeterHealth, KindHeartbeat}; !slices.Equal(kinds(got), want) {
		t.Fatalf("10:16 = %v; want %v", kinds(got), want)
	}
	r.clock = time.Date(2026, 12, 1, 10, 17, 0, 0, shanghai)
	r.round()
	got = r.outbox(11)
	if want := []string{KindInterval, KindHeartbeat}; !slices.Equal(kinds(got), want) {
		t.Fatalf("10:17 = %v; want %v", kinds(got), want)
	}
	iv := decode[IntervalBody](t, got[0])
	wantIv := IntervalBody{Start: time.Date(2026, 12, 1, 10, 0, 0, 0, shanghai), End: time.Date(2026, 12, 1, 10, 15, 0, 0, shanghai), Part: 1, Parts: 1,
		Meters: []MeterEnergy{{Meter: "M-0001", Tenant: "T-1", Role: "tenant", Wh: 50, Final: true}, {Meter: "M-0002", Role: "public", Wh: 0, Final: false}}}
	if !iv.Start.Equal(wantIv.Start) || !iv.End.Equal(wantIv.End) || !slices.Equal(iv.Meters, wantIv.Meters) || iv.Part != 1 || iv.Parts != 1 {
		t.Errorf("interval = %+v; want %+v", iv, wantIv)
	}
	if s, _ := r.db.UplinkStats(); s.Head != 13 || s.Depth != 13 {
		t.Errorf("stats = %+v; want 13 made, none acknowledged", s)
	}
}

// A gateway down for two hours sends every quarter hour it missed, once,
// oldest first, each in parts of at most MaxBatch meters, and a batch of
// events above MaxBatch in two messages; one snapshot and one heartbeat,
// of the present.
func TestFeed_CatchUpAfterDowntime(t *testing.T) {
	r := newRig(t, 1201)
	r.round()
	start := len(r.outbox(0))
	// The link delivered what was made before the stop: no backlog.
	for seq := range uint64(start) {
		if err := r.db.AckUplink(seq + 1); err != nil {
			t.Fatal(err)
		}
	}
	r.cycle(7, "M-0001", "M-1201")
	if err := r.db.Close(); err != nil {
		t.Fatal(err)
	}
	r.clock = time.Date(2026, 12, 1, 12, 20, 0, 0, shanghai)
	r.open()
	evs := make([]store.Event, MaxBatch+3)
	for i := range evs {
		evs[i] = store.Event{Time: r.clock, Kind: "warning_1", Tenant: "T-1", Text: "Low balance."}
	}
	if _, err := r.db.PostEvents(evs...); err != nil {
		t.Fatal(err)
	}
	r.round()
	got := r.outbox(uint64(start))
	// The sources take turns: a backlog of one holds up no other.
	iv3 := []string{KindInterval, KindInterval, KindInterval}
	want := slices.Concat([]string{KindEvent, KindLedger}, iv3, []string{KindEvent})
	for range 8 { // 10:15 … 12:00
		want = append(want, iv3...)
	}
	want = append(want, KindAccounts, KindMeterHealth, KindHeartbeat)
	if !slices.Equal(kinds(got), want) {
		t.Fatalf("after downtime = %v; want %v", kinds(got), want)
	}
	var intervals []store.UplinkMessage
	events := 0
	for _, m := range got {
		switch m.Kind {
		case KindInterval:
			intervals = append(intervals, m)
		case KindEvent:
			events += len(decode[EventBody](t, m).Events)
		}
	}
	if events != MaxBatch+4 {
		t.Errorf("events sent = %d; want %d", events, MaxBatch+4)
	}
	q := time.Date(2026, 12, 1, 10, 0, 0, 0, shanghai)
	for i := 0; i < len(intervals); i += 3 {
		var meters []MeterEnergy
		for p := range 3 {
			b := decode[IntervalBody](t, intervals[i+p])
			if !b.Start.Equal(q) || b.Part != p+1 || b.Parts != 3 {
				t.Fatalf("message %d = quarter %v part %d/%d; want %v part %d/3", intervals[i+p].Seq, b.Start, b.Part, b.Parts, q, p+1)
			}
			meters = append(meters, b.Meters...)
		}
		if len(meters) != 1201 || meters[0].Meter != "M-0001" || meters[1200].Meter != "M-1201" {
			t.Fatalf("quarter %v: %d meters", q, len(meters))
		}
		// Nothing was read after 10:07: no quarter's energy is final.
		if wantWh := map[bool]int64{true: 7, false: 0}[i == 0]; meters[0].Wh != wantWh || meters[1200].Wh != wantWh || meters[1].Wh != 0 || meters[0].Final || meters[1200].Final {
			t.Errorf("quarter %v: M-0001 %+v, M-1201 %+v, M-0002 %+v; want %d Wh, not final", q, meters[0], meters[1200], meters[1], wantWh)
		}
		q = q.Add(store.IntervalLength)
	}
}

// Run makes a round at once, another at Wake, and returns nil when its
// context is cancelled.
func TestFeed_RunWakeCancel(t *testing.T) {
	r := newRig(t, 1)
	r.feed.Period = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.feed.Run(ctx) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	head := func() uint64 { s, _ := r.db.UplinkStats(); return s.Head }
	waitFor("the first round", func() bool { return head() == 3 })
	if _, err := r.db.PostEvents(store.Event{Time: t0, Kind: "bus_down", Bus: "a", Text: "Bus a is down."}); err != nil {
		t.Fatal(err)
	}
	r.feed.Wake()
	waitFor("the round at Wake", func() bool { return head() == 4 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v; want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// sender plays gateway/uplink: it reads what is new in the outbox, keeps
// a copy of every message it saw, and acknowledges some of them.
type sender struct {
	last    uint64
	seen    []store.UplinkMessage
	unacked []uint64
}

func (s *sender) read(r *rig) {
	for _, m := range r.outbox(s.last) {
		s.seen = append(s.seen, m)
		s.unacked = append(s.unacked, m.Seq)
		s.last = m.Seq
	}
}

// A seeded random history of pipeline writes, clock steps (some of hours,
// some back), rounds cut off at MaxSteps, restarts and acknowledgements in
// any order: what went up is exactly what a model of the writes says —
// every event and entry stored after the first start once and in order,
// every quarter hour from the first start's at least once, each with the
// energy written into it when it was made and once it closed, quarters in
// order but where the clock was found behind them (an event each, none
// without a step back), after every round a snapshot of the clock's
// quarter and a heartbeat of its minute (behind a backlog, of the minute
// 15 minutes or more from the last), seqs 1…head each once.
func TestFeed_RandomHistory(t *testing.T) {
	for seed := range int64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 15))
			r := newRig(t, 3)
			meters := []string{"M-0001", "M-0002", "M-0003"}
			// Stored before the first start: never sent.
			r.cycle(5, "M-0001")
			r.topUp("T-1", "old", 10, nil)
			r.clock = r.clock.Add(time.Duration(rng.IntN(600)) * time.Second)
			first := r.clock
			var (
				s       sender
				events  []uint64 // ids stored after the first start
				entries []uint64
				// quarter start → meter → Wh; the first quarter is sent
				// whole, with what was written before the start.
				energy = map[int64]map[string]int64{store.IntervalStart(t0).Unix(): {"M-0001": 5}}
				refs   int
				// what the quarters sent held, by start, in the order made
				quarters   []int64
				backSteps  int
				rewinds    int
				heartbeats int
				backlogs   int // backlog alarms raised and cleared
				// unsent: quarters written into that must go up (again)
				// after the write; latest: the clock's furthest point.
				unsent = map[int64]bool{}
				latest time.Time
			)
			// round runs a round and checks what it made against the
			// model as it stands: the energy of each quarter sent, and a
			// snapshot and heartbeat of the clock's present.
			round := func() {
				t.Helper()
				prevBeat, _, _ := r.feed.cursor(CursorHeartbeat)
				before, err := r.db.UplinkStats()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.feed.Round(context.Background()); err != nil {
					t.Fatal(err)
				}
				from := len(s.seen)
				s.read(r)
				for _, m := range s.seen[from:] {
					switch m.Kind {
					case KindInterval:
						b := decode[IntervalBody](t, m)
						q := b.Start.Unix()
						quarters = append(quarters, q)
						delete(unsent, q)
						if m.Time.Before(b.End.Add(DefaultSettle)) {
							t.Errorf("quarter %v sent at %v, before it settled", b.Start, m.Time)
						}
						got := map[string]int64{}
						for _, me := range b.Meters {
							if me.Wh != 0 {
								got[me.Meter] = me.Wh
							}
						}
						want := energy[q]
						if want == nil {
							want = map[string]int64{}
						}
						if fmt.Sprint(got) != fmt.Sprint(want) {
							t.Errorf("quarter %v sent %v at %v; written %v", b.Start, got, m.Time, want)
						}
					case KindEvent:
						for _, e := range decode[EventBody](t, m).Events {
							switch e.Kind {
							case KindClockBehind:
								rewinds++
							case store.KindUplinkBacklog, store.KindUplinkBacklogCleared:
								backlogs++
							}
						}
					case KindHeartbeat:
						heartbeats++
					}
				}
				beat := r.clock.Truncate(time.Minute)
				// Behind a backlog, a heartbeat every 15 minutes only.
				if prev := time.Unix(int64(prevBeat), 0); backlogged(before, r.clock, BacklogAge) && beat.Sub(prev).Abs() < BacklogHeartbeat {
					beat = prev
				}
				for name, want := range map[string]time.Time{CursorHeartbeat: beat, CursorSnapshot: store.IntervalStart(r.clock)} {
					if got, _, err := r.feed.cursor(name); err != nil || int64(got) != want.Unix() {
						t.Fatalf("after a round at %v: %s cursor %v; want %v", r.clock, name, time.Unix(int64(got), 0), want)
					}
				}
			}
			round()
			cycle := func(wh int64, ms ...string) {
				before, _ := r.db.LastEvents(1)
				r.cycle(wh, ms...)
				events = append(events, before[0].ID+1)
				e, _ := r.db.EntriesAfter(0, 1<<20)
				entries = append(entries, e[len(e)-1].ID)
				q := store.IntervalStart(r.clock).Unix()
				// The quarter goes up after this write unless it was sent
				// and the clock is within a quarter of the feed's: a step
				// back of minutes is not a rewind.
				if next, _, _ := r.feed.cursor(CursorInterval); int64(next) <= q || int64(next) > q+int64(2*store.IntervalLength/time.Second) {
					unsent[q] = true
				}
				if energy[q] == nil {
					energy[q] = map[string]int64{}
				}
				for _, m := range ms {
					energy[q][m] += wh
				}
			}
			for range 300 {
				switch p := rng.IntN(100); {
				case p < 20:
					n := 1 + rng.IntN(30)
					if rng.IntN(10) == 0 {
						n = MaxBatch + rng.IntN(200)
					}
					evs := make([]store.Event, n)
					for i := range evs {
						evs[i] = store.Event{Time: r.clock, Kind: "warning_1", Tenant: "T-2", Text: "Low balance."}
					}
					stored, err := r.db.PostEvents(evs...)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range stored {
						events = append(events, e.ID)
					}
				case p < 32:
					refs++
					var inv *store.Invoice
					if refs%2 == 0 {
						inv = &store.Invoice{Title: fmt.Sprintf("Buyer %d", refs)}
					}
					entries = append(entries, r.topUp(fmt.Sprintf("T-%d", 1+rng.IntN(3)), fmt.Sprintf("ref-%d", refs), int64(1+rng.IntN(500)), inv).ID)
				case p < 52:
					var ms []string
					for _, m := range meters {
						if rng.IntN(2) == 0 {
							ms = append(ms, m)
						}
					}
					if len(ms) > 0 {
						cycle(int64(1+rng.IntN(900)), ms...)
					}
				case p < 70:
					step := time.Duration(rng.IntN(1200)) * time.Second
					switch rng.IntN(15) {
					case 0:
						step = time.Duration(1+rng.IntN(5)) * time.Hour
					case 1, 2: // the clock set back: minutes, or hours
						step = -time.Duration(1+rng.IntN(60*(1+3*rng.IntN(2)))) * time.Minute
						backSteps++
					}
					r.clock = r.clock.Add(step)
					if r.clock.After(latest) {
						latest = r.clock
					}
					if step < 0 {
						// The feed runs every 2 s: it sees a step back
						// before the pipeline writes at the new time.
						round()
					}
				case p < 85:
					round()
				case p < 90:
					r.restart()
				default:
					s.read(r)
					rng.Shuffle(len(s.unacked), func(i, j int) { s.unacked[i], s.unacked[j] = s.unacked[j], s.unacked[i] })
					n := rng.IntN(len(s.unacked) + 1)
					if err := r.db.AckUplink(s.unacked[:n]...); err != nil {
						t.Fatal(err)
					}
					s.unacked = s.unacked[n:]
				}
			}
			// Past every quarter written, their holds and settling.
			r.clock = latest.Add(2 * time.Hour)
			for more := true; more; {
				var err error
				if more, err = r.feed.Round(context.Background()); err != nil {
					t.Fatal(err)
				}
				if more {
					continue
				}
				round()
			}

			for i, m := range s.seen {
				if m.Seq != uint64(i+1) {
					t.Fatalf("message %d has seq %d; want seqs 1… each once", i, m.Seq)
				}
			}
			if st, _ := r.db.UplinkStats(); st.Head != uint64(len(s.seen)) {
				t.Fatalf("head %d; %d messages seen", st.Head, len(s.seen))
			}
			if p, err := r.db.CheckUplink(r.clock); err != nil || len(p) != 0 {
				t.Errorf("the outbox and cursors the feed kept: %q, %v; want no problem", p, err)
			}
			var gotEvents, gotEntries []uint64
			for _, m := range s.seen {
				switch m.Kind {
				case KindEvent:
					for _, e := range decode[EventBody](t, m).Events {
						gotEvents = append(gotEvents, e.ID)
					}
				case KindLedger:
					for _, e := range decode[LedgerBody](t, m).Entries {
						gotEntries = append(gotEntries, e.ID)
						if wantInv := e.Kind == "topup" && e.Ref != "" && refNumber(e.Ref)%2 == 0; wantInv != (e.Invoice != nil) {
							t.Errorf("entry %d (%s): invoice %+v; want one: %v", e.ID, e.Ref, e.Invoice, wantInv)
						}
					}
				}
			}
			// The clock-behind and backlog events are the feed's own,
			// stored among the model's: the model's ids are a subsequence.
			var ours []uint64
			for _, id := range gotEvents {
				if slices.Contains(events, id) {
					ours = append(ours, id)
				}
			}
			if !slices.Equal(ours, events) || len(gotEvents)-len(ours) != rewinds+backlogs {
				t.Errorf("events sent %d (%d rewinds, %d backlog), stored %d after the start; want the same ids in order", len(gotEvents), rewinds, backlogs, len(events))
			}
			if !slices.Equal(gotEntries, entries) {
				t.Errorf("entries sent %v; stored after the start %v", gotEntries, entries)
			}
			// Every quarter from the first start's to the last settled
			// one, at least once; in order but after a rewind.
			sent := map[int64]bool{}
			back := 0
			for i, q := range quarters {
				sent[q] = true
				if i > 0 && q != quarters[i-1]+int64(store.IntervalLength/time.Second) {
					back++
				}
			}
			for q := store.IntervalStart(first); !r.clock.Before(q.Add(store.IntervalLength + DefaultSettle)); q = q.Add(store.IntervalLength) {
				if !sent[q.Unix()] {
					t.Errorf("quarter %v never sent", q)
				}
			}
			// Two rewinds with no quarter sent between them go back once.
			if len(unsent) > 0 {
				t.Errorf("quarters written into and never sent after: %v", unsent)
			}
			if back > rewinds || rewinds > backSteps {
				t.Errorf("quarters out of order %d times; %d rewinds, %d clock steps back", back, rewinds, backSteps)
			}
			t.Logf("%d messages: %d events, %d entries, %d quarters, %d heartbeats, %d clock steps back, %d rewinds, %d backlog events", len(s.seen), len(gotEvents), len(gotEntries), len(quarters), heartbeats, backSteps, rewinds, backlogs)
		})
	}
}

func refNumber(ref string) int {
	var n int
	fmt.Sscanf(ref, "ref-%d", &n)
	return n
}

// lockedBuffer is a log sink safe for Run's goroutine and the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// A round that keeps failing (here: the database closed under the feed)
// is logged once, and again a minute later by the feed's clock — not at
// every period.
func TestFeed_RunLogsLastingFailureOnce(t *testing.T) {
	r := newRig(t, 1)
	var logs lockedBuffer
	var mu sync.Mutex
	clock := t0
	r.feed.Log = zerolog.New(&logs)
	r.feed.Period = time.Millisecond
	r.feed.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	if err := r.db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.feed.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // some 100 failed rounds
	if n := logs.count("round failed"); n != 1 {
		t.Fatalf("logged %d times in 100 failed rounds; want once", n)
	}
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for logs.count("round failed") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("logged %d times after a minute; want twice", logs.count("round failed"))
		}
		time.Sleep(time.Millisecond)
	}
}
