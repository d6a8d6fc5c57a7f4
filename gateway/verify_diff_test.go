package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/billing/allocation"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/accounts"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/report"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// The differential test of verify: random histories of two tenant meters —
// resets and exchanges (recorded before, amid and after the new meter's
// readings, and sent again), held jumps released (and released again),
// glitches, meters offline, a meter and its tenant taken out of the
// configuration and put back, restarts, and cycles lost to a kill — whose
// true consumption is known. On every history the ledger equals the truth
// (each meter charged exactly the energy it drew, at its price) and verify
// passes; then the ledger is damaged in ways that keep every balance
// consistent (a charge dropped, doubled, stretched or mispriced), the
// ledger no longer equals the truth, and verify must fail.
//
// Finance corrects the histories too (verify_diff_books_test.go):
// top-ups (some sent again, some under a reference already used), reversals
// of top-ups, charges and adjustments (a reversal reversed and an entry
// reversed twice refused), credit and debit adjustments, retried with the
// same or other content — against a model of what each should do. The
// ledger's top-ups, adjustments, reversals and receipt numbers must be the
// model's, and damage to them (a reversal doubled or off by a fen, a
// receipt number skipped, an adjustment posted twice) must fail verify.
//
// The histories also cut meters off: each cut-off lands within a step, so
// the first reading that shows the relay open still holds energy drawn
// before it, and the relay's read-back is sometimes known, sometimes not.
// An honest cut-off draws nothing afterwards and must never raise
// bypass_suspected; a bridged one keeps drawing and must raise it once.
//
// The histories also share M-2's quarter hours out to both tenants
// (diffAllocations): posted, posted again, reversed and posted once more,
// older quarter hours after later ones; at the end every account's
// balance is what a model of the top-ups credited, the charges and the
// standing allocations makes of it, and after each posting the rule's
// latest period (where the automatic posting resumes) is the latest
// posted, whatever order they were posted in.

// diffMeter is a physical meter as the test knows it.
type diffMeter struct {
	id, tenant string
	counter    int64 // what the fitted meter shows
	drawn      int64 // true energy since its first reading was delivered
	started    bool
	lastStep   int // step of its last delivered reading
	offline    int // steps left without a reading
	swap       *diffSwap
	burst      *diffBurst
	billed     bool // its energy is charged (a tenant's meter, not a public one)
	cut        *diffCut
}

// diffCut is a relay cut off for some steps: honest (nothing drawn after
// the cut) or bridged (drawing on behind the open relay).
type diffCut struct {
	from, until int // steps: the cut lands within step from; closed again at until
	bridged     bool
	restarted   bool // the gateway restarted (or lost a cycle) during it
}

// idle reports a meter with nothing pending whose reading of step was
// delivered: a configuration change then splits no span.
func (m *diffMeter) idle(step int) bool {
	return m.swap == nil && m.burst == nil && m.cut == nil && m.offline == 0 && m.started && m.lastStep == step
}

// diffSwap is a meter exchange the operator has yet to record.
type diffSwap struct {
	oldFinal, newStart int64
	at                 time.Time
	recordAfter, seen  int  // new meter's readings before the record is entered
	undated            bool // the record leaves out when the exchange was
	repeats            int  // the same record sent again afterwards
	recorded           bool
}

// diffBurst is a real draw above the circuit's limit, held until released.
type diffBurst struct {
	releaseAfter, seen int
	repeats            int
	released           bool
}

type diffGateway struct {
	t                          *testing.T
	path                       string
	full, removed, public, cfg *config.Config
	db                         *store.DB
	pipe                       *pipeline.Pipeline
	lv                         *live.Picture
	price                      billing.Price // 0: the tariff is not flat, and money is not checked against the truth
	books                      *diffBooks    // finance's corrections; nil: not checked
}

// diffTariffs are the tariffs a history may run under: flat (its money
// checked against the truth too), time of use by the hour, and monthly
// blocks.
var diffTariffs = []string{
	"  - {name: t, kind: flat, price: '0.83'}\n",
	"  - {name: t, kind: flat, price: '1.27'}\n",
	"  - name: t\n    kind: tou\n    rates: {peak: '1.20', valley: '0.40'}\n    days:\n      - days: all\n        windows:\n" +
		"          - {from: '00:00', to: '08:30', rate: valley}\n          - {from: '08:30', to: '09:15', rate: peak}\n" +
		"          - {from: '09:15', to: '10:00', rate: valley}\n          - {from: '10:00', to: '24:00', rate: peak}\n",
	"  - name: t\n    kind: tiered\n    blocks:\n      - {up_to_kwh: 30, price: '0.90'}\n      - {up_to_kwh: 60, price: '1.05'}\n      - {price: '1.30'}\n",
}

