package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/accounts"
	"mallgrid/gateway/uplink"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// diffBooks is the model of finance's side of a differential history:
// top-ups, reversals and adjustments as the API posts them, each once per
// reference. It keeps what each should have done — the entries, what each
// reversal undid, the receipt numbers in order — and adds the money they
// move to credited, the allocations' model of money in besides charges and
// allocations.
type diffBooks struct {
	credited    map[string]billing.Money
	refs        map[string]diffPosted // reference → what was posted under it
	posted      map[uint64]diffPosted // entry id → the model's entry (top-ups, adjustments, reversals)
	reversed    map[uint64]uint64     // entry → the reversal that undid it
	receipt     map[uint64]uint64     // top-up entry → its receipt number
	lastReceipt uint64
	// invoices are the e-invoice requests the model's top-ups carry, by
	// reference: what the store must hold for each, and nothing else.
	invoices map[string]*diffInvoice
	n        int // references made
}

// diffPosted is an entry the model posted.
type diffPosted struct {
	kind     store.Kind
	account  string
	amount   billing.Money
	reverses uint64
	reason   string
	id       uint64
}

func newDiffBooks(credited map[string]billing.Money) *diffBooks {
	return &diffBooks{credited: credited, refs: map[string]diffPosted{}, posted: map[uint64]diffPosted{},
		reversed: map[uint64]uint64{}, receipt: map[uint64]uint64{}, invoices: map[string]*diffInvoice{}}
}

// ledger is the accounts API over the history's database as it is now.
func (g *diffGateway) ledger(now time.Time) *accounts.Ledger {
	return &accounts.Ledger{DB: g.db, Config: g.cfg, Now: func() time.Time { return now }, Log: zerolog.Nop()}
}

func (b *diffBooks) ref(prefix string) string {
	b.n++
	return fmt.Sprintf("%s-%d", prefix, b.n)
}

