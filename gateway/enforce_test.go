package gateway

import (
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/sim"
	"mallgrid/gateway/web"
)

// TestRelayOverride: an operator forces a relay open with a reason and an
// expiry through the API; the simulated meter's relay really opens (the
// command goes through the bus, in remote mode, read back), the override is
// recorded as an event with who and why, and when it expires the relay is
// closed again.
func TestRelayOverride(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	base, _ := mall.start(t)
	const op = "till-secret"
	url := base + "/api/v1/meters/M-a2/relay"

	for _, tt := range []struct {
		name, token, body string
		code              int
		reason            string
	}{
		{"no reason", op, `{"state":"off"}`, 400, "reason"},
		{"bad state", op, `{"state":"half","reason":"x"}`, 400, "state"},
		{"past expiry", op, `{"state":"off","reason":"x","until":"2001-01-01T00:00:00Z"}`, 400, "until"},
		{"viewer", "screen-secret", `{"state":"off","reason":"x"}`, 403, "operator"},
	} {
		var e map[string]string
		if code := call(t, "POST", url, tt.token, tt.body, &e); code != tt.code || !strings.Contains(e["error"], tt.reason) {
			t.Errorf("%s: %d %q; want %d about %q", tt.name, code, e["error"], tt.code, tt.reason)
		}
	}
	waitFor(t, 10*time.Second, "M-a2 read", func() bool {
		var m web.MeterView
		getJSON(t, base+"/api/v1/meters/M-a2", &m)
		return m.Relay.Actual == "closed"
	})

	until := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)
	var v web.RelayView
	if code := call(t, "POST", url, op, `{"state":"off","reason":"electrician at work","until":"`+until+`"}`, &v); code != 200 || v.Desired != "open" {
		t.Fatalf("override off = %d %+v; want 200, desired open", code, v)
	}
	waitFor(t, 10*time.Second, "the simulated relay to open", func() bool { return !mall.meters["M-a2"].Snapshot().RelayClosed })
	waitFor(t, 10*time.Second, "the API to show it open", func() bool {
		var m web.MeterView
		getJSON(t, base+"/api/v1/meters/M-a2", &m)
		return m.Relay.Actual == "open" && m.Relay.Desired == "open"
	})
	if !mall.meters["M-a1"].Snapshot().RelayClosed {
		t.Error("a neighbour's relay opened")
	}
	// The override expires: the relay closes again by itself.
	waitFor(t, 15*time.Second, "the relay to close after the override expired", func() bool { return mall.meters["M-a2"].Snapshot().RelayClosed })

	var got []web.EventView
	waitFor(t, 5*time.Second, "the events", func() bool {
		kinds := map[string]bool{}
		resp := sse(t, t.Context(), base+"/api/v1/events", "0")
		got = nil
		timeout := time.After(500 * time.Millisecond)
	read:
		for {
			select {
			case e, ok := <-resp:
				if !ok {
					break read
				}
				got = append(got, e)
				kinds[e.Kind] = true
			case <-timeout:
				break read
			}
		}
		return kinds["relay_override"] && kinds["relay_opened"] && kinds["relay_closed"]
	})
	for _, e := range got {
		if e.Kind == "relay_override" && (!strings.Contains(e.Text, "token:till") || !strings.Contains(e.Text, "electrician at work")) {
			t.Errorf("override event %q lacks who and why", e.Text)
		}
	}
}

// TestEnforcement_CutOffAndRestore is the whole prepaid loop end to end on
// simulated meters: a tenant's credit runs out, the account policy decides
// a cut-off, the simulator's relay opens (read back), a top-up through the
// API restores the account and the relay closes — with the events on the
// way, and the neighbour, who has credit, never touched.
func TestEnforcement_CutOffAndRestore(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2,
		"tariffs: [{name: standard, kind: flat, price: '100.00'}]\n",
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n")
	base, _ := mall.start(t)
	const op = "till-secret"
	// The neighbour pays first; T-a1 starts at 0.00 and draws 36 kW.
	if code := call(t, "POST", base+"/api/v1/accounts/T-a2/topups", op, `{"amount":"1000.00","ref":"P-a2","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up of T-a2 = %d", code)
	}
	mall.meters["M-a1"].SetLoad(36_000)
	mall.meters["M-a2"].SetLoad(1_000)

	waitFor(t, 20*time.Second, "T-a1's relay to be opened", func() bool { return !mall.meters["M-a1"].Snapshot().RelayClosed })
	var acct web.AccountView
	getJSON(t, base+"/api/v1/accounts/T-a1", &acct)
	if acct.State != "cut_off" {
		t.Errorf("T-a1 state = %q; want cut_off", acct.State)
	}
	if !mall.meters["M-a2"].Snapshot().RelayClosed {
		t.Error("the neighbour with credit was cut off")
	}
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", op, `{"amount":"100.00","ref":"P-a1","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up of T-a1 = %d", code)
	}
	waitFor(t, 20*time.Second, "T-a1's relay to close after the top-up", func() bool { return mall.meters["M-a1"].Snapshot().RelayClosed })
	getJSON(t, base+"/api/v1/accounts/T-a1", &acct)
	if acct.State == "cut_off" {
		t.Errorf("T-a1 state after the top-up = %q", acct.State)
	}

	kinds := map[string]bool{}
	resp := sse(t, t.Context(), base+"/api/v1/events", "0")
	timeout := time.After(time.Second)
read:
	for {
		select {
		case e, ok := <-resp:
			if !ok {
				break read
			}
			if e.Tenant == "T-a1" {
				kinds[e.Kind] = true
			}
		case <-timeout:
			break read
		}
	}
	for _, k := range []string{"cutoff_scheduled", "cut_off", "relay_opened", "topup_receipt", "restored", "relay_closed"} {
		if !kinds[k] {
			t.Errorf("no %s event for T-a1 (got %v)", k, kinds)
		}
	}
}

