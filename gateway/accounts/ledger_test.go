package accounts

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

func newLedger(t *testing.T) *Ledger {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}]\ntenants: [{id: T-1, name: Shop}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return &Ledger{DB: db, Config: cfg, Now: func() time.Time { return now }}
}

// Every refused top-up says why and credits nothing; a payment sent again
// is the original entry; the same reference for another amount is a
// conflict.
func TestLedger_TopUp(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		req  web.TopUpRequest
	}{
		{"zero", web.TopUpRequest{Amount: "0.00", Ref: "P-1", Channel: "cash"}},
		{"negative", web.TopUpRequest{Amount: "-1.00", Ref: "P-1", Channel: "cash"}},
		{"below a fen", web.TopUpRequest{Amount: "1.005", Ref: "P-1", Channel: "cash"}},
		{"over the limit", web.TopUpRequest{Amount: "100000.01", Ref: "P-1", Channel: "cash"}},
		{"no reference", web.TopUpRequest{Amount: "1.00", Channel: "cash"}},
		{"reference with a space", web.TopUpRequest{Amount: "1.00", Ref: "P 1", Channel: "cash"}},
		{"unknown channel", web.TopUpRequest{Amount: "1.00", Ref: "P-1", Channel: "cheque"}},
	} {
		if _, _, err := l.TopUp(ctx, "T-1", tt.req, "till"); !errors.Is(err, web.ErrInvalid) {
			t.Errorf("%s: err = %v; want ErrInvalid", tt.name, err)
		}
	}
	if _, _, err := l.TopUp(ctx, "T-9", web.TopUpRequest{Amount: "1.00", Ref: "P-1", Channel: "cash"}, "till"); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("unknown tenant: err = %v; want ErrNotFound", err)
	}
	first, existing, err := l.TopUp(ctx, "T-1", web.TopUpRequest{Amount: "50.00", Ref: "P-1", Channel: "wechat"}, "till")
	if err != nil || existing || first.Amount != "50.00" {
		t.Fatalf("top-up = %+v, %v, %v; want a new 50.00", first, existing, err)
	}
	again, existing, err := l.TopUp(ctx, "T-1", web.TopUpRequest{Amount: "50.00", Ref: "P-1", Channel: "wechat"}, "till")
	if err != nil || !existing || again.ID != first.ID {
		t.Errorf("the same payment again = %+v, %v, %v; want entry %d, existing", again, existing, err, first.ID)
	}
	if _, _, err := l.TopUp(ctx, "T-1", web.TopUpRequest{Amount: "60.00", Ref: "P-1", Channel: "wechat"}, "till"); !errors.Is(err, web.ErrConflict) {
		t.Errorf("the reference for another amount: err = %v; want ErrConflict", err)
	}
	a, err := l.DB.Account("T-1")
	if err != nil || a.Balance != 50*billing.Yuan || a.Entries != 1 {
		t.Errorf("account = %+v, %v; want 50.00 in one entry", a, err)
	}
}
