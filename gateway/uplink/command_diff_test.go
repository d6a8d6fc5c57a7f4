package uplink

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// The differential test of downlink top-ups: random histories of top-ups
// sent down by the platform — new, delivered again, replayed with other
// bytes under a used id, for a payment already entered at the till (or
// entered there after), expired, forged, for a tenant the site does not
// have, for a paid ref with another amount — with the gateway restarted
// (its database file reopened) between them, against a model of what each
// should do. Every message is answered by one result, the model's; each
// payment is credited once; each command id has one first result, and
// every delivery again is answered with it; every refusal is an event;
// balances are the model's and verify passes.

// diffCredit is a payment credited, as the model knows it.
type diffCredit struct {
	tenant  string
	amount  billing.Money
	entry   uint64
	balance billing.Money // the tenant's balance after it
}

// diffCommand is a command the gateway recorded.
type diffCommand struct {
	msg   []byte
	first Result
}

type diffModel struct {
	credits  map[string]diffCredit // by ref
	balances map[string]billing.Money
	entries  uint64
	commands map[string]diffCommand // by id: recorded
	ids      []string               // recorded ids, in order
	refs     []string               // credited refs, in order
	refusals int                    // refusals that must each be an event
	flood    map[string]time.Time   // untrusted refusals: the last event's time by reason and key
}

func TestCommands_Differential(t *testing.T) {
	seeds := uint64(8)
	// The long form: MALLGRID_UPLINK_DIFF_SEEDS=500 go test -run Differential ./gateway/uplink
	if n, err := strconv.ParseUint(os.Getenv("MALLGRID_UPLINK_DIFF_SEEDS"), 10, 32); err == nil && n > 0 {
		seeds = n
	}
	stats := map[string]int{}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			for k, n := range runCommandHistory(t, seed, 200) {
				stats[k] += n
			}
		})
	}
	t.Logf("outcomes over %d histories: %v", seeds, stats)
	for _, k := range []string{"credited", "existing", "duplicate", ReasonReplayed, ReasonRefConflict, ReasonUnknownTenant,
		ReasonExpired, ReasonBadSignature, ReasonUnknownKey, "till", "till existing", "restart", "stop between", "merged"} {
		if stats[k] == 0 {
			t.Errorf("no %q in any history: the histories do not reach it", k)
		}
	}
}

