package uplink

import (
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/web"
)

func TestAccountsOf(t *testing.T) {
	seen := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	meters := func() []web.MeterView {
		return []web.MeterView{
			{ID: "M-1", Tenant: "T-1", Relay: web.RelayView{Actual: "closed"}, Online: true, LastSeen: &seen,
				Stats: web.StatsView{Errors: map[string]int64{"timeout": 2, "crc": 1}}},
			{ID: "M-2", Tenant: "T-1", Relay: web.RelayView{Actual: "open"}},
			{ID: "M-3", Tenant: "T-2", Relay: web.RelayView{Actual: "open"}},
			{ID: "M-4", Tenant: "T-3", Relay: web.RelayView{Actual: "open"}},
			{ID: "M-5", Tenant: "T-3", Relay: web.RelayView{Actual: "unknown"}},
			{ID: "M-P"},
		}
	}
	accounts := func() ([]web.AccountView, error) {
		return []web.AccountView{{Tenant: "T-1", Balance: "12.34", State: "normal"}, {Tenant: "T-2", Balance: "-0.50", State: "cut_off"},
			{Tenant: "T-3", Balance: "0.00"}, {Tenant: "T-4", Balance: "1.00"}, {Tenant: "T-5", Balance: "bad"}}, nil
	}
	got, err := accountsOf(accounts, meters, zerolog.Nop())()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		tenant, relay string
		balance       billing.Money
	}{{"T-1", "mixed", 12_340_000}, {"T-2", "open", -500_000}, {"T-3", "unknown", 0}, {"T-4", "unknown", 1_000_000}}
	if len(got) != len(want) {
		t.Fatalf("got %+v; want %d accounts (the bad balance left out)", got, len(want))
	}
	for i, w := range want {
		if got[i].Tenant != w.tenant || got[i].Relay != w.relay || got[i].Balance != w.balance {
			t.Errorf("account %d = %+v; want %s relay %s balance %d", i, got[i], w.tenant, w.relay, w.balance)
		}
	}
	if a, err := accountsOf(func() ([]web.AccountView, error) { return nil, errors.New("db") }, meters, zerolog.Nop())(); a != nil || err == nil {
		t.Errorf("accounts on an error = %v, %v; want none and the error (no snapshot this round)", a, err)
	}
	h := metersOf(meters)()
	if h[0].Errors != 3 || !h[0].LastSeen.Equal(seen) || !h[0].Online || h[1].Online || !h[1].LastSeen.IsZero() {
		t.Errorf("meter health %+v; want M-1 online, 3 errors, last seen; M-2 never seen", h[:2])
	}
	b := busesOf(func() []web.BusView {
		return []web.BusView{{Name: "a", Meters: 2, Online: 1}, {Name: "b", Meters: 2}, {Name: "c"}}
	})()
	if !b[0].Up || b[1].Up || !b[2].Up {
		t.Errorf("buses %+v; want a up, b down (no meter answers), c up (no meters)", b)
	}
}