// diffConfig is the site: M-1 (T-1) unless it is taken out, and M-2, a
// tenant meter of T-2 or a public meter.
func diffConfig(t *testing.T, tariff string, withM1, m2Public bool) *config.Config {
	t.Helper()
	src := "site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\nmeters:\n"
	if withM1 {
		src += "  - {id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1, rated_current: 60}\n"
	}
	if m2Public {
		src += "  - {id: M-2, bus: b, address: 2, model: kpm33b, role: public, rated_current: 60}\ntenants:\n"
	} else {
		src += "  - {id: M-2, bus: b, address: 2, model: kpm33b, tenant: T-2, rated_current: 60}\ntenants:\n"
	}
	if withM1 {
		src += "  - {id: T-1, name: One, tariff: t}\n"
	}
	src += "  - {id: T-2, name: Two, tariff: t}\ntariffs:\n" + tariff
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (g *diffGateway) open(now time.Time) {
	g.t.Helper()
	db, err := store.Open(g.path, store.Options{})
	if err != nil {
		g.t.Fatal(err)
	}
	g.db = db
	g.lv = live.New(g.cfg, "test", g.path, time.Now)
	if g.pipe, err = pipeline.New(db, g.cfg, g.lv, nil, zerolog.Nop()); err != nil {
		g.t.Fatal(err)
	}
	if err := g.pipe.SettleRemoved(now); err != nil {
		g.t.Fatal(err)
	}
}

func (g *diffGateway) restart(now time.Time) {
	g.t.Helper()
	if err := g.db.Close(); err != nil {
		g.t.Fatal(err)
	}
	g.open(now)
}

// cycle commits readings taken at at; each read began two seconds before.
func (g *diffGateway) cycle(at time.Time, readings []meter.Reading) {
	c := poll.Cycle{Bus: "b", Start: at.Add(-2 * time.Second), End: at}
	for _, rd := range readings {
		c.Results = append(c.Results, poll.Result{Meter: rd.Meter, Start: rd.Time.Add(-2 * time.Second), Reading: rd})
	}
	g.pipe.Cycle(context.Background(), c)
}

func diffReading(id string, at time.Time, wh int64, zero bool) meter.Reading {
	var rd meter.Reading
	if zero {
		rd.Set(meter.Import, 0)
		rd.Set(meter.VoltageA, 0)
	} else {
		rd.Set(meter.Import, float64(wh)/1000)
		rd.Set(meter.VoltageA, 230)
	}
	rd.Meter, rd.Time = id, at
	return rd
}

func TestVerify_Differential(t *testing.T) {
	t.Parallel()
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	// The long form: MALLGRID_DIFF_SEEDS=2000 go test -run Differential ./gateway
	if n, err := strconv.Atoi(os.Getenv("MALLGRID_DIFF_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	var mu sync.Mutex
	totals := map[string]int{}
	// The histories run in parallel (each waits on its own database's
	// fsyncs most of its time); the parent's cleanup runs once all ended.
	t.Cleanup(func() { checkDiffTotals(t, seeds, totals) })
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			n := runDiffHistory(t, uint64(seed))
			mu.Lock()
			defer mu.Unlock()
			for k, v := range n {
				totals[k] += v
			}
		})
	}
}

// checkDiffTotals fails t unless the seeds histories, whose cases were
// counted in totals, held every case the test is about.
func checkDiffTotals(t *testing.T, seeds int, totals map[string]int) {
	// The histories must hold what the test is about, or it proves nothing.
	for _, k := range []string{"swap_before", "swap_pending", "swap_after_reset", "exchange_repeated", "exchange_refused", "exchange_undated",
		"release", "release_repeated", "removal", "public", "restart", "kill", "glitch", "offline", "damage", "cut", "cut_bridged",
		"allocation", "allocation_repeated", "allocation_reversed", "allocation_older",
		"topup", "topup_repeated", "ref_conflict", "reversal_topup", "reversal_charge", "reversal_adjustment", "reversal_refused",
		"reversal_twice", "adjustment_credit", "adjustment_debit", "correction_repeated", "damage_books",
		"topup_invoice", "invoice_conflict", "invoice_added", "topup_repeated_downlink", "invoice_issued", "invoice_failed", "invoice_refused", "topup_downlink"} {
		// Each at least 3 times over the full run's 40 histories, and as
		// often in proportion over another number (once at least): the
		// short run's 10 are a quarter of the full one, and a rare case
		// drawn twice there is no failure.
		if want := max(1, (3*seeds+39)/40); totals[k] < want {
			t.Errorf("%s happened %d times over the %d histories; want at least %d (all: %v)", k, totals[k], seeds, want, totals)
		}
	}
	t.Logf("over %d histories: %v", seeds, totals)
}

