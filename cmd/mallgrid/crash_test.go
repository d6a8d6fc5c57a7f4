//go:build soak

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/pipeline"
	"mallgrid/store"
)

// minuteTOU is a time-of-use tariff whose price changes every minute, so
// that charges are posted (not only accrued) within a short test.
func minuteTOU() string {
	var b strings.Builder
	b.WriteString("tariffs:\n  - name: t\n    kind: tou\n    rates: {peak: '1.20', valley: '0.40'}\n    days:\n      - days: all\n        windows:\n")
	for m := 0; m < 24*60; m++ {
		rate := "valley"
		if m%2 == 1 {
			rate = "peak"
		}
		to := fmt.Sprintf("%02d:%02d", (m+1)/60, (m+1)%60)
		fmt.Fprintf(&b, "          - {from: '%02d:%02d', to: '%s', rate: %s}\n", m/60, m%60, to, rate)
	}
	return b.String()
}

// The crash test's simulated mall.
const (
	crashMeters  = 8
	crashStartWh = 1_000_000 // every simulated counter starts here
	crashLoadW   = 36_000    // each meter's constant draw: 10 Wh a second, energy in every cycle
	crashMinKill = 200       // kill points the test must reach
)

// TestCrash_KilledGatewayBillsOnce kills the daemon with SIGKILL at least
// crashMinKill times, at random moments while it polls eight simulated
// meters and a till sends top-ups (the same payment again and again, now
// and then keyed in for the wrong shop), restarting it each time. Then it
// holds the ledger to what really happened: every top-up the gateway
// acknowledged is in the ledger once, to the tenant and for the amount
// acknowledged, and nothing else was credited; each meter's charges, posted
// and open, add up to exactly its counter's rise, which the simulator — in
// this process, out of the kills' reach — knows; and mallgrid verify passes.
func TestCrash_KilledGatewayBillsOnce(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	simAddr, sims := crashSim(t)
	httpAddr := freePort(t)
	dbPath := filepath.Join(dir, "g.db")
	cfgPath := writeCrashConfig(t, dir, dbPath, simAddr, httpAddr)

	till := newTill("http://" + httpAddr)
	sending, stopSending := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	for i := range 2 { // two tills: the same payment may arrive twice at once
		senders.Add(1)
		go func() {
			defer senders.Done()
			till.run(sending, rand.New(rand.NewPCG(7, uint64(i))))
		}()
	}
	defer func() { stopSending(); senders.Wait() }()

	// Lives of 100–800 ms put the kills everywhere: in start-up, in a bus
	// cycle's commit, in a top-up's transaction, between a commit and its
	// answer. The kills go on past crashMinKill until the clean run after
	// them can start a few seconds before a minute's price change.
	rng := rand.New(rand.NewPCG(7, 11))
	kills := 0
	giveUp := time.Now().Add(3 * time.Minute)
	for time.Now().Before(giveUp) {
		toMinute := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute))
		if kills >= crashMinKill+10 && toMinute > 5*time.Second && toMinute < 12*time.Second {
			break
		}
		killAfter(t, cfgPath, kills, time.Duration(100+rng.IntN(700))*time.Millisecond)
		kills++
	}
	stopSending()
	senders.Wait()
	killPhase := time.Since(began)
	if kills < crashMinKill {
		t.Fatalf("%d kills in %v; want at least %d", kills, killPhase.Round(time.Second), crashMinKill)
	}

	// A last clean run takes up every meter again and crosses a minute's
	// price change, so that charges are posted, not only accrued, whatever
	// the kills hit. Then the meters stop drawing, and the gateway is
	// stopped once it holds their final counters: the truth to compare with.
	cmd, stderr := startGateway(t, cfgPath)
	nextMinute := time.Now().Truncate(time.Minute).Add(time.Minute)
	time.Sleep(time.Until(nextMinute) + 2500*time.Millisecond)
	final := map[string]int64{}
	for i, m := range sims {
		m.SetLoad(0)
		final[fmt.Sprintf("M-%d", i+1)] = m.Snapshot().ImportWh
	}
	elapsed := time.Since(began)
	waitForCounters(t, "http://"+httpAddr, final)
	stopWithin(t, cmd, syscall.SIGTERM, 2*time.Second)
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("the clean run said:\n%s", s)
	}

	code, stdout, errOut := mallgrid(t, "verify", "-c", cfgPath)
	if code != 0 || !strings.Contains(stdout, "ledger ok") {
		t.Errorf("after %d kills, verify = %d, %q; want 0, \"ledger ok\"\n%s", kills, code, strings.TrimSpace(stdout), errOut)
	}

	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	topups := map[string][]store.Entry{}
	posted, charges := map[string]int64{}, map[string]int{}
	err = db.EachEntry(func(e store.Entry) error {
		switch e.Kind {
		case store.TopUp:
			topups[e.Ref] = append(topups[e.Ref], e)
		case store.Charge:
			posted[e.Meter] += e.Wh
			charges[e.Meter]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	till.check(t, topups)
	checkCharged(t, db, final, posted, charges, elapsed)
	t.Logf("%d kills in %v; whole test %v; %s", kills, killPhase.Round(time.Second),
		time.Since(began).Round(time.Second), strings.TrimSpace(stdout))
}

// crashSim serves the simulated meters M-1…M-8 (addresses 1–8) on a TCP
// socket of the test's own process, where no kill reaches them: their
// counters are the truth the ledger is held to.
func crashSim(t *testing.T) (addr string, meters []*sim.Meter) {
	t.Helper()
	bus, err := sim.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	for a := 1; a <= crashMeters; a++ {
		m, err := sim.NewMeter(meter.KPM33B(), uint8(a), sim.WithProfile(sim.Constant(crashLoadW)), sim.WithImportWh(crashStartWh))
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Add(m); err != nil {
			t.Fatal(err)
		}
		meters = append(meters, m)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulated meters: %v", err)
		}
	})
	return ln.Addr().String(), meters
}

