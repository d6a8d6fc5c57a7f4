package upfeed

import (
	"testing"
	"time"

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