func runDiffHistory(t *testing.T, seed uint64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 0x76657269))
	tf := diffTariffs[seed%uint64(len(diffTariffs))]
	g := &diffGateway{t: t, path: filepath.Join(t.TempDir(), "d.db"),
		full: diffConfig(t, tf, true, false), removed: diffConfig(t, tf, false, false), public: diffConfig(t, tf, true, true)}
	switch seed % uint64(len(diffTariffs)) {
	case 0:
		g.price = 830_000
	case 1:
		g.price = 1_270_000
	}
	g.cfg = g.full
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, sh)
	g.open(t0)
	defer func() { g.db.Close() }()
	t.Cleanup(func() { checkEventTexts(t, g.path, sh) }) // once the database is closed

	meters := []*diffMeter{
		{id: "M-1", tenant: "T-1", counter: 1_000_000 + rng.Int64N(9_000_000), billed: true},
		{id: "M-2", tenant: "T-2", counter: 20_000 + rng.Int64N(1_000_000), billed: true},
	}
	publicUntil := -1 // M-2 a public meter until this step
	seen := map[string]int{}
	var cuts []cutRecord
	const steps = 160
	removedUntil := -1 // M-1 out of the configuration until this step
	removalDone := false
	op := &accounts.Operator{}
	alloc := newDiffAllocations(g.full)
	g.books = newDiffBooks(alloc.credited)
	for step := 0; step <= steps; step++ {
		now := t0.Add(time.Duration(step) * time.Minute)
		op.Pipeline, op.Now = g.pipe, func() time.Time { return now }
		quiet := step > steps-30 // no new trouble near the end: every pending action completes

		if removedUntil == step {
			g.cfg = g.full
			g.restart(now)
			op.Pipeline = g.pipe
		}
		var readings []meter.Reading
		for _, m := range meters {
			present := !(m.id == "M-1" && removedUntil > step)
			e := rng.Int64N(900)
			idle := m.swap == nil && m.burst == nil && m.cut == nil && m.offline == 0 && m.started && present && m.lastStep == step-1
			if idle && !quiet {
				switch r := rng.IntN(100); {
				case r < 3 && m.counter >= 20_000:
					m.swap = &diffSwap{oldFinal: m.counter, newStart: rng.Int64N(300), at: now.Add(-30 * time.Second),
						recordAfter: rng.IntN(6), repeats: rng.IntN(3)}
					// A record entered after the new meter's readings began
					// may leave out when: the gateway places it between them.
					m.swap.undated = m.swap.recordAfter > 0 && rng.IntN(2) == 0
					m.counter = m.swap.newStart
				case r < 5:
					e += 3_000 // a real draw above the circuit's limit: held
					m.burst = &diffBurst{releaseAfter: 1 + rng.IntN(3), repeats: rng.IntN(2)}
				case r < 8:
					m.offline = 1 + rng.IntN(4)
					seen["offline"]++
				case r < 10:
					readings = append(readings, diffReading(m.id, now, 0, true))
					seen["glitch"]++
				case r < 11:
					readings = append(readings, diffReading(m.id, now.Add(-time.Second), m.counter+10_000_000_000, false))
					seen["glitch"]++
				case r < 14 && step < steps-40:
					m.cut = &diffCut{from: step, until: step + 8 + rng.IntN(6), bridged: rng.IntN(3) == 0}
					cuts = append(cuts, cutRecord{m.id, m.cut})
					if rng.IntN(2) == 0 { // enforcement's read-back, within the step
						g.lv.SetRelay(m.id, meter.RelayOpen.String(), now.Add(-time.Duration(1+rng.IntN(50))*time.Second))
					}
					seen["cut"]++
				}
			}
			if c := m.cut; c != nil && step > c.from && !c.bridged {
				e = 0 // cut off: nothing drawn after the step the cut landed in
			}
			if c := m.cut; c != nil && step >= c.until {
				m.cut = nil // closed again: this step's reading shows it
			}
			m.counter += e
			if m.started && m.billed {
				m.drawn += e
			}
			if !present {
				continue
			}
			if m.offline > 0 {
				m.offline--
				continue
			}
			if sw := m.swap; sw != nil && !sw.recorded && sw.seen == sw.recordAfter {
				g.recordSwap(t, op, m, seen)
			}
			rd := diffReading(m.id, now, m.counter, false)
			rd.Relay = meter.RelayClosed
			if m.cut != nil {
				rd.Relay = meter.RelayOpen
			}
			readings = append(readings, rd)
		}
		if !quiet && rng.IntN(100) < 1 {
			// A kill -9 mid-cycle: the cycle's transaction never commits.
			g.restart(now)
			markRestart(meters)
			seen["kill"]++
			continue
		}
		g.cycle(now, readings)
		for _, m := range meters {
			delivered := false
			for _, rd := range readings {
				if rd.Meter == m.id && rd.Time.Equal(now) {
					if v, _ := rd.Value(meter.VoltageA); v != 0 {
						delivered = true
					}
				}
			}
			if !delivered {
				continue
			}
			m.started, m.lastStep = true, step
			if sw := m.swap; sw != nil {
				if !sw.recorded {
					sw.seen++
				} else if sw.repeats > 0 {
					g.repeatSwap(t, op, m, seen)
				} else {
					m.swap = nil
				}
			}
			if b := m.burst; b != nil {
				b.seen++
				if !b.released && b.seen >= b.releaseAfter {
					res, err := g.pipe.Release(m.id, nil, "token:till", "checked on site", now)
					if err != nil || res.Verdict != "released" {
						t.Fatalf("step %d: release of %s = %+v, %v; want released", step, m.id, res, err)
					}
					b.released = true
					seen["release"]++
				} else if b.released && b.repeats > 0 {
					res, err := g.pipe.Release(m.id, nil, "token:till", "checked on site", now)
					if err != nil || !res.Repeated {
						t.Fatalf("step %d: release of %s again = %+v, %v; want the first result, repeated", step, m.id, res, err)
					}
					b.repeats--
					seen["release_repeated"]++
				} else if b.released {
					m.burst = nil
				}
			}
		}
		switch r := rng.IntN(100); {
		case g.cfg == g.public && step >= publicUntil && meters[1].idle(step):
			// Back to a tenant's meter once its energy so far is read:
			// no span is split across the change.
			g.cfg = g.full
			g.restart(now)
			meters[1].billed = true
		case !quiet && r < 2:
			g.restart(now)
			markRestart(meters)
			seen["restart"]++
		case !quiet && r < 4 && g.cfg == g.full && meters[1].idle(step) && rng.IntN(2) == 0:
			// M-2 serves the corridors for a while: a public meter, not
			// charged; then a tenant's again.
			g.cfg = g.public
			g.restart(now)
			meters[1].billed = false
			publicUntil = min(step+3+rng.IntN(15), steps-20)
			seen["public"]++
		case !quiet && r < 4 && g.cfg == g.full && !removalDone && meters[0].idle(step):
			// M-1 and its tenant leave the configuration for a while.
			removalDone = true
			g.cfg = g.removed
			g.restart(now)
			removedUntil = step + 3 + rng.IntN(10)
			seen["removal"]++
		case r < 8:
			m := meters[rng.IntN(2)]
			if _, ok := g.cfg.Tenant(m.tenant); ok {
				g.books.topUp(t, g.ledger(now), rng, m.tenant, seen)
			}
		case r < 14:
			alloc.act(t, g, rng, now, seen)
		case r < 24:
			g.books.correct(t, g.ledger(now), rng, meters[rng.IntN(2)].tenant, seen)
		}
	}
	if g.cfg != g.full {
		t.Fatalf("history ends with the configuration changed")
	}
	for _, m := range meters {
		if m.swap != nil || m.burst != nil {
			t.Fatalf("meter %s ends with an action pending (%+v, %+v)", m.id, m.swap, m.burst)
		}
	}

	states, err := g.db.MeterStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range meters {
		mb, err := pipeline.DecodeState(states[m.id])
		if err != nil {
			t.Fatal(err)
		}
		if mb.Counter.Quarantine != nil || len(mb.Counter.Lower) != 0 || mb.Counter.Baseline.Wh != m.counter {
			t.Fatalf("meter %s ends at %d Wh with %d lower readings and %v held; want its counter %d, nothing pending",
				m.id, mb.Counter.Baseline.Wh, len(mb.Counter.Lower), mb.Counter.Quarantine, m.counter)
		}
	}
	checkCuts(t, g.db, t0, cuts, seen)
	alloc.check(t, g.db)
	// The ledger equals the truth, and verify passes.
	if diffs := g.againstTruth(meters); len(diffs) > 0 {
		t.Fatalf("ledger differs from the truth: %v", diffs)
	}
	if v, err := verify.Check(g.db); err != nil || len(v) != 0 {
		t.Fatalf("verify of a ledger equal to the truth: %v, %v; want clean", v, err)
	}
	if err := g.db.Close(); err != nil {
		t.Fatal(err)
	}

	// Damaged ledgers, balances kept consistent: verify must fail.
	for _, d := range ledgerDamages {
		if d.name == "mispriced" && g.price == 0 {
			continue // the truth's money is known for flat tariffs only
		}
		path := filepath.Join(t.TempDir(), d.name+".db")
		copyFile(t, g.path, path)
		if !rewriteLedger(t, path, rng, d.apply) {
			continue // nothing to damage (no charge yet)
		}
		db, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		dg := &diffGateway{t: t, db: db, price: g.price, books: g.books}
		differs := len(dg.againstTruth(meters)) > 0
		v, err := verify.Check(db)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !differs {
			t.Fatalf("damage %s left the ledger equal to the truth: the damage proves nothing", d.name)
		}
		if len(v) == 0 {
			t.Errorf("damage %s: the ledger differs from the truth, yet verify passes", d.name)
		}
		seen["damage"]++
		if d.books {
			seen["damage_books"]++
		}
	}
	g.open(t0.Add(steps * time.Minute)) // for the deferred Close
	return seen
}