// writeCrashConfig writes the gateway's configuration: the eight meters on
// one Modbus TCP bus read every second, a tenant each on the minute tariff,
// and the till's token "till-secret" (operator).
func writeCrashConfig(t *testing.T, dir, dbPath, simAddr, httpAddr string) string {
	t.Helper()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "site: {name: crash, timezone: Asia/Shanghai}\nstorage: {path: %s}\n", dbPath)
	fmt.Fprintf(&cfg, "http:\n  listen: '%s'\n  tokens: [{name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}]\n", httpAddr)
	fmt.Fprintf(&cfg, "log: {level: warn}\nbuses:\n  - {name: lan, type: tcp, port: '%s', interval: 1s, pause: 0s}\nmeters:\n", simAddr)
	for a := 1; a <= crashMeters; a++ {
		fmt.Fprintf(&cfg, "  - {id: M-%d, bus: lan, address: %d, model: kpm33b, tenant: T-%d, rated_current: 100}\n", a, a, a)
	}
	cfg.WriteString("tenants:\n")
	for a := 1; a <= crashMeters; a++ {
		fmt.Fprintf(&cfg, "  - {id: T-%d, name: Shop %d, tariff: t}\n", a, a)
	}
	cfg.WriteString(minuteTOU())
	path := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway starts `mallgrid run`; its log is read once it has exited.
func startGateway(t *testing.T, cfgPath string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &stderr
}

