package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// postOp sends body with the operator's token and returns the status, the
// headers and the body.
func postOp(t *testing.T, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer till-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// eventLines follows the gateway's event stream and sends its data lines.
func eventLines(t *testing.T, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer screen-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				select {
				case lines <- data:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return lines
}

// runOnce starts the gateway on cfg again and returns what Run returned
// if it stopped within a few seconds (a refusal to start), or nil.
func runOnce(t *testing.T, mall *testMall) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Config: mall.cfg, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Listener: ln, Version: "test"})
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(3 * time.Second):
		cancel()
		<-errc
		return nil
	}
}

// testDatabaseLost runs the gateway, loses its database file while it runs
// (lose), and checks that this is noticed within a poll cycle and changes
// nothing from then on — a top-up is a 503 with the reason, /healthz is 503,
// the control room gets a database_unavailable event — and that after a
// restart the gateway refuses to start (refusal) rather than serve a
// fresh ledger.
func testDatabaseLost(t *testing.T, lose func(t *testing.T, path string), refusal error) {
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	accounts := base + "/api/v1/accounts"
	if code, _, body := postOp(t, accounts+"/T-a1/topups", `{"amount":"10.00","ref":"PAY-1","channel":"cash"}`); code != 201 {
		t.Fatalf("top-up = %d %s; want 201", code, body)
	}
	events := eventLines(t, base)

	lose(t, mall.dbPath)
	lost := time.Now()
	var sawEvent bool
	deadline := time.After(5 * time.Second)
	for !sawEvent {
		select {
		case line, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			sawEvent = strings.Contains(line, `"kind":"database_unavailable"`)
			if sawEvent && !strings.Contains(line, mall.dbPath) {
				t.Errorf("event %s does not name the file", line)
			}
		case <-deadline:
			t.Fatal("no database_unavailable event within 5s")
		}
	}
	if took := time.Since(lost); took > 2*time.Second {
		t.Errorf("the loss was told after %v; want within a poll cycle (1s) and a little", took)
	}
	var health web.HealthView
	if code := getJSON(t, base+"/healthz", &health); code != 503 || !strings.Contains(strings.Join(health.Problems, "; "), "deleted or replaced") {
		t.Errorf("healthz = %d %v; want 503 with the reason", code, health)
	}
	code, _, body := postOp(t, accounts+"/T-a1/topups", `{"amount":"20.00","ref":"PAY-2","channel":"cash"}`)
	if code != 503 || !strings.Contains(body, "nothing was recorded") {
		t.Errorf("top-up after the loss = %d %s; want 503 saying nothing was recorded", code, body)
	}
	var acct web.AccountView
	if getJSON(t, accounts+"/T-a1", &acct); acct.Balance != "10.00" {
		t.Errorf("balance after the refused top-up = %s; want 10.00", acct.Balance)
	}
	stop()

	before, _ := os.ReadFile(mall.dbPath)
	if err := runOnce(t, mall); !errors.Is(err, refusal) {
		t.Fatalf("restart after the loss: Run = %v; want %v", err, refusal)
	}
	if after, _ := os.ReadFile(mall.dbPath); string(before) != string(after) {
		t.Error("the refused restart changed the file at the database's path")
	}
}

func TestRun_DatabaseDeletedWhileRunning(t *testing.T) {
	t.Parallel()
	testDatabaseLost(t, func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}, store.ErrMissing)
}

