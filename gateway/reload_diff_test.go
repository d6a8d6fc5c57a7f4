package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// The differential test of reloads: random histories of three tenant
// meters' readings, with the configuration reloaded in between — tariffs'
// prices changed, a tenant moved to the other tariff, a meter and its
// tenant added and removed, ratings and alarm rules changed, and files with
// problems that must change nothing — through the gateway's own reload
// (process.reload: the old generation stopped, the new one started on the
// same database). The truth: every Wh read is billed once, and a span
// between two readings of a meter is billed at the tariff in force when its
// closing reading is read — so the energy between the old generation's
// last reading and the new one's first is billed at the new tariff, as a
// restart with the new file bills it (README, Changing the configuration).
// Nothing read is lost or doubled, and verify passes.

// reloadPrices are the flat prices a history's tariffs take.
var reloadPrices = []string{"0.83", "1.27", "0.5123", "2.00"}

// reloadState is a configuration of the history.
type reloadState struct {
	price        [2]string // tariffs a and b
	t2           string    // T-2's tariff: a or b
	withM3       bool      // M-3 and its tenant T-3 (tariff b) configured
	warning      int       // rating R's warning_1 in yuan
	overloadX10  int       // the overload alarm's factor × 10
	invalidField bool      // the file has a problem
}

func (s reloadState) yaml(path string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: {name: Reload Mall, timezone: Asia/Shanghai}\nstorage: {path: %s}\nhttp: {listen: '127.0.0.1:0'}\n", path)
	// A port that never opens: the test delivers the cycles itself.
	b.WriteString("buses: [{name: b, port: /nonexistent/ttyRELOAD}]\nmeters:\n")
	b.WriteString("  - {id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1, rated_current: 60}\n")
	b.WriteString("  - {id: M-2, bus: b, address: 2, model: kpm33b, tenant: T-2, rated_current: 60}\n")
	if s.withM3 {
		b.WriteString("  - {id: M-3, bus: b, address: 3, model: kpm33b, tenant: T-3, rated_current: 60}\n")
	}
	b.WriteString("tenants:\n  - {id: T-1, name: One, tariff: a, credit_rating: R}\n")
	fmt.Fprintf(&b, "  - {id: T-2, name: Two, tariff: %s, credit_rating: R}\n", s.t2)
	if s.withM3 {
		b.WriteString("  - {id: T-3, name: Three, tariff: b, credit_rating: R}\n")
	}
	fmt.Fprintf(&b, "tariffs:\n  - {name: a, kind: flat, price: '%s'}\n  - {name: b, kind: flat, price: '%s'}\n", s.price[0], s.price[1])
	fmt.Fprintf(&b, "ratings:\n  - {name: R, warning_1: '%d.00', warning_2: '0', overdraft: '100000', grace: 24h, restore: '0'}\n", s.warning)
	fmt.Fprintf(&b, "alarms:\n  defaults:\n    overload: {factor: %d.%d}\n", s.overloadX10/10, s.overloadX10%10)
	if s.invalidField {
		b.WriteString("protected_hours: {tarif: x}\n")
	}
	return b.String()
}

// priceOf is the price meter id's tenant pays under s.
func (s reloadState) priceOf(t *testing.T, id string) billing.Price {
	tf := map[string]string{"M-1": "a", "M-2": s.t2, "M-3": "b"}[id]
	p, err := billing.ParsePrice(s.price[map[string]int{"a": 0, "b": 1}[tf]])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s reloadState) configured(id string) bool { return id != "M-3" || s.withM3 }

func TestReload_Differential(t *testing.T) {
	t.Parallel()
	seeds := 4
	// The long form: MALLGRID_RELOAD_SEEDS=500 go test -run Reload_Differential ./gateway
	if n, err := strconv.Atoi(os.Getenv("MALLGRID_RELOAD_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	totals := map[string]int{}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			for k, v := range runReloadHistory(t, uint64(seed)) {
				totals[k] += v
			}
		})
	}
	// The histories must hold what the test is about, or it proves nothing.
	for _, k := range []string{"reload", "price", "tenant_tariff", "meter_added", "meter_removed", "rating", "alarm", "invalid", "gap_billed"} {
		if want := max(1, seeds/2); totals[k] < want {
			t.Errorf("%s happened %d times over %d histories; want at least %d (all: %v)", k, totals[k], seeds, want, totals)
		}
	}
	t.Logf("over %d histories: %v", seeds, totals)
}

