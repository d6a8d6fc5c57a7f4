package gateway

import (
	"fmt"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
)

// TestRun_FastMeter runs the gateway with one meter read every second on
// buses polled every 5 s: it is read about five times as often as its
// neighbour, and both tenants are charged exactly the energy their meters
// counted, at their price, though one's energy arrives in five times as
// many readings and transactions; verify finds the ledger sound.
func TestRun_FastMeter(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2, "tariffs: [{name: standard, kind: flat, price: '100.00'}]\n")
	for i := range mall.cfg.Buses {
		mall.cfg.Buses[i].Interval = 5 * time.Second
	}
	for i, m := range mall.cfg.Meters {
		if m.ID == "M-a1" {
			mall.cfg.Meters[i].Interval = time.Second
		}
	}
	fast, slow := mall.meters["M-a1"], mall.meters["M-a2"]
	from := map[string]int64{"a1": fast.Snapshot().ImportWh, "a2": slow.Snapshot().ImportWh} // no load yet: the counters stand
	base, stop := mall.start(t)
	waitFor(t, 10*time.Second, "first readings", func() bool {
		for _, id := range []string{"M-a1", "M-a2"} {
			var mv web.MeterView
			if getJSON(t, base+"/api/v1/meters/"+id, &mv); mv.ReadingTime == nil {
				return false
			}
		}
		return true
	})
	requests := func(id string) int64 {
		var mv web.MeterView
		getJSON(t, base+"/api/v1/meters/"+id, &mv)
		return mv.Stats.Requests
	}
	for _, id := range []string{"a1", "a2"} {
		if code := call(t, "POST", base+"/api/v1/accounts/T-"+id+"/topups", "till-secret", `{"amount":"1000.00","ref":"R-`+id+`","channel":"cash"}`, nil); code != 201 {
			t.Fatalf("top-up of T-%s = %d", id, code)
		}
	}
	// The requests are counted from one read of M-a2 to its second next,
	// so the window holds exactly two of its reads whatever their phase,
	// and however late a loaded machine starts them (each starts an
	// interval after the last began). Ten seconds of the clock held one or
	// three of them at times: a ratio of 10 or 3.3.
	slowReadAt := func() time.Time {
		var mv web.MeterView
		if getJSON(t, base+"/api/v1/meters/M-a2", &mv); mv.ReadingTime == nil {
			return time.Time{}
		}
		return *mv.ReadingTime
	}
	nextSlowRead := func(after time.Time) time.Time {
		var at time.Time
		waitFor(t, 15*time.Second, "a read of M-a2", func() bool { at = slowReadAt(); return at.After(after) })
		return at
	}
	// 36 kW is 10 Wh a second, ¥1 a second at ¥100/kWh.
	fast.SetLoad(36_000)
	slow.SetLoad(36_000)
	first := nextSlowRead(slowReadAt())
	fastBefore, slowBefore := requests("M-a1"), requests("M-a2")
	third := nextSlowRead(nextSlowRead(first))
	fastReqs, slowReqs := requests("M-a1")-fastBefore, requests("M-a2")-slowBefore
	fast.SetLoad(0)
	slow.SetLoad(0)
	if slowReqs <= 0 || float64(fastReqs)/float64(slowReqs) < 3.5 || float64(fastReqs)/float64(slowReqs) > 6.5 {
		t.Errorf("in the %v from a read of M-a2 to its second next, M-a1 (1 s) made %d requests, M-a2 (its bus's 5 s) %d; want about 5 times as many",
			third.Sub(first), fastReqs, slowReqs)
	}
	for _, id := range []string{"a1", "a2"} {
		used := mall.meters["M-"+id].Snapshot().ImportWh - from[id]
		if used < 50 {
			t.Fatalf("M-%s counted %d Wh; want about 100", id, used)
		}
		want := billing.Money(used) * 10 * billing.Fen // ¥0.10 a Wh
		var a web.AccountView
		waitFor(t, 12*time.Second, fmt.Sprintf("T-%s charged %s for %d Wh", id, want, used), func() bool {
			getJSON(t, base+"/api/v1/accounts/T-"+id, &a)
			acc, err := billing.ParseMoney(a.Accrued)
			bal, err2 := billing.ParseMoney(a.Balance)
			// Accrued in open slots, or posted if a slot closed meanwhile.
			return err == nil && err2 == nil && acc+(1000*billing.Yuan-bal) == want
		})
	}
	stop()
	verifyClean(t, mall.dbPath)
}

// verifyClean fails t unless verify finds the database at path sound.
func verifyClean(t *testing.T, path string) {
	t.Helper()
	report, err := verify.File(path)
	if err != nil || len(report.Violations) != 0 {
		t.Errorf("verify = %+v, %v; want no violation", report, err)
	}
}