// TestRun_DatabaseDeletedWhileRunning_Rescued: the top-ups acknowledged
// before the file was deleted are only in the open, unlinked file; the
// gateway copies it beside the path the moment it notices, names the
// copy in its event, and the copy verifies and holds them.
func TestRun_DatabaseDeletedWhileRunning_Rescued(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	if code, _, body := postOp(t, base+"/api/v1/accounts/T-a1/topups", `{"amount":"12.50","ref":"PAY-1","channel":"cash"}`); code != 201 {
		t.Fatalf("top-up = %d %s; want 201", code, body)
	}
	events := eventLines(t, base)
	if err := os.Remove(mall.dbPath); err != nil {
		t.Fatal(err)
	}
	var event string
	deadline := time.After(5 * time.Second)
	for event == "" {
		select {
		case line, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if strings.Contains(line, `"kind":"database_unavailable"`) {
				event = line
			}
		case <-deadline:
			t.Fatal("no database_unavailable event within 5s")
		}
	}
	stop()
	rescued, _ := filepath.Glob(mall.dbPath + store.RescueSuffix + "*")
	if len(rescued) != 1 {
		t.Fatalf("rescued copies: %v; want one beside %s", rescued, mall.dbPath)
	}
	if !strings.Contains(event, rescued[0]) {
		t.Errorf("event %s does not name the rescued copy %s", event, rescued[0])
	}
	report, err := verify.File(rescued[0])
	if err != nil || len(report.Violations) != 0 {
		t.Errorf("verify of the rescued copy = %v, %v; want clean", report.Violations, err)
	}
	if refs := topUpRefs(t, rescued[0]); refs["PAY-1"] != 1 {
		t.Errorf("rescued copy holds top-ups %v; want PAY-1 once", refs)
	}
	// Moved into place, it is the database the marker names: the gateway
	// starts on it.
	if err := os.Rename(rescued[0], mall.dbPath); err != nil {
		t.Fatal(err)
	}
	if err := runOnce(t, mall); err != nil {
		t.Errorf("start on the rescued copy: %v", err)
	}
}

// topUpRefs counts the top-ups in the database at path by reference.
func topUpRefs(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	refs := make(map[string]int)
	if err := db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.TopUp {
			refs[e.Ref]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return refs
}

// testDatabaseChangedInPlace runs the gateway and changes its database
// file in place (same inode, which the path check cannot see): bbolt maps
// the file, so a read of an emptied file faults inside bbolt, and an
// overwritten one is another database under bbolt's freelist. It must be
// noticed within a poll cycle — /healthz 503 — a top-up must be a 503 and
// credit nothing, and the gateway must still stop promptly (no read or
// Close left waiting on bbolt's locks).
func testDatabaseChangedInPlace(t *testing.T, change func(t *testing.T, path string)) {
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	// Healthy first: a 503 of buses not yet answered would pass for the
	// change noticed.
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var h web.HealthView
		return getJSON(t, base+"/healthz", &h) == 200
	})
	topups := base + "/api/v1/accounts/T-a1/topups"
	if code, _, body := postOp(t, topups, `{"amount":"10.00","ref":"PAY-1","channel":"cash"}`); code != 201 {
		t.Fatalf("top-up = %d %s; want 201", code, body)
	}
	events := eventLines(t, base)
	change(t, mall.dbPath)
	changed := time.Now()
	var health web.HealthView
	waitFor(t, 2*time.Second, "healthz 503 after the file was changed", func() bool {
		return getJSON(t, base+"/healthz", &health) == 503
	})
	t.Logf("healthz 503 after %v: %s", time.Since(changed), strings.Join(health.Problems, "; "))
	if !strings.Contains(strings.Join(health.Problems, "; "), "changed behind the gateway's back") {
		t.Errorf("healthz reason = %q; want it to say the file was changed behind the gateway's back", strings.Join(health.Problems, "; "))
	}
	code, _, body := postOp(t, topups, `{"amount":"20.00","ref":"PAY-2","channel":"cash"}`)
	if code != 503 || !strings.Contains(body, "nothing was recorded") {
		t.Errorf("top-up after the change = %d %s; want 503 saying nothing was recorded", code, body)
	}
	// Told even when nothing asks: the watch sees it within a second.
	deadline := time.After(3 * time.Second)
	for told := false; !told; {
		select {
		case line, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			told = strings.Contains(line, `"kind":"database_unavailable"`) && strings.Contains(line, "changed behind the gateway's back")
		case <-deadline:
			t.Fatal("no database_unavailable event saying the file was changed within 3s")
		}
	}
	if took := stop(); took > 2*time.Second {
		t.Errorf("stop took %v; want within 2s", took)
	}
	if st, err := os.Stat(mall.dbPath); err == nil && st.Size() > 0 {
		// A commit that passed its check just before the file was emptied
		// may still write its pages into it: what is left is then refused
		// as damaged, which holds no PAY-2 either.
		db, err := store.Open(mall.dbPath, store.Options{ReadOnly: true})
		if errors.Is(err, store.ErrCorrupt) {
			return
		}
		if err == nil {
			db.Close()
		}
		if refs := topUpRefs(t, mall.dbPath); refs["PAY-2"] != 0 {
			t.Errorf("the file holds top-ups %v; want no PAY-2", refs)
		}
	}
}

