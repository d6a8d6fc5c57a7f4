package gateway

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// allocationMall is a mall whose M-b2, M-a3 and M-b3 are public meters,
// with two rules: corridors shares M-b2 by consumption (every tenant),
// lifts M-b3 half by area and half by consumption among T-a1 and T-a2 (a
// public meter is shared by one rule). Its database holds, for the month
// that ended last (site time), 100 kWh on each of M-b2 and M-b3, 3 kWh on M-a1,
// 1 kWh on M-a2, none on M-b1, and top-ups of 50.00 to T-a1 and 1,000.00
// to T-a2; tenants on rating A are cut off below zero at once.
func allocationMall(t *testing.T) (mall *testMall, from, to time.Time) {
	t.Helper()
	mall = buildMall(t, 3, sim.WireTiming{}, map[string]string{
		"T-a1": "retail, area_m2: 30", "T-a2": "retail, area_m2: 10", "T-b1": "retail, area_m2: 60", "T-b2": publicMeter,
		"T-a3": publicMeter, "T-b3": publicMeter},
		"tariffs: [{name: standard, kind: flat, price: '1.00'}]\n",
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n",
		"allocation:\n"+
			"  - {name: corridors, meters: [M-b2], basis: consumption}\n"+
			"  - {name: lifts, meters: [M-b3], tenants: [T-a1, T-a2], basis: {area: 50%, consumption: 50%}}\n")
	loc := mall.cfg.Location
	now := time.Now().In(loc)
	to = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	from = to.AddDate(0, -1, 0)
	if now.Sub(to) < 20*time.Minute {
		t.Skip("a month has just ended: its automatic posting is not yet due")
	}
	db, err := store.Open(mall.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var energy []store.IntervalEnergy
	for i := 0; i < 4; i++ { // 25 kWh in each of four quarter hours of the 3rd
		at := from.AddDate(0, 0, 2).Add(time.Duration(i) * 15 * time.Minute)
		energy = append(energy, store.IntervalEnergy{Meter: "M-b2", Time: at, Wh: 25_000}, store.IntervalEnergy{Meter: "M-b3", Time: at, Wh: 25_000})
	}
	energy = append(energy, store.IntervalEnergy{Meter: "M-a1", Time: from.Add(time.Hour), Wh: 3000},
		store.IntervalEnergy{Meter: "M-a2", Time: from.Add(2 * time.Hour), Wh: 1000},
		// Outside the month: not shared.
		store.IntervalEnergy{Meter: "M-b2", Time: from.Add(-time.Hour), Wh: 7000})
	if _, err := db.CommitCycle(store.Cycle{Energy: energy}); err != nil {
		t.Fatal(err)
	}
	for _, tu := range []struct {
		tenant string
		amount billing.Money
	}{{"T-a1", 50 * billing.Yuan}, {"T-a2", 1000 * billing.Yuan}} {
		if _, _, err := db.PostTopUp(store.Entry{Account: tu.tenant, Amount: tu.amount, Ref: "PAY-" + tu.tenant, Channel: "cash", Time: from, Actor: "ann"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return mall, from, to
}

// TestAllocationAPI runs a real mall: the month that ended is posted when
// the gateway starts (it was down at the month's end), by each tenant's
// consumption to the fen; the debit cuts off a tenant it leaves below zero
// as a charge would; the preview answers for any span and refuses bad
// requests with a reason; finance reverses a posting once (the tenant is
// restored) and posts the period again by hand, once.
func TestAllocationAPI(t *testing.T) {
	t.Parallel()
	mall, from, to := allocationMall(t)
	base, _ := mall.start(t)
	const books, screen = "books-secret", "screen-secret"

	var postings []web.AllocationPosting
	waitFor(t, 10*time.Second, "the month's two postings", func() bool {
		return call(t, "GET", base+"/api/v1/allocations", books, "", &postings) == 200 && len(postings) == 2
	})
	byRule := map[string]web.AllocationPosting{}
	for _, p := range postings {
		byRule[p.Rule] = p
	}
	corridors := byRule["corridors"]
	if corridors.Cost != "100.00" || corridors.PublicKWh != "100.000" || corridors.Period != from.Format("2006-01") || corridors.Actor != "gateway" || !corridors.From.Equal(from) {
		t.Errorf("corridors posting: %+v", corridors)
	}
	got := fmt.Sprint(corridors.Shares)
	want := fmt.Sprint([]web.AllocationShare{
		{Tenant: "T-a1", Basis: "consumption 3.000 kWh of 4.000 kWh = 75% of the cost", Amount: "75.00", Entry: corridors.Shares[0].Entry},
		{Tenant: "T-a2", Basis: "consumption 1.000 kWh of 4.000 kWh = 25% of the cost", Amount: "25.00", Entry: corridors.Shares[1].Entry},
		{Tenant: "T-b1", Basis: "consumption 0.000 kWh of 4.000 kWh = 0% of the cost", Amount: "0.00"},
	})
	if got != want {
		t.Errorf("corridors shares:\n got %s\nwant %s", got, want)
	}
	// lifts: T-a1 has 3/4 of the area and 3/4 of the energy: 75.00.
	if l := byRule["lifts"]; len(l.Shares) != 2 || l.Shares[0].Amount != "75.00" || l.Shares[1].Amount != "25.00" {
		t.Errorf("lifts shares: %+v", l.Shares)
	}
	// T-a1: 50.00 − 75.00 − 75.00 = −100.00, cut off as after a charge.
	var acct web.AccountView
	waitFor(t, 20*time.Second, "T-a1's relay to be opened", func() bool { return !mall.meters["M-a1"].Snapshot().RelayClosed })
	getJSON(t, base+"/api/v1/accounts/T-a1", &acct)
	if acct.Balance != "-100.00" || acct.State != "cut_off" {
		t.Errorf("T-a1 after the postings: balance %s, state %s; want -100.00, cut_off", acct.Balance, acct.State)
	}

	// The preview of the same month is the posting's figures.
	q := url.Values{"rule": {"corridors"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	var pv web.AllocationPreview
	if code := call(t, "GET", base+"/api/v1/allocations/preview?"+q.Encode(), books, "", &pv); code != 200 {
		t.Fatalf("preview = %d", code)
	}
	if pv.Rule != "corridors" || pv.PublicKWh != "100.000" || pv.Cost != "100.00" || len(pv.Shares) != 3 || pv.Shares[0].Amount != "75.00" || pv.Shares[0].Basis != corridors.Shares[0].Basis {
		t.Errorf("preview: %+v", pv)
	}
	// A span holding the hour before the month has 107 kWh.
	q.Set("from", from.Add(-time.Hour).Format(time.RFC3339))
	if code := call(t, "GET", base+"/api/v1/allocations/preview?"+q.Encode(), books, "", &pv); code != 200 || pv.PublicKWh != "107.000" || pv.Cost != "107.00" {
		t.Errorf("preview from an hour earlier = %d %+v; want 107 kWh", code, pv)
	}
	for _, bad := range []struct {
		query string
		code  int
		says  string
	}{
		{"rule=stairs&from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339)), 404, `no allocation rule "stairs"`},
		{"from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339)), 400, "rule: required"},
		{"rule=corridors&from=yesterday&to=" + url.QueryEscape(to.Format(time.RFC3339)), 400, `from "yesterday"`},
		{"rule=corridors&from=" + url.QueryEscape(to.Format(time.RFC3339)) + "&to=" + url.QueryEscape(from.Format(time.RFC3339)), 400, "is not before"},
		{"rule=corridors&from=" + url.QueryEscape(from.Add(time.Minute).Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339)), 400, "quarter hour"},
	} {
		var e struct{ Error string }
		if code := call(t, "GET", base+"/api/v1/allocations/preview?"+bad.query, books, "", &e); code != bad.code || !strings.Contains(e.Error, bad.says) {
			t.Errorf("preview?%s = %d %q; want %d saying %q", bad.query, code, e.Error, bad.code, bad.says)
		}
	}
	if code := call(t, "GET", base+"/api/v1/allocations/preview?"+q.Encode(), screen, "", nil); code != 403 {
		t.Errorf("preview by a viewer = %d; want 403", code)
	}

	// Reversal: a reason is required; once; the tenant is restored.
	rev := fmt.Sprintf("%s/api/v1/allocations/%d/reverse", base, corridors.ID)
	if code := call(t, "POST", rev, books, `{}`, nil); code != 400 {
		t.Errorf("reversal without a reason = %d; want 400", code)
	}
	if code := call(t, "POST", rev, screen, `{"reason":"x"}`, nil); code != 403 {
		t.Errorf("reversal by a viewer = %d; want 403", code)
	}
	var undone web.AllocationPosting
	if code := call(t, "POST", rev, books, `{"reason":"meter M-b2 counted the car park too"}`, &undone); code != 200 || undone.Reversal == nil || len(undone.Reversal.Entries) != 2 || undone.Reversal.Actor != "token:books" {
		t.Fatalf("reversal = %d %+v (%+v)", code, undone, undone.Reversal)
	}
	if code := call(t, "POST", rev, books, `{"reason":"again"}`, nil); code != 409 {
		t.Errorf("second reversal = %d; want 409", code)
	}
	if code := call(t, "POST", base+"/api/v1/allocations/999/reverse", books, `{"reason":"x"}`, nil); code != 404 {
		t.Errorf("reversal of no posting = %d; want 404", code)
	}
	// −100.00 + 75.00 = −25.00: still below zero; a top-up brings it up.
	getJSON(t, base+"/api/v1/accounts/T-a1", &acct)
	if acct.Balance != "-25.00" {
		t.Errorf("T-a1 after the reversal: %s; want -25.00", acct.Balance)
	}

	// The period is posted again by hand, once.
	body := fmt.Sprintf(`{"rule":"corridors","from":%q}`, from.Format(time.RFC3339))
	var again web.AllocationPosting
	if code := call(t, "POST", base+"/api/v1/allocations", books, body, &again); code != 201 || again.ID == corridors.ID || again.Cost != "100.00" || again.Actor != "token:books" {
		t.Errorf("post again = %d %+v; want a new posting of 100.00", code, again)
	}
	if code := call(t, "POST", base+"/api/v1/allocations", books, body, &again); code != 200 {
		t.Errorf("post the same period a second time = %d; want 200 (the first)", code)
	}
	for _, bad := range []struct{ body, says string }{
		{fmt.Sprintf(`{"rule":"corridors","from":%q}`, from.Add(24*time.Hour).Format(time.RFC3339)), "is not the start of a month"},
		{fmt.Sprintf(`{"rule":"corridors","from":%q}`, to.Format(time.RFC3339)), "has not ended"},
		{`{"rule":"corridors","from":"soon"}`, `from "soon"`},
	} {
		var e struct{ Error string }
		if code := call(t, "POST", base+"/api/v1/allocations", books, bad.body, &e); code != 400 || !strings.Contains(e.Error, bad.says) {
			t.Errorf("post %s = %d %q; want 400 saying %q", bad.body, code, e.Error, bad.says)
		}
	}
	getJSON(t, base+"/api/v1/accounts/T-a1", &acct)
	if acct.Balance != "-100.00" {
		t.Errorf("T-a1 after the second posting: %s; want -100.00", acct.Balance)
	}
}