// killAfter runs the gateway for life and kills it with SIGKILL. A gateway
// that exits by itself first (one that refuses its database after a kill,
// say) fails the test: that is no kill point.
func killAfter(t *testing.T, cfgPath string, round int, life time.Duration) {
	t.Helper()
	cmd, stderr := startGateway(t, cfgPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("round %d: the gateway exited by itself (%v) within %v; want it running until killed:\n%s", round, err, life, stderr)
	case <-time.After(life):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("round %d: gateway ended with %v; want killed by SIGKILL:\n%s", round, err, stderr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: gateway ended with %v; want killed by SIGKILL:\n%s", round, err, stderr)
	}
}

// waitForCounters waits until the gateway shows every meter at its counter
// in want: it has then accepted and stored that reading.
func waitForCounters(t *testing.T, base string, want map[string]int64) {
	t.Helper()
	wantKWh := map[string]string{}
	for id, wh := range want {
		wantKWh[id] = meter.FormatKWh(wh)
	}
	got := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := getWithToken(base+"/api/v1/meters", "till-secret")
		if err != nil {
			continue
		}
		var views []struct {
			ID        string `json:"id"`
			ImportKWh string `json:"import_kwh"`
		}
		err = json.NewDecoder(resp.Body).Decode(&views)
		resp.Body.Close()
		if err != nil {
			continue
		}
		clear(got)
		for _, v := range views {
			got[v.ID] = v.ImportKWh
		}
		if fmt.Sprint(got) == fmt.Sprint(wantKWh) { // fmt prints maps sorted
			return
		}
	}
	t.Fatalf("the gateway shows the counters %v kWh; want %v, where the meters stopped", got, wantKWh)
}

// checkCharged holds each meter's charges to its real rise: the energy
// charged (posted, and open in its state) is its last accepted counter less
// its first, the first is the chain-0 break, the last is both the latest
// stored reading and the simulator's final counter.
func checkCharged(t *testing.T, db *store.DB, final, posted map[string]int64, charges map[string]int, elapsed time.Duration) {
	t.Helper()
	breaks, err := db.Breaks()
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]int64{}
	for _, br := range breaks {
		if br.Chain != 0 || br.Kind != "baseline" {
			t.Errorf("meter %s: break %+v; want only its first reading's (chain 0, baseline): the simulated counters only rise", br.Meter, br)
			continue
		}
		if wh, dup := first[br.Meter]; dup {
			t.Errorf("meter %s: a second baseline break at %d Wh (the first at %d Wh); want one", br.Meter, br.NewStartWh, wh)
			continue
		}
		first[br.Meter] = br.NewStartWh
	}
	latest, err := db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	states, err := db.MeterStates()
	if err != nil {
		t.Fatal(err)
	}
	// The simulator's counters can rise by no more than the whole test's
	// wall time at their load (and 1 Wh of rounding).
	maxRise := int64(elapsed.Seconds()*crashLoadW/3600) + 1
	var ids []string
	for id := range final {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		start, ok := first[id]
		if !ok {
			t.Errorf("meter %s: no baseline break; want its first accepted counter recorded", id)
			continue
		}
		rd, ok := latest[id]
		if !ok {
			t.Errorf("meter %s: no stored reading", id)
			continue
		}
		st, err := pipeline.DecodeState(states[id])
		if err != nil {
			t.Errorf("meter %s: %v", id, err)
			continue
		}
		// The open charge is stored nowhere else, and charged energy must
		// count it.
		var openWh int64
		if o := st.Open; o != nil {
			openWh = o.ToWh - o.FromWh
		}
		last := rd.ImportWh
		if !st.Counter.Known || st.Counter.Baseline.Wh != last {
			t.Errorf("meter %s: its state has %d Wh as last accepted counter (known %v); want %d, its latest stored reading", id, st.Counter.Baseline.Wh, st.Counter.Known, last)
		}
		if last != final[id] {
			t.Errorf("meter %s: last accepted counter %d Wh; want %d, where the simulated meter stopped", id, last, final[id])
		}
		if real := final[id] - crashStartWh; real > maxRise {
			t.Errorf("meter %s: the simulated counter rose %d Wh; want at most %d in %v at %d W", id, real, maxRise, elapsed.Round(time.Second), crashLoadW)
		}
		if start < crashStartWh || start > last {
			t.Errorf("meter %s: first accepted counter %d Wh; want between %d (the simulator's start) and %d (its last)", id, start, crashStartWh, last)
		}
		if charged := posted[id] + openWh; charged != last-start {
			t.Errorf("meter %s: charged %d Wh (%d posted in %d charges + %d open); want %d, its rise from %d to %d Wh",
				id, charged, posted[id], charges[id], openWh, last-start, start, last)
		}
		if charges[id] == 0 {
			t.Errorf("meter %s: no charge posted; want the price changes to have posted some", id)
		}
		t.Logf("meter %s: counter %d → %d Wh, rise %d Wh; charged %d Wh posted in %d charges + %d Wh open",
			id, start, last, last-start, posted[id], charges[id], openWh)
	}
}