// recordSwap enters the operator's exchange record for m's pending swap.
func (g *diffGateway) recordSwap(t *testing.T, op *accounts.Operator, m *diffMeter, seen map[string]int) {
	t.Helper()
	sw := m.swap
	req := web.ExchangeRequest{OldFinalKWh: meter.FormatKWh(sw.oldFinal), NewStartKWh: meter.FormatKWh(sw.newStart),
		At: sw.at.Format(time.RFC3339), Reason: "meter replaced"}
	if sw.undated {
		req.At = ""
		seen["exchange_undated"]++
	}
	res, err := op.Exchange(context.Background(), m.id, req, "token:till")
	if err != nil || res.Verdict != "exchanged" {
		t.Fatalf("exchange of %s after %d new readings = %+v, %v; want exchanged", m.id, sw.seen, res, err)
	}
	sw.recorded = true
	switch {
	case sw.recordAfter == 0:
		seen["swap_before"]++
	case sw.recordAfter < 3:
		seen["swap_pending"]++
	default:
		seen["swap_after_reset"]++
	}
}

// repeatSwap sends m's exchange record again, as a retry does, and a
// mistyped one that does not fit.
func (g *diffGateway) repeatSwap(t *testing.T, op *accounts.Operator, m *diffMeter, seen map[string]int) {
	t.Helper()
	sw := m.swap
	req := web.ExchangeRequest{OldFinalKWh: meter.FormatKWh(sw.oldFinal), NewStartKWh: meter.FormatKWh(sw.newStart),
		At: sw.at.Format(time.RFC3339), Reason: "meter replaced"}
	res, err := op.Exchange(context.Background(), m.id, req, "token:till")
	if err != nil || !res.Repeated {
		t.Fatalf("the same exchange of %s again = %+v, %v; want the first result, repeated", m.id, res, err)
	}
	seen["exchange_repeated"]++
	req.OldFinalKWh = meter.FormatKWh(sw.oldFinal + 1_000)
	req.At = ""
	if _, err := op.Exchange(context.Background(), m.id, req, "token:till"); !errors.Is(err, web.ErrConflict) {
		t.Fatalf("an exchange of %s that does not fit its readings: %v; want ErrConflict", m.id, err)
	}
	seen["exchange_refused"]++
	sw.repeats--
}