func TestRun_DatabaseEmptiedInPlaceWhileRunning(t *testing.T) {
	t.Parallel()
	testDatabaseChangedInPlace(t, func(t *testing.T, path string) {
		if err := os.Truncate(path, 0); err != nil { // `: > FILE`
			t.Fatal(err)
		}
	})
}

func TestRun_DatabaseOverwrittenInPlaceWhileRunning(t *testing.T) {
	t.Parallel()
	testDatabaseChangedInPlace(t, func(t *testing.T, path string) {
		// Another copy written over it the way cp does: O_TRUNC, same inode.
		other := filepath.Join(t.TempDir(), "other.db")
		db, err := store.Open(other, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"X-1", "X-2", "X-3", "X-4"} {
			if _, _, err := db.PostTopUp(store.Entry{Account: "T-a1", Amount: 100, Ref: ref, Channel: "cash", Time: time.Now(), Actor: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(other)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRun_DatabaseReplacedWhileRunning(t *testing.T) {
	t.Parallel()
	testDatabaseLost(t, func(t *testing.T, path string) {
		other := filepath.Join(t.TempDir(), "other.db")
		db, err := store.Open(other, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
	}, store.ErrReplaced)
}

// TestRun_DiskFull fills the gateway's disk for real, in a child process
// whose file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) is set below
// every data page of the database while the gateway runs: each commit then
// fails with EFBIG, as on a full disk with ENOSPC. A top-up is a 503 with
// Retry-After, /healthz fails, nothing is credited; once the limit is
// lifted, the gateway goes on by itself (/healthz recovers with the next
// committed cycle), the same top-up sent again is credited exactly once,
// and the ledger verifies clean.
func TestRun_DiskFull(t *testing.T) {
	t.Parallel()
	if os.Getenv("MALLGRID_TEST_DISKFULL_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRun_DiskFull$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "MALLGRID_TEST_DISKFULL_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestRun_DiskFull") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	// Healthy first: a 503 of buses not yet answered would pass for the
	// change noticed.
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var h web.HealthView
		return getJSON(t, base+"/healthz", &h) == 200
	})
	topups := base + "/api/v1/accounts/T-a1/topups"
	if code, _, body := postOp(t, topups, `{"amount":"10.00","ref":"PAY-1","channel":"cash"}`); code != 201 {
		t.Fatalf("top-up = %d %s; want 201", code, body)
	}

	signal.Ignore(syscall.SIGXFSZ)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	full := syscall.Rlimit{Cur: 2 * uint64(os.Getpagesize()), Max: old.Max} // the two meta pages
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	code, header, body := postOp(t, topups, `{"amount":"5.00","ref":"PAY-2","channel":"cash"}`)
	if code != 503 || header.Get("Retry-After") == "" || !strings.Contains(body, "disk is full") {
		t.Errorf("top-up on a full disk = %d Retry-After %q %s; want 503 with Retry-After", code, header.Get("Retry-After"), body)
	}
	var health web.HealthView
	if code := getJSON(t, base+"/healthz", &health); code != 503 || !strings.Contains(strings.Join(health.Problems, "; "), "no space") {
		t.Errorf("healthz on a full disk = %d %v; want 503 saying so", code, health)
	}
	time.Sleep(1500 * time.Millisecond) // a poll cycle fails to commit too
	if code := getJSON(t, base+"/healthz", &health); code != 503 {
		t.Errorf("healthz while the disk stays full = %d; want 503", code)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}

	// Space is back: the next cycle's commit makes the database healthy
	// again without anyone's help.
	waitFor(t, 5*time.Second, "healthz ok once space is back", func() bool {
		return getJSON(t, base+"/healthz", &health) == 200
	})
	if code, _, body := postOp(t, topups, `{"amount":"5.00","ref":"PAY-2","channel":"cash"}`); code != 201 {
		t.Errorf("the same top-up with space back = %d %s; want 201 (it was never credited)", code, body)
	}
	if code, _, body := postOp(t, topups, `{"amount":"5.00","ref":"PAY-2","channel":"cash"}`); code != 200 {
		t.Errorf("the same top-up a third time = %d %s; want 200, the original entry", code, body)
	}
	var acct web.AccountView
	if getJSON(t, base+"/api/v1/accounts/T-a1", &acct); acct.Balance != "15.00" || acct.Entries != 2 {
		t.Errorf("account = %s in %d entries; want 15.00 in 2", acct.Balance, acct.Entries)
	}
	stop()
	report, err := verify.File(mall.dbPath)
	if err != nil || len(report.Violations) != 0 {
		t.Errorf("verify after the full disk = %v, %v", report.Violations, err)
	}
}

// TestVerifyFile_DamagedDatabaseNeverPanics damages a database the gateway
// wrote (readings, charges, meter states, a top-up) in many ways — cut
// short, pages zeroed, bytes flipped — and requires verify.File never to
// panic: it verifies, or refuses with ErrCorrupt or another sentinel of the
// store.
func TestVerifyFile_DamagedDatabaseNeverPanics(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	base, stop := mall.start(t)
	if code, _, body := postOp(t, base+"/api/v1/accounts/T-a1/topups", `{"amount":"10.00","ref":"PAY-1","channel":"cash"}`); code != 201 {
		t.Fatalf("top-up = %d %s", code, body)
	}
	for id, sm := range mall.meters {
		sm.SetLoad(float64(3000 + 100*len(id)))
	}
	time.Sleep(2500 * time.Millisecond)
	stop()
	clean, err := os.ReadFile(mall.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if report, err := verify.File(mall.dbPath); err != nil || len(report.Violations) != 0 {
		t.Fatalf("undamaged: %v, %v", report.Violations, err)
	}
	const page = 4096
	type damage struct {
		name string
		file []byte
	}
	var damages []damage
	for n := 0; n < len(clean); n += page / 2 {
		damages = append(damages, damage{"cut to " + strconv.Itoa(n), clean[:n]})
	}
	rng := rand.New(rand.NewPCG(3, 7))
	for p := 0; p*page < len(clean); p++ {
		b := append([]byte(nil), clean...)
		clear(b[p*page : min(len(b), (p+1)*page)])
		damages = append(damages, damage{"page " + strconv.Itoa(p) + " zeroed", b})
	}
	for i := range 150 {
		b := append([]byte(nil), clean...)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		damages = append(damages, damage{"flip " + strconv.Itoa(i), b})
	}
	path := filepath.Join(t.TempDir(), "damaged.db")
	sentinels := []error{store.ErrCorrupt, store.ErrEmpty, store.ErrSchemaOld, store.ErrSchemaTooNew}
	refused := 0
	for _, d := range damages {
		if err := os.WriteFile(path, d.file, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := verify.File(path)
		if err == nil {
			continue
		}
		refused++
		ok := false
		for _, s := range sentinels {
			ok = ok || errors.Is(err, s)
		}
		if !ok {
			t.Errorf("%s: verify.File = %v; want ErrCorrupt or another sentinel of the store", d.name, err)
		}
	}
	t.Logf("%d damaged copies, %d refused", len(damages), refused)
}

// TestRun_NewLedgerIsRecorded: a fresh install's new, empty ledger is not
// made silently: it is the first event in it, and only the first start
// records it.
func TestRun_NewLedgerIsRecorded(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	_, stop := mall.start(t)
	stop()
	if err := runOnce(t, mall); err != nil {
		t.Fatalf("second start: %v", err)
	}
	db, err := store.Open(mall.dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events, err := db.EventsAfter(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, e := range events {
		if e.Kind == "database_created" {
			created++
			if !strings.Contains(e.Text, mall.dbPath) {
				t.Errorf("event %q does not name the file", e.Text)
			}
		}
	}
	if created != 1 || len(events) == 0 || events[0].Kind != "database_created" {
		t.Errorf("events %+v; want database_created first and once", events)
	}
}