// anyRef returns a reference the model posted under that keep accepts
// (nil: any), at random.
func (b *diffBooks) anyRef(rng *rand.Rand, keep func(diffPosted) bool) (string, diffPosted, bool) {
	var refs []string
	for ref, p := range b.refs {
		if keep == nil || keep(p) {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return "", diffPosted{}, false
	}
	sort.Strings(refs) // the rng's choice, not the map's order
	ref := refs[rng.IntN(len(refs))]
	return ref, b.refs[ref], true
}

func randomAmount(rng *rand.Rand) billing.Money {
	return billing.Money(1+rng.IntN(50_000)) * billing.Fen
}

// diffInvoice is an e-invoice request as the model knows it: as it was
// asked for (the store keeps the tax id upper-cased), and its status.
type diffInvoice struct {
	req            web.InvoiceRequest
	taxID          string // req.TaxID as stored
	entry          uint64
	status, number string
}

// randomInvoice is an e-invoice request, a person's or a company's, or
// none; its tax id is sometimes sent in lower case.
func randomInvoice(rng *rand.Rand, n int) *web.InvoiceRequest {
	switch rng.IntN(3) {
	case 0:
		return nil
	case 1:
		return &web.InvoiceRequest{Title: fmt.Sprintf("张%d", n)}
	}
	id := fmt.Sprintf("91310000MA1F%06d", n)
	if rng.IntN(2) == 0 {
		id = strings.ToLower(id)
	}
	return &web.InvoiceRequest{Title: fmt.Sprintf("上海某某%d贸易有限公司", n), TaxID: id, Email: "ap@acme.example"}
}

// topUp credits tenant a payment: a new one, with an e-invoice request or
// without; the same one again (the first entry back), with the same
// request or none; the same one with its request changed (at the till a
// 409 that comes with the first entry; down from the platform ok,
// existing, "invoice":"conflict" — nothing credited or changed either
// way) or added to an entry that had none (the first entry, the request
// stored); or another under a reference already used (409). Or upstream
// answers an invoice request (issued, failed, re-issued; another number
// for an issued one refused) — money is never touched by invoices.
func (b *diffBooks) topUp(t *testing.T, l *accounts.Ledger, rng *rand.Rand, tenant string, seen map[string]int) {
	t.Helper()
	ctx := context.Background()
	if rng.IntN(4) == 0 && b.invoiceStatus(t, l, rng, seen) {
		return
	}
	again := func(p diffPosted) bool { return p.kind == store.TopUp && p.account == tenant }
	if rng.IntN(2) == 0 {
		again = nil // any reference: a conflict
	}
	if ref, p, ok := b.anyRef(rng, again); ok && rng.IntN(3) == 0 {
		req := web.TopUpRequest{Amount: p.amount.String(), Ref: ref, Channel: "cash"}
		if again != nil {
			inv, r := b.invoices[ref], rng.IntN(3)
			switch {
			case r == 0 && inv != nil: // the request changed on a retry
				changed := inv.req
				changed.Title += " 分公司"
				if changed.TaxID == "" {
					changed.TaxID = "91310000MA1FL0XX0X"
				}
				req.Invoice = &changed
			case r < 2 && inv == nil: // a request added on a retry (the payment taken at the till, the invoice asked for after)
				req.Invoice = &web.InvoiceRequest{Title: "张三"}
				r = 0
			case r == 1 && inv != nil:
				same := inv.req
				req.Invoice = &same
			}
			// Half the retries come down from the platform (chosen by the
			// entry's id: no draw of rng, so the histories stay as they
			// were): the same payment paid upstream after it was entered at
			// the till, or sent down again.
			var e web.EntryView
			var existing, conflict bool
			var err error
			if p.id%2 == 0 {
				var invoice string
				e, existing, invoice, err = downlinkTopUp(l, fmt.Sprintf("cmd-%s-again-%d", ref, seen["topup_repeated_downlink"]), tenant, p.amount, ref, req.Invoice)
				conflict = invoice == uplink.InvoiceConflict
				seen["topup_repeated_downlink"]++
			} else {
				e, existing, err = l.TopUp(ctx, tenant, req, "token:till")
				// At the till another request is a 409 for the operator,
				// with the entry that credited the payment.
				conflict = errors.Is(err, web.ErrConflict) && errors.Is(err, store.ErrInvoiceConflict)
				if conflict {
					err = nil
				}
			}
			if err != nil || !existing || e.ID != p.id || conflict != (r == 0 && inv != nil) {
				t.Fatalf("top-up %s again (invoice request %+v, the model's %+v): entry %d, existing %v, invoice conflict %v, %v; want entry %d, existing, a conflict only for a changed request",
					ref, req.Invoice, inv, e.ID, existing, conflict, err, p.id)
			}
			switch {
			case r == 0 && inv != nil:
				seen["invoice_conflict"]++
			case r == 0:
				b.invoices[ref] = &diffInvoice{req: *req.Invoice, taxID: strings.ToUpper(req.Invoice.TaxID), entry: p.id, status: store.InvoiceRequested}
				seen["invoice_added"]++
			default:
				seen["topup_repeated"]++
			}
			if invs, err := l.DB.Invoices([]string{ref}); err != nil || (invs[ref].Title != "") != (b.invoices[ref] != nil) ||
				(b.invoices[ref] != nil && invs[ref].Title != b.invoices[ref].req.Title) {
				t.Fatalf("top-up %s again: invoice request %+v, %v; the model's is %+v", ref, invs[ref], err, b.invoices[ref])
			}
			return
		}
		req.Amount = (max(p.amount, -p.amount) + billing.Fen).String()
		if _, _, err := l.TopUp(ctx, tenant, req, "token:till"); !errors.Is(err, web.ErrConflict) {
			t.Fatalf("top-up under %s's reference %s: %v; want ErrConflict", p.kind, ref, err)
		}
		seen["ref_conflict"]++
		return
	}
	amount, ref := randomAmount(rng), b.ref("PAY")
	inv := randomInvoice(rng, b.n)
	var e web.EntryView
	var existing bool
	var err error
	if b.n%4 == 0 { // paid upstream: a signed command down (no draw of rng, so the histories stay as they were)
		e, existing, _, err = downlinkTopUp(l, "cmd-"+ref, tenant, amount, ref, inv)
		seen["topup_downlink"]++
	} else {
		e, existing, err = l.TopUp(ctx, tenant, web.TopUpRequest{Amount: amount.String(), Ref: ref, Channel: "cash", Note: "till " + ref, Invoice: inv}, "token:till")
	}
	if err != nil || existing || e.Amount != amount.String() {
		t.Fatalf("top-up %s of %s = %+v, %v, %v", ref, amount, e, existing, err)
	}
	if inv != nil {
		b.invoices[ref] = &diffInvoice{req: *inv, taxID: strings.ToUpper(inv.TaxID), entry: e.ID, status: store.InvoiceRequested}
		seen["topup_invoice"]++
	}
	b.lastReceipt++
	if want := store.ReceiptNumber(b.lastReceipt); e.Receipt != want {
		t.Fatalf("top-up %s: receipt %s; the model's next is %s", ref, e.Receipt, want)
	}
	b.receipt[e.ID] = b.lastReceipt
	b.record(ref, diffPosted{kind: store.TopUp, account: tenant, amount: amount, id: e.ID})
	seen["topup"]++
}

// invoiceStatus answers one of the model's invoice requests as upstream
// would; false when there is none to answer.
func (b *diffBooks) invoiceStatus(t *testing.T, l *accounts.Ledger, rng *rand.Rand, seen map[string]int) bool {
	t.Helper()
	var refs []string
	for ref := range b.invoices {
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return false
	}
	sort.Strings(refs)
	ref := refs[rng.IntN(len(refs))]
	inv := b.invoices[ref]
	status, number, reason := store.InvoiceIssued, fmt.Sprintf("0440%08d", rng.IntN(1e8)), ""
	if rng.IntN(3) == 0 {
		status, number, reason = store.InvoiceFailed, "", "tax office unavailable"
	}
	if inv.status == store.InvoiceIssued && rng.IntN(2) == 0 {
		status, number = store.InvoiceIssued, inv.number // the same answer delivered again
	}
	got, err := l.InvoiceStatus(context.Background(), ref, status, number, "", reason)
	if inv.status == store.InvoiceIssued && (status != store.InvoiceIssued || number != inv.number) {
		if !errors.Is(err, store.ErrInvoiceIssued) {
			t.Fatalf("invoice %s issued as %s, then %s %s: %v; want ErrInvoiceIssued", ref, inv.number, status, number, err)
		}
		seen["invoice_refused"]++
		return true
	}
	if err != nil || got.Status != status || got.Number != number || got.Entry != inv.entry {
		t.Fatalf("invoice %s %s %s = %+v, %v", ref, status, number, got, err)
	}
	inv.status, inv.number = status, number
	seen["invoice_"+status]++
	return true
}

func (b *diffBooks) record(ref string, p diffPosted) {
	b.refs[ref], b.posted[p.id] = p, p
	b.credited[p.account] += p.amount
	if p.kind == store.Reversal {
		b.reversed[p.reverses] = p.id
	}
}

// correct makes one of finance's corrections to tenant's account and holds
// the answer against the model.
func (b *diffBooks) correct(t *testing.T, l *accounts.Ledger, rng *rand.Rand, tenant string, seen map[string]int) {
	t.Helper()
	if _, ok := l.Config.Tenant(tenant); !ok {
		return
	}
	ctx := context.Background()
	reverse := func(target uint64, amount billing.Money) (web.EntryView, error) {
		ref := b.ref("REV")
		reason := fmt.Sprintf("reverse %d", target)
		e, existing, err := l.Reverse(ctx, tenant, web.ReversalRequest{Entry: target, Reason: reason, Ref: ref}, "token:books")
		if err == nil {
			if existing || e.Reverses != target || e.Amount != (-amount).String() {
				t.Fatalf("reversal of %d (%s) = %+v, existing %v; want a new entry of %s", target, amount, e, existing, -amount)
			}
			b.record(ref, diffPosted{kind: store.Reversal, account: tenant, amount: -amount, reverses: target, reason: reason, id: e.ID})
		}
		return e, err
	}
	switch r := rng.IntN(10); {
	case r < 3: // a top-up or an adjustment of the model's, reversed (or refused: reversed before)
		var ids []uint64
		for id, p := range b.posted {
			if p.account == tenant && p.kind != store.Reversal {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return
		}
		slices.Sort(ids) // the rng's choice, not the map's order
		target := b.posted[ids[rng.IntN(len(ids))]]
		if b.reversed[target.id] != 0 {
			if _, err := reverse(target.id, target.amount); !errors.Is(err, web.ErrConflict) {
				t.Fatalf("second reversal of %d: %v; want ErrConflict", target.id, err)
			}
			seen["reversal_twice"]++
			return
		}
		if _, err := reverse(target.id, target.amount); err != nil {
			t.Fatalf("reversal of %s %d: %v", target.kind, target.id, err)
		}
		if target.kind == store.TopUp {
			seen["reversal_topup"]++
		} else {
			seen["reversal_adjustment"]++
		}
	case r < 4: // a charge reversed: the meter misread, say
		page, err := l.DB.Entries(tenant, 0, 30)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Kind == store.Charge && b.reversed[e.ID] == 0 {
				if _, err := reverse(e.ID, e.Amount); err != nil {
					t.Fatalf("reversal of charge %d: %v", e.ID, err)
				}
				seen["reversal_charge"]++
				return
			}
		}
	case r < 5: // a reversal reversed: refused
		_, p, ok := b.anyRef(rng, func(p diffPosted) bool { return p.kind == store.Reversal && p.account == tenant })
		if !ok {
			return
		}
		if _, err := reverse(p.id, p.amount); !errors.Is(err, web.ErrInvalid) {
			t.Fatalf("reversal of reversal %d: %v; want ErrInvalid", p.id, err)
		}
		seen["reversal_refused"]++
	case r < 7:
		amount := randomAmount(rng)
		kind := "adjustment_credit"
		if rng.IntN(2) == 0 {
			amount, kind = -amount, "adjustment_debit"
		}
		ref, reason := b.ref("ADJ"), "correction "+kind
		e, existing, err := l.Adjust(ctx, tenant, web.AdjustmentRequest{Amount: amount.String(), Reason: reason, Ref: ref}, "token:books")
		if err != nil || existing || e.Amount != amount.String() {
			t.Fatalf("adjustment %s of %s = %+v, %v, %v", ref, amount, e, existing, err)
		}
		b.record(ref, diffPosted{kind: store.Adjustment, account: tenant, amount: amount, reason: reason, id: e.ID})
		seen[kind]++
	default: // a correction sent again: its first answer, or 409 if anything differs
		ref, p, ok := b.anyRef(rng, func(p diffPosted) bool { return p.kind != store.TopUp && p.account == tenant })
		if !ok {
			return
		}
		changed := rng.IntN(2) == 0
		reason := p.reason
		if changed {
			reason += " (edited)"
		}
		var e web.EntryView
		var existing bool
		var err error
		if p.kind == store.Reversal {
			e, existing, err = l.Reverse(ctx, tenant, web.ReversalRequest{Entry: p.reverses, Reason: reason, Ref: ref}, "token:books")
		} else {
			e, existing, err = l.Adjust(ctx, tenant, web.AdjustmentRequest{Amount: p.amount.String(), Reason: reason, Ref: ref}, "token:books")
		}
		if changed {
			if !errors.Is(err, web.ErrConflict) {
				t.Fatalf("%s %s sent again with another reason: %v; want ErrConflict", p.kind, ref, err)
			}
			seen["ref_conflict"]++
			return
		}
		if err != nil || !existing || e.ID != p.id {
			t.Fatalf("%s %s sent again = %+v, %v, %v; want entry %d back", p.kind, ref, e, existing, err, p.id)
		}
		seen["correction_repeated"]++
	}
}

// against lists how the ledger's top-ups, adjustments and finance's
// reversals differ from the model's: each entry it posted there, as
// posted; no other; the receipt numbers it expects.
func (b *diffBooks) against(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	seen := map[uint64]bool{}
	kinds := map[uint64]store.Kind{}
	err := db.EachEntry(func(e store.Entry) error {
		kinds[e.ID] = e.Kind
		if e.Kind == store.Charge || e.Kind == store.Allocation {
			return nil
		}
		p, ok := b.posted[e.ID]
		if e.Kind == store.Reversal && !ok && e.Ref == "" && kinds[e.Reverses] == store.Allocation {
			return nil // an allocation posting's reversal: the allocations' model holds it
		}
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("entry %d (%s %s of %s) is none the model posted", e.ID, e.Kind, e.Amount, e.Account))
		case seen[e.ID]:
			out = append(out, fmt.Sprintf("entry %d twice", e.ID))
		case p.kind != e.Kind || p.account != e.Account || p.amount != e.Amount || p.reverses != e.Reverses:
			out = append(out, fmt.Sprintf("entry %d is %s %s of %s reversing %d; the model posted %s %s of %s reversing %d",
				e.ID, e.Kind, e.Amount, e.Account, e.Reverses, p.kind, p.amount, p.account, p.reverses))
		case e.Kind == store.TopUp && e.Receipt != b.receipt[e.ID]:
			out = append(out, fmt.Sprintf("top-up %d has receipt %d; the model gave it %d", e.ID, e.Receipt, b.receipt[e.ID]))
		}
		seen[e.ID] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range b.posted {
		if !seen[id] {
			out = append(out, fmt.Sprintf("entry %d the model posted is not in the ledger", id))
		}
	}
	// Each top-up's invoice request is the model's, and no other is stored.
	stored, bad, err := db.AllInvoices()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, bad...)
	for _, inv := range stored {
		m, ok := b.invoices[inv.Ref]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("invoice %s is none the model asked for", inv.Ref))
		case inv.Entry != m.entry || inv.Title != m.req.Title || inv.TaxID != m.taxID || inv.Email != m.req.Email ||
			inv.Status != m.status || inv.Number != m.number:
			out = append(out, fmt.Sprintf("invoice %s is %+v; the model's is %+v", inv.Ref, inv, *m))
		}
	}
	if len(stored) != len(b.invoices) {
		out = append(out, fmt.Sprintf("%d invoice requests stored; the model asked for %d", len(stored), len(b.invoices)))
	}
	return out
}

