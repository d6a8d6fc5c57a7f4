package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/accounts"
	"mallgrid/gateway/config"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// A meter taken out of the configuration while it has an accrued charge:
// the charge is posted at the next start (with an event) rather than
// counted in the tenant's accrued for ever. A tenant renamed in the
// configuration keeps its account, archived and readable, closed to
// top-ups. Both are reported as drift.
func TestDrift_RemovedMeterAndRenamedTenant(t *testing.T) {
	t.Parallel()
	f := newBillFixture(t, "  - {name: t, kind: flat, price: '1.00'}\n")
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, sh)
	f.feed(t0, 100_000)
	f.feed(t0.Add(2*time.Minute), 101_500) // 1.5 kWh accrued, not posted
	if n := len(f.charges()); n != 0 {
		t.Fatalf("%d charges posted; want the 1.50 accrued only", n)
	}
	if got := f.pipe.Accrued()["T-1"].String(); got != "1.50" {
		t.Fatalf("accrued = %s; want 1.50", got)
	}

	// The new configuration: M-1 is gone, T-1 is now called T-1A.
	src := "site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-2, bus: b, address: 2, model: kpm33b, tenant: T-1A, rated_current: 60}]\n" +
		"tenants: [{id: T-1A, name: Shop, tariff: t}]\ntariffs:\n  - {name: t, kind: flat, price: '1.00'}\n"
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	drift, err := pipeline.FindDrift(f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(drift) != 1 || drift[0].Meter != "M-1" || !strings.Contains(drift[0].Text, "accrued charge of 1.50 to T-1 is posted") {
		t.Errorf("drift before the first charge is posted = %v; want M-1's accrued charge", drift)
	}

	f.cfg = cfg
	f.restart()
	if err := f.pipe.SettleRemoved(t0.Add(4 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	cs := f.charges()
	if len(cs) != 1 || cs[0].Account != "T-1" || cs[0].Amount.String() != "-1.50" || cs[0].Wh != 1_500 {
		t.Fatalf("charges after start-up = %+v; want M-1's 1.5 kWh posted to T-1 as -1.50", cs)
	}
	if got := f.pipe.Accrued()["T-1"]; got != 0 {
		t.Errorf("T-1 accrued %s after the start-up; want nothing", got)
	}
	evs, err := f.db.LastEvents(10)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(evs); n == 0 || evs[n-1].Kind != "meter_removed" || evs[n-1].Meter != "M-1" {
		t.Errorf("events = %+v; want meter_removed for M-1 last", evs)
	}
	f.verify()
	// A second start posts nothing more.
	f.restart()
	if err := f.pipe.SettleRemoved(t0.Add(5 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.charges()); n != 1 {
		t.Errorf("%d charges after a second start; want 1", n)
	}

	drift, err = pipeline.FindDrift(f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, d := range drift {
		texts = append(texts, d.Text)
	}
	all := strings.Join(texts, "\n")
	if !strings.Contains(all, "meter M-1 is not in the configuration") || !strings.Contains(all, "account T-1 (balance -1.50, 1 entries) has no tenant") {
		t.Errorf("drift =\n%s\nwant the removed meter and the archived account", all)
	}

	l := &accounts.Ledger{DB: f.db, Config: cfg, Now: func() time.Time { return t0 }}
	accts, err := l.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	var archived *web.AccountView
	for i := range accts {
		if accts[i].Tenant == "T-1" {
			archived = &accts[i]
		}
	}
	if archived == nil || !archived.Archived || archived.Balance != "-1.50" {
		t.Fatalf("accounts = %+v; want T-1 listed, archived, balance -1.50", accts)
	}
	if a, err := l.Account("T-1"); err != nil || !a.Archived {
		t.Errorf("Account(T-1) = %+v, %v; want the archived account", a, err)
	}
	if es, err := l.Entries("T-1", 0, 10); err != nil || len(es) != 1 {
		t.Errorf("Entries(T-1) = %d, %v; want its one charge", len(es), err)
	}
	_, _, err = l.TopUp(context.Background(), "T-1", web.TopUpRequest{Amount: "10.00", Ref: "P-1", Channel: "cash"}, "till")
	if !errors.Is(err, web.ErrConflict) {
		t.Errorf("top-up to an archived account: err = %v; want ErrConflict", err)
	}
	if _, err := l.Account("T-nobody"); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("Account of an unknown tenant: err = %v; want ErrNotFound", err)
	}
	if _, err := f.db.Account("T-1"); err != nil && !errors.Is(err, store.ErrNoAccount) {
		t.Fatal(err)
	}
}