// againstTruth lists how the ledger differs from the truth: each meter
// charged exactly the energy it drew, its charges (posted and accrued, with
// the remainder it carries) exactly that energy at the price.
func (g *diffGateway) againstTruth(meters []*diffMeter) []string {
	g.t.Helper()
	wh := map[string]int64{}
	fen := map[string]billing.Money{}
	if err := g.db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.Charge {
			wh[e.Meter] += e.ToWh - e.FromWh
			fen[e.Meter] -= e.Amount
		}
		return nil
	}); err != nil {
		g.t.Fatal(err)
	}
	states, err := g.db.MeterStates()
	if err != nil {
		g.t.Fatal(err)
	}
	var out []string
	for _, m := range meters {
		var rem billing.Remainder
		if raw, ok := states[m.id]; ok {
			mb, err := pipeline.DecodeState(raw)
			if err != nil {
				g.t.Fatal(err)
			}
			if o := mb.Open; o != nil {
				wh[m.id] += o.ToWh - o.FromWh
				fen[m.id] += o.Amount
			}
			rem = mb.Counter.Remainder
		}
		if wh[m.id] != m.drawn {
			out = append(out, fmt.Sprintf("%s charged %d Wh; it drew %d", m.id, wh[m.id], m.drawn))
		}
		cost, _ := g.price.Cost(m.drawn)
		if got := int64(fen[m.id])*1000 + int64(rem); g.price != 0 && got != cost {
			out = append(out, fmt.Sprintf("%s charged %d nano-yuan with its remainder; %d Wh at %s is %d", m.id, got, m.drawn, g.price, cost))
		}
	}
	if g.books != nil {
		out = append(out, g.books.against(g.t, g.db)...)
	}
	return out
}

