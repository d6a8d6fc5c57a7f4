package gateway

import (
	"fmt"
	"testing"
	"time"

	"mallgrid/gateway/web"
)

// TestCorrections_ReachEnforcement: a correction changes a balance the way
// a top-up does, and enforcement hears of it the same way. On a real mall
// (simulated meters, the daemon's wiring): finance reverses a tenant's
// top-up, the account is used up, and after the grace time its relay
// opens; a credit adjustment then closes it at once, and sending the same
// adjustment again changes nothing. The neighbour is never touched.
func TestCorrections_ReachEnforcement(t *testing.T) {
	t.Parallel()
	mall := cutOffMall(t, "3s")
	base, _ := mall.start(t)
	const books, till = "books-secret", "till-secret"
	for _, id := range []string{"T-a1", "T-a2"} {
		if code := call(t, "POST", base+"/api/v1/accounts/"+id+"/topups", books,
			`{"amount":"1000.00","ref":"P-`+id+`","channel":"bank","note":"December"}`, nil); code != 201 {
			t.Fatalf("top-up of %s = %d", id, code)
		}
	}
	mall.meters["M-a1"].SetLoad(1_000)
	mall.meters["M-a2"].SetLoad(1_000)
	var ledger []web.EntryView
	getJSON(t, base+"/api/v1/accounts/T-a1/ledger", &ledger)
	top := ledger[len(ledger)-1]
	if top.Kind != "topup" || top.Receipt == "" || top.Note != "December" {
		t.Fatalf("T-a1's first entry = %+v; want its top-up with a receipt number and its note", top)
	}

	// An operator may not correct; finance may.
	rev := fmt.Sprintf(`{"entry":%d,"reason":"transfer returned by the bank","ref":"REV-a1"}`, top.ID)
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/reversals", till, rev, nil); code != 403 {
		t.Fatalf("a reversal by an operator = %d; want 403", code)
	}
	var reversal web.EntryView
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/reversals", books, rev, &reversal); code != 201 || reversal.Amount != "-1000.00" {
		t.Fatalf("reversal = %d %+v; want 201, -1000.00", code, reversal)
	}
	waitFor(t, 10*time.Second, "T-a1's cut-off to be scheduled", func() bool {
		var a web.AccountView
		getJSON(t, base+"/api/v1/accounts/T-a1", &a)
		return a.PendingCutOff != nil
	})
	if !mall.meters["M-a1"].Snapshot().RelayClosed {
		t.Fatal("T-a1 cut off before its grace time ran out")
	}
	waitFor(t, 20*time.Second, "T-a1's relay to open after the grace time", func() bool { return !mall.meters["M-a1"].Snapshot().RelayClosed })

	adj := `{"amount":"100.00","reason":"goodwill after the bank's error","ref":"ADJ-a1"}`
	var credit web.EntryView
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/adjustments", books, adj, &credit); code != 201 {
		t.Fatalf("credit adjustment = %d", code)
	}
	sent := time.Now()
	waitFor(t, 10*time.Second, "T-a1's relay to close after the credit", func() bool { return mall.meters["M-a1"].Snapshot().RelayClosed })
	t.Logf("credit adjustment → relay closed in %v", time.Since(sent).Round(time.Millisecond))
	var again web.EntryView
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/adjustments", books, adj, &again); code != 200 || again.ID != credit.ID {
		t.Errorf("the same adjustment again = %d %+v; want 200 and entry %d", code, again, credit.ID)
	}
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/reversals", books, rev, nil); code != 200 {
		t.Errorf("the same reversal again = %d; want 200", code)
	}
	getJSON(t, base+"/api/v1/accounts/T-a1/ledger", &ledger)
	var reversals, adjustments int
	for _, e := range ledger {
		switch {
		case e.Kind == "reversal":
			reversals++
		case e.Kind == "adjustment":
			adjustments++
		case e.ID == top.ID && e.ReversedBy != reversal.ID:
			t.Errorf("the reversed top-up on the ledger = %+v; want it marked reversed by %d", e, reversal.ID)
		}
	}
	if reversals != 1 || adjustments != 1 {
		t.Errorf("%d reversals and %d adjustments on the ledger; want one of each", reversals, adjustments)
	}
	if !mall.meters["M-a2"].Snapshot().RelayClosed {
		t.Error("the neighbour was cut off")
	}
	kinds := eventKinds(t, base, "T-a1")
	for _, k := range []string{"cutoff_scheduled", "cut_off", "restored"} {
		if kinds[k] != 1 {
			t.Errorf("%d %s events for T-a1; want 1 (all: %v)", kinds[k], k, kinds)
		}
	}
}
