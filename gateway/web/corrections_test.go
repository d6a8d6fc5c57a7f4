package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// booksLedger is fakeLedger with a corrected ledger: top-up 1 (receipt
// R00000005, a note) reversed by entry 2, charge 3 and allocation 5; its corrections
// answer by reference: DUP was posted before, TAKEN is another
// correction's, anything else is new.
type booksLedger struct{ fakeLedger }

func (l booksLedger) Entries(_ string, before uint64, _ int) ([]EntryView, error) {
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	all := []EntryView{
		{ID: 5, Time: at, Kind: "allocation", Amount: "-3.00", Balance: "-5.00", Actor: "allocation", Note: "corridors 2026-11"},
		{ID: 3, Time: at, Kind: "charge", Amount: "-2.00", Balance: "-2.00", Meter: "M-101", KWh: "2.000"},
		{ID: 2, Time: at, Kind: "reversal", Amount: "-100.00", Balance: "0.00", Reverses: 1, Actor: "user:finance", Note: "transfer returned"},
		{ID: 1, Time: at, Kind: "topup", Amount: "100.00", Balance: "100.00", Ref: "PAY-1", Channel: "bank", Actor: "user:finance",
			Note: "December rent month", Receipt: "R00000005", ReversedBy: 2},
	}
	var out []EntryView
	for _, e := range all {
		if before == 0 || e.ID < before {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l booksLedger) answer(ref string, e EntryView) (EntryView, bool, error) {
	switch ref {
	case "DUP":
		return e, true, nil
	case "TAKEN":
		return EntryView{}, false, fmt.Errorf("%w: reference TAKEN was another correction", ErrConflict)
	}
	l.c.add()
	return e, false, nil
}

func (l booksLedger) Reverse(_ context.Context, tenant string, req ReversalRequest, actor string) (EntryView, bool, error) {
	if tenant != "T-101" {
		return EntryView{}, false, fmt.Errorf("%w: no tenant %q", ErrNotFound, tenant)
	}
	if req.Entry == 2 {
		return EntryView{}, false, fmt.Errorf("%w: entry 2 is a reversal", ErrInvalid)
	}
	return l.answer(req.Ref, EntryView{ID: 4, Kind: "reversal", Amount: "2.00", Balance: "10.00", Reverses: req.Entry, Actor: actor, Note: req.Reason})
}

func (l booksLedger) Adjust(_ context.Context, tenant string, req AdjustmentRequest, actor string) (EntryView, bool, error) {
	if tenant != "T-101" {
		return EntryView{}, false, fmt.Errorf("%w: no tenant %q", ErrNotFound, tenant)
	}
	return l.answer(req.Ref, EntryView{ID: 4, Kind: "adjustment", Amount: req.Amount, Balance: "15.00", Actor: actor, Note: req.Reason})
}

// The tenant page shows finance the reverse buttons (on entries neither
// reversed nor reversals) and the adjustment form, and an operator
// neither; every reader sees the reversed entry marked, its reversal, the
// note and the receipt number.
func TestCorrections_Page(t *testing.T) {
	rg := newRig(t, func(o *Options) { o.Ledger = booksLedger{fakeLedger{&changes{}}} })
	c := client(t)
	page := func(token string) string {
		code, body := rg.page(t, c, "/tenants/T-101", map[string]string{"Authorization": "Bearer " + token, "Accept-Language": "en"})
		if code != 200 {
			t.Fatalf("tenant page as %s = %d", token, code)
		}
		return body
	}
	finance := page("finance-secret")
	for _, want := range []string{`id="adjust"`, `<dialog id="reverse"`, `class="reverse" data-entry="3"`,
		`class="entry-topup reversed"`, "Reversed by entry 2", "reverses entry 1", "R00000005", "December rent month", "transfer returned"} {
		if !strings.Contains(finance, want) {
			t.Errorf("finance's page lacks %s", want)
		}
	}
	// An allocation's share is undone with its posting, never alone (the
	// store refuses it): its row has no button.
	if !strings.Contains(finance, `id="entry-5" class="entry-allocation"`) {
		t.Error("finance's page lacks the allocation entry 5")
	}
	for _, not := range []string{`data-entry="1"`, `data-entry="2"`, `data-entry="5"`} {
		if strings.Contains(finance, not) {
			t.Errorf("finance's page offers a reversal of a reversed entry, a reversal or an allocation (%s)", not)
		}
	}
	operator := page("operator-secret")
	for _, not := range []string{`id="adjust"`, `id="reverse"`, `class="reverse"`} {
		if strings.Contains(operator, not) {
			t.Errorf("an operator's page has %s", not)
		}
	}
	if !strings.Contains(operator, "Reversed by entry 2") || !strings.Contains(operator, "R00000005") {
		t.Error("an operator's page does not mark the reversed entry or show its receipt number")
	}
	// The receipt of a reversed top-up says so.
	code, receipt := rg.page(t, c, "/tenants/T-101/receipts/1", map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": "en"})
	if code != 200 || !strings.Contains(receipt, "R00000005") || !strings.Contains(receipt, "December rent month") ||
		!strings.Contains(receipt, `id="receipt-reversed">Reversed by entry 2`) {
		t.Errorf("receipt of the reversed top-up = %d; want its number, its note and the reversal named:\n%s", code, receipt)
	}
	// A charge has no receipt: the page names the entry asked for, not a
	// receipt number that was never issued.
	for lang, want := range map[string]string{"en": "Not found: entry 3", "zh-CN": "未找到：第 3 笔"} {
		code, body := rg.page(t, c, "/tenants/T-101/receipts/3", map[string]string{"Authorization": "Bearer viewer-secret", "Accept-Language": lang})
		if code != 404 || !strings.Contains(body, want) || strings.Contains(body, "R0000") {
			t.Errorf("receipt of charge 3 in %s = %d %q; want 404 %q", lang, code, body, want)
		}
	}
}

// A correction answers 201 when posted, 200 for its reference posted
// before, the ledger's refusal with its status and reason, and a body that
// does not decode 400 before the ledger hears of it; each is audited with
// the tenant, the reason and the balance before and after.
func TestCorrections_API(t *testing.T) {
	c := &changes{}
	rg := newRig(t, func(o *Options) { o.Ledger = booksLedger{fakeLedger{c}} })
	hc := client(t)
	fin := map[string]string{"Authorization": "Bearer finance-secret"}
	for _, tt := range []struct {
		path, body string
		want       int
		changes    int
	}{
		{"reversals", `{"entry":3,"reason":"meter misread","ref":"REV-1"}`, 201, 1},
		{"reversals", `{"entry":3,"reason":"meter misread","ref":"DUP"}`, 200, 1},
		{"reversals", `{"entry":3,"reason":"meter misread","ref":"TAKEN"}`, 409, 1},
		{"reversals", `{"entry":2,"reason":"undo","ref":"REV-2"}`, 400, 1},
		{"reversals", `{"entry":"3","reason":"x","ref":"REV-3"}`, 400, 1},
		{"reversals", `{"entry":3,"reason":"x","ref":"REV-3","amount":"1.00"}`, 400, 1},
		{"reversals", `{"entry":3,"entry":4,"reason":"x","ref":"REV-3"}`, 400, 1},
		{"adjustments", `{"amount":"-12.30","reason":"repair","ref":"ADJ-1"}`, 201, 2},
		{"adjustments", `{"amount":-12.30,"reason":"repair","ref":"ADJ-2"}`, 400, 2},
		{"adjustments", `not json`, 400, 2},
	} {
		var got map[string]any
		code := rg.do(t, hc, "POST", "/api/v1/accounts/T-101/"+tt.path, tt.body, fin, &got)
		if code != tt.want {
			t.Errorf("%s %s = %d %v; want %d", tt.path, tt.body, code, got, tt.want)
		}
		if reason, _ := got["error"].(string); code >= 400 && reason == "" {
			t.Errorf("%s %s: no reason given", tt.path, tt.body)
		}
		if n := c.get(); n != tt.changes {
			t.Errorf("after %s %s: %d changes; want %d", tt.path, tt.body, n, tt.changes)
		}
	}
	if code := rg.do(t, hc, "POST", "/api/v1/accounts/T-999/adjustments", `{"amount":"1.00","reason":"x","ref":"ADJ-9"}`, fin, nil); code != 404 {
		t.Errorf("an adjustment of no tenant = %d; want 404", code)
	}
	var found bool
	for _, r := range rg.audit.all() {
		if r.Action == "POST /api/v1/accounts/{tenant}/adjustments" && r.Outcome == "ok" {
			found = true
			if r.Target != "T-101" || !strings.Contains(r.Reason, "repair") || !strings.Contains(r.Reason, "-12.30") ||
				r.Before != "balance 27.30" || !strings.HasPrefix(r.After, "balance 15.00") || r.Actor != "token:finance-token" {
				t.Errorf("audit of the adjustment = %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no audit record of the adjustment: %+v", rg.audit.all())
	}
}

// The audit's balance before a top-up or a correction is the one the
// entry was posted on (its balance after less its amount), not the
// account read in a transaction of its own before it: there the fake
// answers 10.00, as if another post had come between the two.
func TestCorrections_AuditBalanceBefore(t *testing.T) {
	rg := newRig(t, func(o *Options) { o.Ledger = booksLedger{fakeLedger{&changes{}}} })
	hc := client(t)
	fin := map[string]string{"Authorization": "Bearer finance-secret"}
	for _, tt := range []struct{ path, body, before string }{
		{"topups", `{"amount":"30.00","ref":"PAY-7","channel":"bank"}`, "balance 80.00"},                // after 110.00
		{"reversals", `{"entry":3,"reason":"meter misread","ref":"REV-7"}`, "balance 8.00"},             // 2.00 to 10.00
		{"adjustments", `{"amount":"0.000001","reason":"rounding","ref":"ADJ-7"}`, "balance 14.999999"}, // to 15.00
	} {
		if code := rg.do(t, hc, "POST", "/api/v1/accounts/T-101/"+tt.path, tt.body, fin, nil); code != 201 {
			t.Fatalf("%s = %d; want 201", tt.path, code)
		}
		var found bool
		for _, r := range rg.audit.all() {
			if r.Action == "POST /api/v1/accounts/{tenant}/"+tt.path && r.Outcome == "ok" {
				found = true
				if r.Before != tt.before {
					t.Errorf("%s: audit's before = %q; want %q", tt.path, r.Before, tt.before)
				}
			}
		}
		if !found {
			t.Errorf("%s: no audit record", tt.path)
		}
	}
}