// A ledger damage rewrites the entries (balances and accounts are then
// recomputed, so that only the energy and money rules can find it); it
// reports false if there was nothing to damage. books marks a damage to
// finance's corrections rather than to the charges.
type ledgerDamage struct {
	name  string
	apply func(rng *rand.Rand, entries []store.Entry) ([]store.Entry, bool)
	books bool
}

// pickCorrection returns the index of a random entry of kind posted by
// finance (with a reference: not an allocation posting's reversal), or -1.
func pickCorrection(rng *rand.Rand, entries []store.Entry, kind store.Kind) int {
	var idx []int
	for i, e := range entries {
		if e.Kind == kind && e.Ref != "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return -1
	}
	return idx[rng.IntN(len(idx))]
}

func pickCharge(rng *rand.Rand, entries []store.Entry) int {
	var idx []int
	for i, e := range entries {
		if e.Kind == store.Charge && e.Wh > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return -1
	}
	return idx[rng.IntN(len(idx))]
}

var ledgerDamages = []ledgerDamage{
	{"dropped", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCharge(rng, es)
		if i < 0 {
			return es, false
		}
		return append(es[:i:i], es[i+1:]...), true
	}, false},
	{"doubled", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCharge(rng, es)
		if i < 0 {
			return es, false
		}
		dup := es[i]
		dup.ID = es[len(es)-1].ID + 1
		return append(es, dup), true
	}, false},
	{"stretched", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCharge(rng, es)
		if i < 0 {
			return es, false
		}
		k := 1 + rng.Int64N(500)
		es[i].ToWh += k
		es[i].Wh += k
		cost, _ := es[i].UnitPrice.Cost(k)
		es[i].Amount -= billing.Money(cost / 1000 / int64(billing.Fen) * int64(billing.Fen))
		return es, true
	}, false},
	{"mispriced", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCharge(rng, es)
		if i < 0 {
			return es, false
		}
		es[i].Amount -= billing.Fen
		return es, true
	}, false},
	// Finance's corrections, damaged with the balances kept consistent.
	{"reversal_doubled", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCorrection(rng, es, store.Reversal)
		if i < 0 {
			return es, false
		}
		dup := es[i]
		dup.ID = es[len(es)-1].ID + 1
		return append(es, dup), true
	}, true},
	{"reversal_off_by_a_fen", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCorrection(rng, es, store.Reversal)
		if i < 0 {
			return es, false
		}
		es[i].Amount += billing.Fen
		return es, true
	}, true},
	{"receipt_skipped", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCorrection(rng, es, store.TopUp)
		if i < 0 {
			return es, false
		}
		es[i].Receipt++ // a number skipped before it (or given twice, if the next had it)
		return es, true
	}, true},
	{"adjustment_doubled", func(rng *rand.Rand, es []store.Entry) ([]store.Entry, bool) {
		i := pickCorrection(rng, es, store.Adjustment)
		if i < 0 {
			return es, false
		}
		dup := es[i]
		dup.ID = es[len(es)-1].ID + 1
		return append(es, dup), true
	}, true},
}