// diffPlatformKey signs the histories' downlink top-ups.
var diffPlatformKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// downlinkTopUp credits a payment as the group's platform sends it: a
// signed topup command handled by uplink.Commands over the ledger, its
// result read back from the uplink outbox as the entry the till would have
// been given.
func downlinkTopUp(l *accounts.Ledger, id, tenant string, amount billing.Money, ref string, inv *web.InvoiceRequest) (web.EntryView, bool, string, error) {
	now := l.Now()
	cmd := map[string]any{"id": id, "site": "diff-site", "kind": "topup", "tenant": tenant, "amount": amount.String(), "ref": ref,
		"channel": "wechat", "issued_at": now, "expires_at": now.Add(time.Hour)}
	if inv != nil {
		cmd["invoice"] = inv
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return web.EntryView{}, false, "", err
	}
	msg, err := json.Marshal(map[string]string{"key_id": "k1", "payload": base64.StdEncoding.EncodeToString(payload),
		"sig": base64.StdEncoding.EncodeToString(ed25519.Sign(diffPlatformKey, payload))})
	if err != nil {
		return web.EntryView{}, false, "", err
	}
	c := &uplink.Commands{DB: l.DB, SiteID: "diff-site", Keys: map[string]ed25519.PublicKey{"k1": diffPlatformKey.Public().(ed25519.PublicKey)},
		Config: l.Config, Ledger: l, Now: l.Now, Log: zerolog.Nop()}
	if err := c.Handle(context.Background(), msg); err != nil {
		return web.EntryView{}, false, "", err
	}
	st, err := l.DB.UplinkStats()
	if err != nil {
		return web.EntryView{}, false, "", err
	}
	out, err := l.DB.UplinkAfter(st.Head-1, 1)
	if err != nil || len(out) != 1 {
		return web.EntryView{}, false, "", fmt.Errorf("the command's result: %v, %v", out, err)
	}
	var r uplink.Result
	if err := json.Unmarshal(out[0].Data, &r); err != nil {
		return web.EntryView{}, false, "", err
	}
	if r.Status != uplink.StatusOK || r.Existing == nil {
		return web.EntryView{}, false, "", fmt.Errorf("command for %s: %s", ref, out[0].Data)
	}
	return web.EntryView{ID: r.Entry, Receipt: r.Receipt, Amount: amount.String()}, *r.Existing, r.Invoice, nil
}