func runCommandHistory(t *testing.T, seed uint64, steps int) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 15))
	h := newHarness(t, t.TempDir())
	key := vectorKey(t)
	_, forger, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &diffModel{credits: map[string]diffCredit{}, balances: map[string]billing.Money{}, commands: map[string]diffCommand{}, flood: map[string]time.Time{}}
	stats := map[string]int{}
	nextID, nextRef := 0, 0
	newID := func() string { nextID++; return fmt.Sprintf("s%d-c%04d", seed, nextID) }
	newRef := func() string { nextRef++; return fmt.Sprintf("S%d-PAY-%04d", seed, nextRef) }
	tenants := []string{"T-101", "T-102"}
	amount := func() billing.Money { return billing.Money(1+rng.IntN(50000)) * billing.Fen }
	// pickRef is a ref credited before (nil: none yet) or a new one.
	pickRef := func(oldShare float64) (string, bool) {
		if len(m.refs) > 0 && rng.Float64() < oldShare {
			return m.refs[rng.IntN(len(m.refs))], true
		}
		return newRef(), false
	}
	command := func(id, tenant string, amt billing.Money, ref string, expires time.Time) []byte {
		return vectorCommand(id, vectorSite, fmt.Sprintf(`"tenant":%q,"amount":%q,"ref":%q,"channel":"alipay"`, tenant, amt, ref),
			h.now.Add(-time.Duration(rng.IntN(120))*time.Second), expires)
	}
	// expectTopUp is the model's answer to a top-up that is carried out,
	// and the model after it.
	expectTopUp := func(id, tenant string, amt billing.Money, ref string) Result {
		if tenant != "T-101" && tenant != "T-102" {
			m.refusals++
			return Result{ID: id, Status: StatusRefused, Reason: ReasonUnknownTenant}
		}
		if c, ok := m.credits[ref]; ok {
			if c.tenant != tenant || c.amount != amt {
				m.refusals++
				return Result{ID: id, Status: StatusRefused, Reason: ReasonRefConflict}
			}
			return okResult(id, c, true)
		}
		c := m.credit(tenant, amt, ref)
		return okResult(id, c, false)
	}
	for step := 0; step < steps; step++ {
		h.now = h.now.Add(time.Duration(rng.IntN(180)) * time.Second)
		var msg []byte
		var want Result
		var record bool // the gateway records the command
		var outcome string
		switch p := rng.IntN(100); {
		case p < 35: // a new top-up: new payment, or one paid before
			id, ref, tenant, amt := newID(), "", tenants[rng.IntN(2)], amount()
			var old bool
			if ref, old = pickRef(0.3); old {
				c := m.credits[ref]
				if rng.IntN(3) > 0 { // the same payment again, else another amount
					tenant, amt = c.tenant, c.amount
				}
			}
			if rng.IntN(25) == 0 {
				tenant = "T-999"
			}
			msg = signed(key, "k1", command(id, tenant, amt, ref, h.now.Add(time.Hour)))
			want, record = expectTopUp(id, tenant, amt, ref), true
		case p < 50 && len(m.ids) > 0: // delivered again: the first answer
			id := m.ids[rng.IntN(len(m.ids))]
			msg, want = m.commands[id].msg, m.commands[id].first
			want.Duplicate = true
			outcome = "duplicate"
		case p < 57 && len(m.ids) > 0: // another command under a used id
			id := m.ids[rng.IntN(len(m.ids))]
			msg = signed(key, "k1", command(id, tenants[rng.IntN(2)], amount(), newRef(), h.now.Add(time.Hour)))
			want = Result{ID: id, Status: StatusRefused, Reason: ReasonReplayed}
			m.refusals++
		case p < 72: // at the till: a new payment, or one the platform sent
			ref, old := pickRef(0.4)
			tenant, amt := tenants[rng.IntN(2)], amount()
			if old {
				c := m.credits[ref]
				tenant, amt = c.tenant, c.amount
				if rng.IntN(4) == 0 {
					amt += billing.Fen
				}
			}
			e, existing, err := h.ledger.TopUp(context.Background(), tenant, web.TopUpRequest{Amount: amt.String(), Ref: ref, Channel: "cash"}, "till")
			c, credited := m.credits[ref]
			switch {
			case credited && (c.tenant != tenant || c.amount != amt):
				if !errors.Is(err, web.ErrConflict) {
					t.Fatalf("step %d: till %s %s for %s = %v; want a conflict", step, ref, amt, tenant, err)
				}
			case credited:
				if err != nil || !existing || e.ID != c.entry {
					t.Fatalf("step %d: till %s again = %+v, %v, %v; want entry %d", step, ref, e, existing, err, c.entry)
				}
				stats["till existing"]++
			default:
				c := m.credit(tenant, amt, ref)
				if err != nil || existing || e.ID != c.entry || e.Balance != c.balance.String() {
					t.Fatalf("step %d: till %s = %+v, %v, %v; want entry %d, balance %s", step, ref, e, existing, err, c.entry, c.balance)
				}
				stats["till"]++
			}
			continue
		case p < 78: // expired before it came
			id := newID()
			msg = signed(key, "k1", vectorCommand(id, vectorSite, `"tenant":"T-101","amount":"10.00","ref":"`+newRef()+`","channel":"alipay"`,
				h.now.Add(-2*time.Hour), h.now.Add(-time.Duration(1+rng.IntN(3600))*time.Second)))
			want = Result{ID: id, Status: StatusRefused, Reason: ReasonExpired}
			m.refusals++
		case p < 84: // forged: another key, or a key the site does not have
			id, ref := newID(), newRef()
			cmd := command(id, "T-101", amount(), ref, h.now.Add(time.Hour))
			if rng.IntN(2) == 0 {
				msg, want = signed(forger, "k1", cmd), Result{ID: id, Status: StatusRefused, Reason: ReasonBadSignature}
			} else {
				msg, want = signed(key, "k2", cmd), Result{ID: id, Status: StatusRefused, Reason: ReasonUnknownKey}
			}
			// Its id was read before the signature was checked: the
			// message's SHA-256 goes with it.
			sum := sha256.Sum256(msg)
			want.PayloadSHA256 = hex.EncodeToString(sum[:])
			// One event a minute per key and reason (k2 is no key of
			// the site's: every unknown key counts as one).
			fk := want.Reason
			if want.Reason == ReasonBadSignature {
				fk += "|k1"
			}
			if last, ok := m.flood[fk]; !ok || h.now.Sub(last) >= time.Minute || h.now.Before(last) {
				m.flood[fk] = h.now
				m.refusals++
			} else {
				stats["merged"]++
			}
		case p < 87: // a stop between the credit and the record, then the broker's redelivery, perhaps after expiry
			id, ref, tenant, amt := newID(), newRef(), tenants[rng.IntN(2)], amount()
			msg = signed(key, "k1", command(id, tenant, amt, ref, h.now.Add(time.Hour)))
			h.cmds.Ledger = creditThenFail{h.ledger}
			if err := h.cmds.Handle(context.Background(), msg); err == nil {
				t.Fatalf("step %d: Handle with the record's write failing = nil; want its error", step)
			}
			c := m.credit(tenant, amt, ref)
			h.restart()
			m.flood = map[string]time.Time{} // a start forgets the minute
			if rng.IntN(2) == 0 {
				h.now = h.now.Add(61 * time.Minute)
			}
			want, record, outcome = okResult(id, c, true), true, "stop between"
		case p < 90:
			h.restart()
			m.flood = map[string]time.Time{}
			stats["restart"]++
			continue
		default:
			continue
		}
		data, err := h.handle(msg)
		if err != nil {
			t.Fatalf("step %d: Handle = %v", step, err)
		}
		got := decodeResult(t, data)
		got.Detail = "" // for people; the model says what, not how
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: result %+v; want %+v", step, got, want)
		}
		if record {
			first := got
			m.commands[want.ID] = diffCommand{msg: msg, first: first}
			m.ids = append(m.ids, want.ID)
		}
		if outcome == "" {
			switch {
			case want.Status == StatusRefused:
				outcome = want.Reason
			case *want.Existing:
				outcome = "existing"
			default:
				outcome = "credited"
			}
		}
		stats[outcome]++
		if step%50 == 49 {
			m.check(t, h)
		}
	}
	m.check(t, h)
	return stats
}