// rewriteLedger applies damage to the ledger of the database at path and
// rewrites every entry's balance and every account so that they agree.
func rewriteLedger(t *testing.T, path string, rng *rand.Rand, damage func(*rand.Rand, []store.Entry) ([]store.Entry, bool)) bool {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	changed := false
	err = b.Update(func(tx *bolt.Tx) error {
		var entries []store.Entry
		if err := tx.Bucket([]byte("entries")).ForEach(func(_, v []byte) error {
			var e store.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			entries = append(entries, e)
			return nil
		}); err != nil {
			return err
		}
		entries, changed = damage(rng, entries)
		if !changed {
			return nil
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].ID < entries[j].ID })
		for _, name := range []string{"entries", "by_account", "accounts"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		accts := map[string]*store.Account{}
		for _, e := range entries {
			a := accts[e.Account]
			if a == nil {
				a = &store.Account{ID: e.Account}
				accts[e.Account] = a
			}
			e.Balance = a.Balance + e.Amount
			a.Balance, a.Entries, a.LastEntry, a.Updated = e.Balance, a.Entries+1, e.ID, e.Time
			key := binary.BigEndian.AppendUint64(nil, e.ID)
			raw, _ := json.Marshal(e)
			if err := tx.Bucket([]byte("entries")).Put(key, raw); err != nil {
				return err
			}
			idx, err := tx.Bucket([]byte("by_account")).CreateBucketIfNotExists([]byte(e.Account))
			if err != nil {
				return err
			}
			if err := idx.Put(key, nil); err != nil {
				return err
			}
		}
		for id, a := range accts {
			raw, _ := json.Marshal(a)
			if err := tx.Bucket([]byte("accounts")).Put([]byte(id), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// cutRecord is a meter's cut-off as it happened.
type cutRecord struct {
	meter string
	cut   *diffCut
}

// markRestart notes a restart during every cut under way: the gateway
// forgets where an open spell began and judges from the next readings.
func markRestart(meters []*diffMeter) {
	for _, m := range meters {
		if m.cut != nil {
			m.cut.restarted = true
		}
	}
}

// checkCuts holds the history's bypass_suspected events against its
// cut-offs: none for an honest one, one for a bridged one (at most one if
// a restart fell in it), none outside a cut.
func checkCuts(t *testing.T, db *store.DB, t0 time.Time, cuts []cutRecord, seen map[string]int) {
	t.Helper()
	evs, err := db.LastEvents(100_000)
	if err != nil {
		t.Fatal(err)
	}
	stepOf := func(at time.Time) int { return int(at.Sub(t0) / time.Minute) }
	counted := make(map[*diffCut]int)
	for _, e := range evs {
		if e.Kind != "bypass_suspected" {
			continue
		}
		step, found := stepOf(e.Time), false
		for _, c := range cuts {
			if c.meter == e.Meter && step > c.cut.from && step < c.cut.until {
				counted[c.cut]++
				found = true
			}
		}
		if !found {
			t.Errorf("bypass_suspected for %s at step %d, in no cut-off: %s", e.Meter, step, e.Text)
		}
	}
	for _, c := range cuts {
		n := counted[c.cut]
		switch {
		case !c.cut.bridged && n != 0:
			t.Errorf("%s cut off honestly at step %d: %d bypass_suspected; want none", c.meter, c.cut.from, n)
		case c.cut.bridged && !c.cut.restarted && n != 1:
			t.Errorf("%s bridged from step %d to %d: %d bypass_suspected; want 1", c.meter, c.cut.from, c.cut.until, n)
		case c.cut.bridged && n > 1:
			t.Errorf("%s bridged from step %d: %d bypass_suspected; want at most 1", c.meter, c.cut.from, n)
		}
		if c.cut.bridged {
			seen["cut_bridged"]++
		}
	}
}

// diffAllocations shares M-2's quarter hours out to T-1 and T-2 (60 % by
// fixed quotas of 30 % and 70 %, 40 % by consumption) and keeps the model
// of what each account should hold: top-ups credited less the standing
// allocations (the charges are held against the truth by againstTruth).
type diffAllocations struct {
	rule     config.Allocation
	credited map[string]billing.Money
	shared   map[string]billing.Money    // Σ standing allocations by tenant
	standing map[time.Time]store.Posting // by quarter hour
	// latestTo is the greatest To of the rule's postings, reversed or not:
	// where the automatic posting resumes (store.DB.LatestPosting), so
	// that a reversed period is not posted again when an older one is
	// posted after it.
	latestTo time.Time
}

func newDiffAllocations(cfg *config.Config) *diffAllocations {
	tf, _ := cfg.TariffOf("T-2")
	return &diffAllocations{
		rule: config.Allocation{Name: "corridors", Meters: []string{"M-2"}, Tenants: []string{"T-1", "T-2"}, TariffName: "t", Tariff: tf,
			Weights: []allocation.Weight{{Kind: allocation.Fixed, PPM: 600_000}, {Kind: allocation.Consumption, PPM: 400_000}},
			Quotas:  map[string]int64{"T-1": 300_000, "T-2": 700_000}, Period: config.PeriodDay},
		credited: map[string]billing.Money{}, shared: map[string]billing.Money{},
		standing: map[time.Time]store.Posting{},
	}
}

// act posts one of the last four finished quarter hours (again, if it
// stands: the store must answer with the first), or reverses a standing
// one.
func (a *diffAllocations) act(t *testing.T, g *diffGateway, rng *rand.Rand, now time.Time, seen map[string]int) {
	t.Helper()
	if len(a.standing) > 0 && rng.IntN(3) == 0 {
		var qs []time.Time
		for q := range a.standing {
			qs = append(qs, q)
		}
		sort.Slice(qs, func(i, j int) bool { return qs[i].Before(qs[j]) })
		q := qs[rng.IntN(len(qs))]
		p, err := g.db.ReverseAllocation(a.standing[q].ID, "token:books", "recounted", now)
		if err != nil {
			t.Fatalf("reverse posting %d: %v", a.standing[q].ID, err)
		}
		if _, err := g.db.ReverseAllocation(p.ID, "token:books", "again", now); !errors.Is(err, store.ErrPostingReversed) {
			t.Fatalf("reverse posting %d twice: %v; want ErrPostingReversed", p.ID, err)
		}
		for _, s := range p.Shares {
			a.shared[s.Tenant] -= s.Amount
		}
		delete(a.standing, q)
		seen["allocation_reversed"]++
		return
	}
	from := store.IntervalStart(now).Add(-store.IntervalLength * time.Duration(1+rng.IntN(4)))
	al, err := report.ComputeAllocation(g.db, g.cfg, a.rule, from, from.Add(store.IntervalLength))
	if errors.Is(err, allocation.ErrNoBasis) {
		return // energy on M-2 but none on the tenants' meters: nothing to share by
	}
	if err != nil {
		t.Fatalf("compute %s: %v", from, err)
	}
	p, existing, err := g.db.PostAllocation(al.Posting(from.Format(time.RFC3339), "gateway", now))
	if err != nil {
		t.Fatalf("post %s: %v", from, err)
	}
	prev, stands := a.standing[from]
	if existing != stands || (stands && p.ID != prev.ID) {
		t.Fatalf("post %s: posting %d, existing %v; the model has %d standing (%v)", from, p.ID, existing, prev.ID, stands)
	}
	if existing {
		seen["allocation_repeated"]++
		return
	}
	for _, s := range p.Shares {
		a.shared[s.Tenant] += s.Amount
	}
	a.standing[from] = p
	seen["allocation"]++
	if p.To.After(a.latestTo) {
		a.latestTo = p.To
	} else {
		seen["allocation_older"]++
	}
	if last, ok, err := g.db.LatestPosting(a.rule.Name); err != nil || !ok || !last.To.Equal(a.latestTo) {
		t.Fatalf("after posting %s: the latest posting ends %s (%v, %v); the model's latest period ends %s", from, last.To, ok, err, a.latestTo)
	}
}

// check holds every account's balance against the model: top-ups credited
// less charges (posted) less standing allocations.
func (a *diffAllocations) check(t *testing.T, db *store.DB) {
	t.Helper()
	charged := map[string]billing.Money{}
	if err := db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.Charge {
			charged[e.Account] -= e.Amount
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"T-1", "T-2"} {
		want := a.credited[id] - charged[id] - a.shared[id]
		acct, err := db.Account(id)
		if err != nil && !errors.Is(err, store.ErrNoAccount) {
			t.Fatal(err)
		}
		if acct.Balance != want {
			t.Errorf("%s: balance %s; the model says %s (top-ups %s, charges %s, allocations %s)", id, acct.Balance, want, a.credited[id], charged[id], a.shared[id])
		}
	}
}