func runReloadHistory(t *testing.T, seed uint64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 0x72656c6f))
	path := filepath.Join(t.TempDir(), "m.db")
	state := reloadState{price: [2]string{reloadPrices[rng.IntN(4)], reloadPrices[rng.IntN(4)]}, t2: "a", withM3: rng.IntN(2) == 0,
		warning: 50, overloadX10: 10}
	parse := func(s reloadState) (*config.Config, error) {
		return config.Parse("reload.yaml", []byte(s.yaml(path)), nil)
	}
	cfg, err := parse(state)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var loading reloadState // what Load reads next
	p := &process{log: zerolog.Nop(), clock: now, sessions: web.NewSessions(), front: web.NewFront(nil)}
	p.opts = Options{Config: cfg, Version: "test", Now: now, Load: func() (*config.Config, error) { return parse(loading) }}
	p.setRoute(cfg)
	db, err := store.Open(path, store.Options{Route: p.routeEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p.db = db
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gen, err := p.start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	n := map[string]int{}
	ids := []string{"M-1", "M-2", "M-3"}
	counter := map[string]int64{"M-1": 5_000, "M-2": 70_000, "M-3": 123_456} // what each meter shows
	last := map[string]int64{}                                               // the last counter read, by meter
	truthWh := map[string]int64{}
	truthCost := map[string]int64{} // nano-yuan: price × Wh, exact
	reloaded := false               // the last cycle was the old generation's
	for step := range 30 {
		clock.Add(int64(time.Minute))
		at := now()
		c := poll.Cycle{Bus: "b", Start: at.Add(-2 * time.Second), End: at}
		for _, id := range ids {
			counter[id] += int64(rng.IntN(200)) // drawn whether or not the gateway reads it
			if !state.configured(id) {
				continue
			}
			if prev, ok := last[id]; ok {
				if prev != counter[id] && reloaded {
					n["gap_billed"]++
				}
				wh := counter[id] - prev
				truthWh[id] += wh
				cost, _ := state.priceOf(t, id).Cost(wh)
				truthCost[id] += cost
			}
			last[id] = counter[id]
			rd := diffReading(id, at, counter[id], false)
			c.Results = append(c.Results, poll.Result{Meter: id, Start: at.Add(-2 * time.Second), Reading: rd})
		}
		gen.pipe.Cycle(ctx, c)
		reloaded = false

		if rng.IntN(4) != 0 {
			continue
		}
		next := state
		switch rng.IntN(7) {
		case 0:
			next.price[rng.IntN(2)] = reloadPrices[rng.IntN(4)]
			n["price"]++
		case 1:
			next.t2 = map[string]string{"a": "b", "b": "a"}[state.t2]
			n["tenant_tariff"]++
		case 2, 6: // the likeliest: each removal and addition splits spans
			next.withM3 = !state.withM3
			n[map[bool]string{true: "meter_added", false: "meter_removed"}[next.withM3]]++
		case 3:
			next.warning = 10 + rng.IntN(90)
			n["rating"]++
		case 4:
			next.overloadX10 = 10 + rng.IntN(10)
			n["alarm"]++
		case 5:
			next.invalidField = true
			n["invalid"]++
		}
		loading = next
		before := gen
		if gen, err = p.reload(ctx, gen); err != nil {
			t.Fatalf("step %d: reload: %v", step, err)
		}
		if next.invalidField {
			if gen != before {
				t.Fatalf("step %d: a file with a problem replaced the generation", step)
			}
			continue
		}
		if gen == before {
			t.Fatalf("step %d: a valid file did not replace the generation", step)
		}
		n["reload"]++
		reloaded = true
		state = next
	}
	gen.stop()

	// Charged, posted or still open, against the truth.
	wh := map[string]int64{}
	nano := map[string]int64{}
	if err := db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.Charge {
			wh[e.Meter] += e.ToWh - e.FromWh
			nano[e.Meter] -= int64(e.Amount) * 1000
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	states, err := db.MeterStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if raw, ok := states[id]; ok {
			mb, err := pipeline.DecodeState(raw)
			if err != nil {
				t.Fatal(err)
			}
			if o := mb.Open; o != nil {
				wh[id] += o.ToWh - o.FromWh
				nano[id] += int64(o.Amount) * 1000
			}
			nano[id] += int64(mb.Counter.Remainder)
		}
		if wh[id] != truthWh[id] {
			t.Errorf("%s charged %d Wh; %d Wh were read", id, wh[id], truthWh[id])
		}
		if nano[id] != truthCost[id] {
			t.Errorf("%s charged %d nano-yuan with its remainder; at the tariffs in force when read it is %d", id, nano[id], truthCost[id])
		}
	}
	if v, err := verify.Check(db); err != nil || len(v) != 0 {
		t.Errorf("verify: %v, %v", v, err)
	}
	return n
}