func okResult(id string, c diffCredit, existing bool) Result {
	return Result{ID: id, Status: StatusOK, Entry: c.entry, Receipt: fmt.Sprintf("R%08d", c.entry), Balance: c.balance.String(), Existing: &existing}
}

// credit is a new payment in the model. Every entry of these histories
// is a top-up, so entry ids and receipt numbers go together.
func (m *diffModel) credit(tenant string, amt billing.Money, ref string) diffCredit {
	m.entries++
	m.balances[tenant] += amt
	c := diffCredit{tenant: tenant, amount: amt, entry: m.entries, balance: m.balances[tenant]}
	m.credits[ref] = c
	m.refs = append(m.refs, ref)
	return c
}

// check compares the database with the model: balances, one entry per
// ref, one first result per command id and every delivery again answered
// with it, an event per refusal, and verify.
func (m *diffModel) check(t *testing.T, h *harness) {
	t.Helper()
	for tenant, want := range m.balances {
		a, err := h.db.Account(tenant)
		if err != nil || a.Balance != want {
			t.Fatalf("%s: balance %s, %v; want %s", tenant, a.Balance, err, want)
		}
	}
	perRef := map[string]int{}
	if err := h.db.EachEntry(func(e store.Entry) error {
		perRef[e.Ref]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for ref, n := range perRef {
		if n != 1 || m.credits[ref].entry == 0 {
			t.Errorf("ref %s: %d entries; want one, of a payment the model credited", ref, n)
		}
	}
	if len(perRef) != len(m.credits) {
		t.Errorf("%d refs credited; want %d", len(perRef), len(m.credits))
	}
	results, err := h.db.UplinkAfter(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	firsts := map[string]int{}
	for _, msg := range results {
		r := decodeResult(t, msg.Data)
		c, recorded := m.commands[r.ID]
		switch {
		case r.Reason == ReasonReplayed || !recorded:
		case r.Duplicate:
			want := c.first
			want.Duplicate = true
			r.Detail = ""
			if !reflect.DeepEqual(r, want) {
				t.Errorf("duplicate answer %+v; want %+v", r, want)
			}
		default:
			firsts[r.ID]++
		}
	}
	for id := range m.commands {
		if firsts[id] != 1 {
			t.Errorf("command %s: %d first results; want 1", id, firsts[id])
		}
	}
	refused := 0
	for after := uint64(0); ; {
		evs, err := h.db.EventsAfter(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Kind == KindCommandRefused {
				refused++
			}
		}
		after = evs[len(evs)-1].ID
	}
	if refused != m.refusals {
		t.Errorf("%d refusal events; want %d, one per refusal", refused, m.refusals)
	}
	v, err := verify.Check(h.db)
	if err != nil || len(v) != 0 {
		var s []string
		for _, x := range v {
			s = append(s, x.String())
		}
		t.Errorf("verify: %v\n%s", err, strings.Join(s, "\n"))
	}
}