// till sends top-ups as a shop's till does: the same payment again when
// no answer came, now and then keyed in for the wrong shop. It keeps every
// answer that acknowledged a top-up.
type till struct {
	base   string
	began  time.Time
	client *http.Client

	mu   sync.Mutex
	sent map[string]bool // payment references sent, answered or not
	acks map[string]ack  // reference → the first answer that acknowledged it
	// created marks the references answered 201 Created; repeated holds
	// when a reference's first 200 (a repeat) was heard. Two tills send
	// one payment at once: the request that credits it answers after the
	// repeat that found it credited (the credit's answer waits for its
	// audit record), so a 201 heard after a 200 is no second credit —
	// unless that 200 was heard before the 201's request was even sent.
	created  map[string]bool
	repeated map[string]time.Time
	again    int         // acknowledgements of a reference acknowledged before
	statuses map[int]int // complete answers by status
	lost     int         // requests without a complete answer
	problems []string    // answers no correct gateway gives
}

// ack is what an answer acknowledged: the entry crediting amount to tenant.
type ack struct {
	tenant string
	amount billing.Money
	id     uint64
}

func newTill(base string) *till {
	return &till{
		base:  base,
		began: time.Now(),
		// A new connection for each request, so that a kill can cut any of
		// them; no request waits long for a gateway that is gone.
		client:   &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		sent:     map[string]bool{},
		acks:     map[string]ack{},
		created:  map[string]bool{},
		repeated: map[string]time.Time{},
		statuses: map[int]int{},
	}
}

// payment n is credited to its shop for its own amount, so that a ledger
// entry with the wrong tenant or amount cannot pass for another payment.
func payment(n int) (ref, tenant, amount string) {
	return fmt.Sprintf("PAY-%d", n), fmt.Sprintf("T-%d", 1+n%crashMeters), fmt.Sprintf("%d.%02d", 10+n%90, n*37%100)
}

// run sends top-ups until ctx ends: from a sliding window of twenty
// payments, a new one every half second, so that each is sent a dozen
// times or so around kills, and new ones keep coming to the end.
func (c *till) run(ctx context.Context, rng *rand.Rand) {
	for {
		ref, tenant, amount := payment(int(time.Since(c.began)/(500*time.Millisecond)) + rng.IntN(20))
		if rng.IntN(10) == 0 {
			tenant = fmt.Sprintf("T-%d", 1+rng.IntN(crashMeters)) // the wrong shop: a 409 once the payment is credited
		}
		c.topUp(ctx, ref, tenant, amount)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(20+rng.IntN(60)) * time.Millisecond):
		}
	}
}

