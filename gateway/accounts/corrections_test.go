package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mallgrid/billing"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// A top-up's note and receipt number are kept and shown; a finance
// reversal and adjustment are posted once per reference, shown on the
// ledger page (the reversed entry marked), and every refusal says why and
// changes nothing.
func TestLedger_Corrections(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	top, _, err := l.TopUp(ctx, "T-1", web.TopUpRequest{Amount: "100.00", Ref: "P-1", Channel: "bank", Note: "December, by transfer"}, "fay")
	if err != nil || top.Receipt != "R00000001" || top.Note != "December, by transfer" {
		t.Fatalf("top-up = %+v, %v; want receipt R00000001 and its note", top, err)
	}
	if _, _, err := l.TopUp(ctx, "T-1", web.TopUpRequest{Amount: "1.00", Ref: "P-2", Channel: "cash", Note: "two\nlines"}, "fay"); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("a note with a line break: %v; want ErrInvalid", err)
	}
	rev, existing, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Entry: top.ID, Reason: "transfer returned", Ref: "REV-1"}, "fay")
	if err != nil || existing || rev.Kind != "reversal" || rev.Amount != "-100.00" || rev.Balance != "0.00" || rev.Reverses != top.ID || rev.Note != "transfer returned" {
		t.Fatalf("reversal = %+v, %v, %v; want -100.00 of entry %d", rev, existing, err, top.ID)
	}
	again, existing, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Entry: top.ID, Reason: "transfer returned", Ref: "REV-1"}, "fay")
	if err != nil || !existing || again.ID != rev.ID {
		t.Errorf("the same reversal again = %+v, %v, %v; want entry %d, existing", again, existing, err, rev.ID)
	}
	adj, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "-12.30", Reason: "repair of the shop's breaker", Ref: "ADJ-1"}, "fay")
	if err != nil || adj.Amount != "-12.30" || adj.Balance != "-12.30" {
		t.Fatalf("adjustment = %+v, %v", adj, err)
	}
	for _, tt := range []struct {
		name string
		do   func() error
		want error
	}{
		{"reversed twice", func() error {
			_, _, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Entry: top.ID, Reason: "again", Ref: "REV-2"}, "fay")
			return err
		}, web.ErrConflict},
		{"a reversal reversed", func() error {
			_, _, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Entry: rev.ID, Reason: "undo", Ref: "REV-3"}, "fay")
			return err
		}, web.ErrInvalid},
		{"no such entry", func() error {
			_, _, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Entry: 99, Reason: "x", Ref: "REV-4"}, "fay")
			return err
		}, web.ErrNotFound},
		{"no entry named", func() error {
			_, _, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Reason: "x", Ref: "REV-5"}, "fay")
			return err
		}, web.ErrInvalid},
		{"no reason", func() error {
			_, _, err := l.Reverse(ctx, "T-1", web.ReversalRequest{Entry: adj.ID, Ref: "REV-6"}, "fay")
			return err
		}, web.ErrInvalid},
		{"no tenant", func() error {
			_, _, err := l.Reverse(ctx, "T-9", web.ReversalRequest{Entry: adj.ID, Reason: "x", Ref: "REV-7"}, "fay")
			return err
		}, web.ErrNotFound},
		{"same reference, other amount", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "-12.31", Reason: "repair of the shop's breaker", Ref: "ADJ-1"}, "fay")
			return err
		}, web.ErrConflict},
		{"a payment's reference", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "1.00", Reason: "x", Ref: "P-1"}, "fay")
			return err
		}, web.ErrConflict},
		{"zero", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "0.00", Reason: "x", Ref: "ADJ-2"}, "fay")
			return err
		}, web.ErrInvalid},
		{"below a fen", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "0.001", Reason: "x", Ref: "ADJ-3"}, "fay")
			return err
		}, web.ErrInvalid},
		{"over the limit", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "-100000.01", Reason: "x", Ref: "ADJ-4"}, "fay")
			return err
		}, web.ErrInvalid},
		{"a float", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "1e3", Reason: "x", Ref: "ADJ-5"}, "fay")
			return err
		}, web.ErrInvalid},
		{"a reason too long", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "1.00", Reason: strings.Repeat("字", 201), Ref: "ADJ-6"}, "fay")
			return err
		}, web.ErrInvalid},
		{"a reference with a space", func() error {
			_, _, err := l.Adjust(ctx, "T-1", web.AdjustmentRequest{Amount: "1.00", Reason: "x", Ref: "ADJ 7"}, "fay")
			return err
		}, web.ErrInvalid},
	} {
		if err := tt.do(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v; want %v", tt.name, err, tt.want)
		}
	}
	a, err := l.DB.Account("T-1")
	if err != nil || a.Balance != -1230*billing.Fen || a.Entries != 3 {
		t.Errorf("account = %+v, %v; want -12.30 over three entries (the refusals changed nothing)", a, err)
	}
	page, err := l.Entries("T-1", 0, 10)
	if err != nil || len(page) != 3 {
		t.Fatalf("ledger = %+v, %v", page, err)
	}
	if got := page[2]; got.ID != top.ID || got.ReversedBy != rev.ID || got.Receipt != "R00000001" || got.Note != "December, by transfer" {
		t.Errorf("the top-up on the ledger page = %+v; want reversed by %d, its receipt and note", got, rev.ID)
	}
	if page[0].ReversedBy != 0 || page[1].ReversedBy != 0 {
		t.Errorf("entries not reversed marked: %+v", page[:2])
	}
	// The receipt event carries the number.
	evs, err := l.DB.LastEvents(5)
	if err != nil || len(evs) != 1 || evs[0].Args["receipt"] != "R00000001" || !strings.Contains(evs[0].Text, "receipt R00000001") {
		t.Errorf("receipt events = %+v, %v; want one, with R00000001", evs, err)
	}
}

// A top-up credited before receipts were numbered shows the number its
// receipt was printed with, its entry id.
func TestReceiptOf_BeforeNumbers(t *testing.T) {
	if got := receiptOf(store.Entry{ID: 42, Kind: store.TopUp}); got != "R00000042" {
		t.Errorf("receiptOf(entry 42, unnumbered) = %q; want R00000042", got)
	}
	if got := receiptOf(store.Entry{ID: 42, Kind: store.TopUp, Receipt: 7}); got != "R00000007" {
		t.Errorf("receiptOf(entry 42, receipt 7) = %q; want R00000007", got)
	}
}