// cutOffMall is a mall whose tenants pay 100.00/kWh on a rating that
// cuts graceSeconds after the credit is used up.
func cutOffMall(t *testing.T, grace string) *testMall {
	return newTestMall(t, 2,
		"tariffs: [{name: standard, kind: flat, price: '100.00'}]\n",
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: "+grace+", restore: '1.00'}]\n")
}

func eventKinds(t *testing.T, base, tenant string) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	resp := sse(t, t.Context(), base+"/api/v1/events", "0")
	timeout := time.After(time.Second)
	for {
		select {
		case e, ok := <-resp:
			if !ok {
				return kinds
			}
			if e.Tenant == tenant {
				kinds[e.Kind]++
			}
			if hole := emptyField(e.Text); hole != "" {
				t.Errorf("%s event text %q has an empty field (%q)", e.Kind, e.Text, hole)
			}
		case <-timeout:
			return kinds
		}
	}
}

// A gateway that was down when the grace time ran out cuts off as soon as
// it is back, from the stored deadline, and does not schedule it again.
func TestEnforcement_RestartInMidGrace(t *testing.T) {
	t.Parallel()
	mall := cutOffMall(t, "3s")
	base, stop := mall.start(t)
	mall.meters["M-a1"].SetLoad(36_000)
	waitFor(t, 20*time.Second, "the cut-off to be scheduled", func() bool {
		var a web.AccountView
		getJSON(t, base+"/api/v1/accounts/T-a1", &a)
		return a.PendingCutOff != nil
	})
	stop() // down in mid-grace
	if !mall.meters["M-a1"].Snapshot().RelayClosed {
		t.Fatal("cut before the grace time ran out")
	}
	time.Sleep(4 * time.Second) // the deadline passes while the gateway is down
	base, _ = mall.start(t)
	waitFor(t, 10*time.Second, "the cut-off after the restart", func() bool { return !mall.meters["M-a1"].Snapshot().RelayClosed })
	kinds := eventKinds(t, base, "T-a1")
	if kinds["cutoff_scheduled"] != 1 || kinds["cut_off"] != 1 {
		t.Errorf("events %v; want one cutoff_scheduled and one cut_off across the restart", kinds)
	}
}

// A meter that does not answer when its cut-off is due is retried with
// backoff, raises relay_fault, and is cut when it answers again.
func TestEnforcement_MeterOfflineAtCutOff(t *testing.T) {
	t.Parallel()
	mall := cutOffMall(t, "3s")
	base, _ := mall.start(t)
	m := mall.meters["M-a1"]
	m.SetLoad(36_000)
	waitFor(t, 20*time.Second, "the cut-off to be scheduled", func() bool {
		var a web.AccountView
		getJSON(t, base+"/api/v1/accounts/T-a1", &a)
		return a.PendingCutOff != nil
	})
	// The meter goes silent before the grace time ends.
	if err := m.SetFaultRates(map[sim.FaultKind]float64{sim.NoReply: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "relay_fault", func() bool { return eventKinds(t, base, "T-a1")["relay_fault"] > 0 })
	if !m.Snapshot().RelayClosed {
		t.Fatal("the relay opened while the meter did not answer")
	}
	m.ClearFaults()
	waitFor(t, 30*time.Second, "the cut-off once the meter answers", func() bool { return !m.Snapshot().RelayClosed })
}

// A relay that does not follow — a KPM33B left in local mode, configured
// here as a model that never sets remote mode — is retried and raises
// relay_fault; the gateway does not pretend it switched.
func TestEnforcement_StuckRelay(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1,
		"models:\n  - name: kpm33b-local\n    registers:\n"+
			"      - {quantity: import_kwh, address: 0x0082, type: float32}\n"+
			"      - {quantity: voltage_a, address: 0x0030, type: float32}\n"+
			"    relay: {coil: 1}\n")
	for i := range mall.cfg.Meters {
		if mall.cfg.Meters[i].ID == "M-a1" {
			mall.cfg.Meters[i].Model = "kpm33b-local"
		}
	}
	base, _ := mall.start(t)
	waitFor(t, 10*time.Second, "M-a1 read", func() bool {
		var v web.MeterView
		getJSON(t, base+"/api/v1/meters/M-a1", &v)
		return v.Relay.Actual == "closed"
	})
	if code := call(t, "POST", base+"/api/v1/meters/M-a1/relay", "till-secret", `{"state":"off","reason":"test"}`, nil); code != 200 {
		t.Fatalf("override = %d", code)
	}
	waitFor(t, 30*time.Second, "relay_fault", func() bool { return eventKinds(t, base, "T-a1")["relay_fault"] > 0 })
	if !mall.meters["M-a1"].Snapshot().RelayClosed {
		t.Error("the simulated relay in local mode switched")
	}
	var v web.MeterView
	getJSON(t, base+"/api/v1/meters/M-a1", &v)
	if v.Relay.Desired != "open" || v.Relay.Actual != "closed" {
		t.Errorf("relay = %+v; want desired open, actual closed (it did not follow)", v.Relay)
	}
}