func (c *till) topUp(ctx context.Context, ref, tenant, amount string) {
	c.mu.Lock()
	c.sent[ref] = true
	c.mu.Unlock()
	body := fmt.Sprintf(`{"amount":"%s","ref":"%s","channel":"cash"}`, amount, ref)
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/accounts/"+tenant+"/topups", strings.NewReader(body))
	if err != nil {
		panic(err) // a constant URL: cannot fail
	}
	req.Header.Set("Authorization", "Bearer till-secret")
	sentAt := time.Now()
	resp, err := c.client.Do(req)
	var raw []byte
	if err == nil {
		raw, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil { // the gateway was down or killed: nothing acknowledged
		c.lost++
		return
	}
	c.statuses[resp.StatusCode]++
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK:
	case http.StatusConflict: // credited before to another shop or amount: refused
		return
	default:
		c.problems = append(c.problems, fmt.Sprintf("top-up %s of %s to %s: status %d %s; want 201, 200 or 409", ref, amount, tenant, resp.StatusCode, raw))
		return
	}
	var e struct {
		ID     uint64 `json:"id"`
		Kind   string `json:"kind"`
		Amount string `json:"amount"`
		Ref    string `json:"ref"`
	}
	want, err := billing.ParseMoney(amount)
	if err != nil {
		panic(err) // payment's amounts parse
	}
	var got billing.Money
	if err = json.Unmarshal(raw, &e); err == nil {
		got, err = billing.ParseMoney(e.Amount)
	}
	if err != nil || e.ID == 0 || e.Kind != string(store.TopUp) || e.Ref != ref || got != want {
		c.problems = append(c.problems, fmt.Sprintf("top-up %s of %s to %s: %d %s; want the top-up entry of that payment", ref, amount, tenant, resp.StatusCode, raw))
		return
	}
	a := ack{tenant: tenant, amount: want, id: e.ID}
	prev, seen := c.acks[ref]
	switch {
	case !seen:
		c.acks[ref] = a
	case prev != a:
		c.problems = append(c.problems, fmt.Sprintf("payment %s acknowledged as entry %d (%s to %s) and then as entry %d (%s to %s); want one entry",
			ref, prev.id, prev.amount, prev.tenant, a.id, a.amount, a.tenant))
	default:
		c.again++
	}
	heard := time.Now()
	switch {
	case resp.StatusCode == http.StatusOK:
		if _, ok := c.repeated[ref]; !ok {
			c.repeated[ref] = heard
		}
	case c.created[ref]:
		c.problems = append(c.problems, fmt.Sprintf("payment %s: entry %d answered 201 Created again; want 200 for a repeat", ref, a.id))
	case !c.repeated[ref].IsZero() && c.repeated[ref].Before(sentAt):
		c.problems = append(c.problems, fmt.Sprintf("payment %s: entry %d answered 201 Created to a request sent after a repeat was answered 200", ref, a.id))
	default:
		c.created[ref] = true
	}
}

// check holds the ledger's top-ups (by reference) to the answers: each
// acknowledged payment credited exactly once, as acknowledged; no
// reference credited twice; nothing credited that was never sent.
func (c *till) check(t *testing.T, topups map[string][]store.Entry) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		t.Error(p)
	}
	if len(c.acks) == 0 {
		t.Error("no top-up was acknowledged; want the kills to fall among answered top-ups")
	}
	for ref, a := range c.acks {
		es := topups[ref]
		if len(es) != 1 {
			t.Errorf("payment %s: %d ledger entries; want 1, acknowledged as entry %d", ref, len(es), a.id)
			continue
		}
		if e := es[0]; e.ID != a.id || e.Account != a.tenant || e.Amount != a.amount {
			t.Errorf("payment %s: entry %d of %s to %s; want entry %d of %s to %s, as acknowledged", ref, e.ID, e.Amount, e.Account, a.id, a.amount, a.tenant)
		}
	}
	unanswered := 0
	for ref, es := range topups {
		switch {
		case !c.sent[ref]:
			t.Errorf("payment %s: %d entries (the first %d of %s to %s); want none, it was never sent", ref, len(es), es[0].ID, es[0].Amount, es[0].Account)
		case len(es) != 1:
			t.Errorf("payment %s: %d ledger entries; want 1", ref, len(es))
		}
		if _, ok := c.acks[ref]; !ok {
			unanswered++
		}
	}
	t.Logf("top-ups: %d payments sent, %d acknowledged (%d acknowledgements of a payment again), %d credited with no answer heard; answers %v, %d requests unanswered",
		len(c.sent), len(c.acks), c.again, unanswered, c.statuses, c.lost)
}
