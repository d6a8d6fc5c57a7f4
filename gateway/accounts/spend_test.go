package accounts

import (
	"context"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// ratedLedger is newLedger's mall with T-1 on a rating of 10 yuan of
// overdraft and an hour of grace.
func ratedLedger(t *testing.T) *Ledger {
	t.Helper()
	l := newLedger(t)
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}]\ntenants: [{id: T-1, name: Shop, credit_rating: A}]\n"+
		"ratings: [{name: A, warning_1: \"50.00\", warning_2: \"20.00\", overdraft: \"10.00\", grace: 1h, restore: \"0.00\"}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Config = cfg
	return l
}

// TestLedger_CreditLeft: the time before a cut-off is the balance less
// the accrued charges, down to the rating's overdraft limit, over what the
// account was charged for energy used in the last 24 hours (by when the
// energy was used, not when it was posted), plus the rating's grace; a
// day's charges older than that, and top-ups, do not count.
func TestLedger_CreditLeft(t *testing.T) {
	l := ratedLedger(t)
	now := l.Now()
	if _, _, err := l.TopUp(context.Background(), "T-1", web.TopUpRequest{Amount: "100.00", Ref: "P-1", Channel: "cash"}, "till"); err != nil {
		t.Fatal(err)
	}
	charge := func(used time.Time, posted time.Time, amount billing.Money) {
		t.Helper()
		to := used.Add(15 * time.Minute)
		if _, err := l.DB.PostEntry(store.Entry{Time: posted, Account: "T-1", Kind: store.Charge, Amount: -amount, Meter: "M-1",
			FromWh: 0, ToWh: 1000, Wh: 1000, From: &used, To: &to, Window: "flat", UnitPrice: billing.Price(1)}); err != nil {
			t.Fatal(err)
		}
	}
	// Two days ago, posted then: outside the window.
	charge(now.Add(-48*time.Hour), now.Add(-48*time.Hour), 30*billing.Yuan)
	// Used 30 hours ago but posted an hour ago (a meter back from an
	// outage): outside, by when it was used.
	charge(now.Add(-30*time.Hour), now.Add(-time.Hour), 7*billing.Yuan)
	// The last day: 10 + 10 = 20 yuan.
	charge(now.Add(-20*time.Hour), now.Add(-20*time.Hour), 10*billing.Yuan)
	charge(now.Add(-time.Hour), now.Add(-45*time.Minute), 10*billing.Yuan)
	l.Accrued = func() map[string]billing.Money { return map[string]billing.Money{"T-1": 3 * billing.Yuan} }

	a, err := l.Account("T-1")
	if err != nil {
		t.Fatal(err)
	}
	// Balance 100 − 30 − 7 − 20 = 43, less 3 accrued, plus 10 of
	// overdraft = 50; at 20 a day, two and a half days, and the hour of
	// grace.
	want := int64(2*86400 + 43200 + 3600)
	if a.Balance != "43.00" || a.Spend24h != "20.00" || a.CreditLeft == nil || *a.CreditLeft != want {
		t.Fatalf("account = balance %s, spend %s, credit left %v; want 43.00, 20.00, %d s", a.Balance, a.Spend24h, a.CreditLeft, want)
	}
	// The list reads the last reckoning (RunSpend), not the ledger.
	if list, err := l.Accounts(); err != nil || len(list) != 1 || list[0].CreditLeft != nil {
		t.Fatalf("accounts before a reckoning = %+v, %v; want no credit left yet", list, err)
	}
	l.reckonSpends(context.Background())
	list, err := l.Accounts()
	if err != nil || len(list) != 1 || list[0].CreditLeft == nil || *list[0].CreditLeft != want {
		t.Fatalf("accounts = %+v, %v; want the same credit left", list, err)
	}
	// Nothing spent: no rate, no time left to tell.
	if a, err := ratedLedger(t).Account("T-1"); err != nil || a.CreditLeft != nil || a.Spend24h != "" {
		t.Errorf("an account with no charges: %+v, %v; want no credit left and no spend", a, err)
	}
	// Beyond the overdraft: the grace time alone.
	charge(now.Add(-10*time.Minute), now.Add(-5*time.Minute), 60*billing.Yuan)
	if a, err := l.Account("T-1"); err != nil || a.CreditLeft == nil || *a.CreditLeft != 3600 {
		t.Errorf("an account past its overdraft: %+v, %v; want the grace, 3600 s, left", a, err)
	}
	// No credit rating: never cut off, so no time left however it spends.
	l.Config = newLedger(t).Config
	if a, err := l.Account("T-1"); err != nil || a.CreditLeft != nil || a.Spend24h == "" {
		t.Errorf("an account without a rating: %+v, %v; want its spend and no time left", a, err)
	}
}

// TestLedger_RunSpendStops: the reckoner ends with its context.
func TestLedger_RunSpendStops(t *testing.T) {
	l := ratedLedger(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.RunSpend(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunSpend still running 5 s after its context ended")
	}
}