// The status views and relay commands take the live picture's lock and the
// enforcer's in opposite roles; a page polled while relays switch must not
// deadlock them (it once did).
func TestEnforcement_NoDeadlockWithPagePolling(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	base, stop := mall.start(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		end := time.Now().Add(3 * time.Second)
		for i := 0; time.Now().Before(end); i++ {
			state := []string{"off", "on", "auto"}[i%3]
			call(t, "POST", base+"/api/v1/meters/M-a1/relay", "till-secret", `{"state":"`+state+`","reason":"deadlock test"}`, nil)
			time.Sleep(200 * time.Millisecond)
		}
	}()
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		var ms []web.MeterView
		getJSON(t, base+"/api/v1/meters", &ms)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("relay overrides stuck while the page polled")
	}
	if took := stop(); took > 2*time.Second {
		t.Errorf("shutdown took %v", took)
	}
}

// An override and its return to automatic each switch the relay once, on a
// bus busy all the time, where a command almost always lands while other
// meters of the cycle are being read: the cycle's earlier reading of the
// overridden meter, committed after the command, used to bring the old
// relay state back for a cycle, and enforcement sent the command again.
func TestRelayOverride_OneCommandPerChange(t *testing.T) {
	t.Parallel()
	mall := newWiredMall(t, 4, sim.WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: 10 * time.Millisecond})
	base, _ := mall.start(t)
	const op = "till-secret"
	url := base + "/api/v1/meters/M-a1/relay"
	relay := func() string {
		var m web.MeterView
		getJSON(t, base+"/api/v1/meters/M-a1", &m)
		return m.Relay.Actual
	}
	waitFor(t, 15*time.Second, "M-a1 read", func() bool { return relay() == "closed" })
	for _, step := range []struct{ body, want string }{
		{`{"state":"off","reason":"electrician at work"}`, "open"},
		{`{"state":"auto"}`, "closed"},
		{`{"state":"off","reason":"second visit"}`, "open"},
		{`{"state":"auto"}`, "closed"},
	} {
		var v web.RelayView
		if code := call(t, "POST", url, op, step.body, &v); code != 200 {
			t.Fatalf("%s: %d", step.body, code)
		}
		waitFor(t, 15*time.Second, "the relay "+step.want, func() bool {
			return mall.meters["M-a1"].Snapshot().RelayClosed == (step.want == "closed") && relay() == step.want
		})
		// Watch the page's relay state over three cycles: it never flips back.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if got := relay(); got != step.want {
				t.Errorf("after %s: the API shows the relay %s; want %s throughout", step.body, got, step.want)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	kinds := eventKinds(t, base, "T-a1")
	if kinds["relay_opened"] != 2 || kinds["relay_closed"] != 2 {
		t.Errorf("relay_opened %d, relay_closed %d; want 2 and 2: one command per change", kinds["relay_opened"], kinds["relay_closed"])
	}
}

// emptyField returns the part of an event text that shows a field left
// empty — "()", ": ," or a text ending in a colon — or "".
func emptyField(text string) string {
	for _, hole := range []string{"()", "( )", "(:", ": )", ": ,", " , ", ":  ", "  "} {
		if strings.Contains(text, hole) {
			return hole
		}
	}
	if t := strings.TrimSpace(text); t == "" || strings.HasSuffix(t, ":") || strings.HasSuffix(t, "(") {
		return "the end"
	}
	return ""
}
