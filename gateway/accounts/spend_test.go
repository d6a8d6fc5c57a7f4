package accounts

import (
	"context"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// TestLedger_CreditLeft: the time an account lasts is its balance less
// the accrued charges over what it was charged for energy used in the last
// 24 hours (by when the energy was used, not when it was posted); a day's
// charges older than that, and top-ups, do not count.
func TestLedger_CreditLeft(t *testing.T) {
	l := newLedger(t)
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
	// Balance 100 − 30 − 7 − 20 = 43, less 3 accrued = 40; at 20 a day,
	// two days.
	if a.Balance != "43.00" || a.Spend24h != "20.00" || a.CreditLeft == nil || *a.CreditLeft != 2*86400 {
		t.Fatalf("account = balance %s, spend %s, credit left %v; want 43.00, 20.00, 172800 s", a.Balance, a.Spend24h, a.CreditLeft)
	}
	list, err := l.Accounts()
	if err != nil || len(list) != 1 || list[0].CreditLeft == nil || *list[0].CreditLeft != 2*86400 {
		t.Fatalf("accounts = %+v, %v; want the same credit left", list, err)
	}
	// Nothing spent: no rate, no time left to tell.
	l2 := newLedger(t)
	if a, err := l2.Account("T-1"); err != nil || a.CreditLeft != nil || a.Spend24h != "" {
		t.Errorf("an account with no charges: %+v, %v; want no credit left and no spend", a, err)
	}
	// Overdrawn: no time left.
	charge(now.Add(-10*time.Minute), now.Add(-5*time.Minute), 50*billing.Yuan)
	if a, err := l.Account("T-1"); err != nil || a.CreditLeft == nil || *a.CreditLeft != 0 {
		t.Errorf("an overdrawn account: %+v, %v; want 0 s left", a, err)
	}
}
