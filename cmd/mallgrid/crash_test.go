//go:build soak

package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestCrash_KilledGatewayBillsOnce kills the daemon with SIGKILL at random
// moments while it polls eight simulated meters and top-ups arrive (some
// of them sent twice), restarts it each time, and then checks the ledger
// with mallgrid verify: balances, every meter's chain of charges (nothing
// skipped, nothing charged twice), each payment credited once. The energy
// charged must be exactly each meter's rise from its known start to the
// baseline the gateway holds.
func TestCrash_KilledGatewayBillsOnce(t *testing.T) {
	dir := t.TempDir()
	simAddr := freePort(t)
	simFile := filepath.Join(dir, "sim.yaml")
	// 36 kW each: 10 Wh a second, so every cycle has energy to bill.
	sim := "listen: tcp:" + simAddr + "\nmeters:\n  - {model: kpm33b, from: 1, to: 8, load_w: 36000, import_wh: 1000000}\n"
	if err := os.WriteFile(simFile, []byte(sim), 0o600); err != nil {
		t.Fatal(err)
	}
	simCmd, simOut := start(t, "sim", "--file", simFile)
	readLineContaining(t, simOut, "mallgrid sim:")

	httpAddr := freePort(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "site: {name: crash, timezone: Asia/Shanghai}\nstorage: {path: %s}\n", filepath.Join(dir, "g.db"))
	// Token "till-secret" (operator).
	fmt.Fprintf(&cfg, "http:\n  listen: '%s'\n  tokens: [{name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}]\n", httpAddr)
	fmt.Fprintf(&cfg, "log: {level: warn}\nbuses:\n  - {name: lan, type: tcp, port: '%s', interval: 1s, pause: 0s}\nmeters:\n", simAddr)
	for a := 1; a <= 8; a++ {
		fmt.Fprintf(&cfg, "  - {id: M-%d, bus: lan, address: %d, model: kpm33b, tenant: T-%d, rated_current: 100}\n", a, a, a)
	}
	cfg.WriteString("tenants:\n")
	for a := 1; a <= 8; a++ {
		fmt.Fprintf(&cfg, "  - {id: T-%d, name: Shop %d, tariff: t}\n", a, a)
	}
	cfg.WriteString(minuteTOU())
	cfgPath := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(7, 11))
	topup := func(ref string, tenant int) {
		body := fmt.Sprintf(`{"amount":"50.00","ref":"%s","channel":"cash"}`, ref)
		req, _ := http.NewRequest("POST", "http://"+httpAddr+fmt.Sprintf("/api/v1/accounts/T-%d/topups", tenant), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer till-secret")
		if resp, err := http.DefaultClient.Do(req); err == nil { // the gateway may be down: then it was not credited
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	deadline := time.Now().Add(50 * time.Second)
	kills := 0
	for round := 0; time.Now().Before(deadline); round++ {
		cmd := exec.Command(binary, "run", "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		life := time.Duration(300+rng.IntN(3000)) * time.Millisecond
		end := time.Now().Add(life)
		for time.Now().Before(end) {
			time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
			ref := fmt.Sprintf("PAY-%d", rng.IntN(40)) // refs repeat: the same payment sent again
			topup(ref, 1+rng.IntN(8))
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		kills++
	}
	// A last clean run, long enough to take up every meter again and to
	// cross a minute's price change while running, so that charges are
	// posted (not only accrued) whatever the kills above happened to hit.
	cmd, out := start(t, "run", "-c", cfgPath)
	_ = out
	nextMinute := time.Now().Truncate(time.Minute).Add(time.Minute)
	time.Sleep(max(time.Until(nextMinute)+4*time.Second, 3*time.Second))
	stopWithin(t, cmd, syscall.SIGTERM, 2*time.Second)
	stopWithin(t, simCmd, syscall.SIGINT, 2*time.Second)

	code, stdout, stderr := mallgrid(t, "verify", "-c", cfgPath)
	if code != 0 {
		t.Fatalf("after %d kills, verify = %d:\n%s%s", kills, code, stdout, stderr)
	}
	t.Logf("%d kills; %s", kills, strings.TrimSpace(stdout))
	if !strings.Contains(stdout, "ledger ok") {
		t.Errorf("verify said %q", stdout)
	}
	// The chains verify checked must be real ones: every meter billed,
	// and charges posted, not only accrued.
	db, err := store.Open(filepath.Join(dir, "g.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	charged := map[string]int64{}
	posted := 0
	err = db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.Charge {
			charged[e.Meter] += e.Wh
			posted++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if posted == 0 {
		t.Error("no charge was posted; the test must see charges cross a minute's price change")
	}
	t.Logf("%d charges posted: %v Wh by meter", posted, charged)
}
