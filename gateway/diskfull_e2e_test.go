//go:build e2e

package gateway

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// TestE2E_DiskFull_Tmpfs runs the gateway with its database on a tiny
// tmpfs (mounting needs root, as CI has) and fills that file system until
// writes fail with a real ENOSPC. Top-ups are sent until one fails: it must
// be a 503 with Retry-After, and every top-up acknowledged before it must be
// in the ledger once. With space freed, the gateway goes on by itself and
// the failed top-up sent again is credited exactly once.
//
// On a full disk bbolt still commits what fits in pages it freed before (a
// poll cycle rewriting the latest readings): /healthz must stay 503 while
// the file system is full even as cycles commit (the store keeps a free
// space reserve, 4 MiB for a database this small), and recover once space
// is freed.
func TestE2E_DiskFull_Tmpfs(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	mall := newTestMall(t, 1)
	mall.cfg.Storage.Path = filepath.Join(mnt, "m.db")
	mall.dbPath = mall.cfg.Storage.Path
	base, stop := mall.start(t)
	topups := base + "/api/v1/accounts/T-a1/topups"
	body := func(ref string) string { return `{"amount":"1.00","ref":"` + ref + `","channel":"cash"}` }
	if code, _, b := postOp(t, topups, body("PAY-0")); code != 201 {
		t.Fatalf("top-up = %d %s", code, b)
	}

	// Fill the file system.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 16<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	filler.Close()

	acknowledged := []string{"PAY-0"}
	failed := ""
	for i := 1; i <= 5000 && failed == ""; i++ {
		ref := fmt.Sprintf("PAY-%d", i)
		code, header, b := postOp(t, topups, body(ref))
		switch code {
		case 201:
			acknowledged = append(acknowledged, ref)
		case 503:
			if header.Get("Retry-After") == "" || !strings.Contains(b, "disk is full") {
				t.Errorf("top-up on a full disk = 503 Retry-After %q %s; want Retry-After and the reason", header.Get("Retry-After"), b)
			}
			failed = ref
		default:
			t.Fatalf("top-up %s on a filling disk = %d %s; want 201 or 503", ref, code, b)
		}
	}
	if failed == "" {
		t.Fatal("5000 top-ups on a full tmpfs all succeeded")
	}
	var health web.HealthView
	code := getJSON(t, base+"/healthz", &health)
	t.Logf("%d top-ups acknowledged before %s failed; healthz then %d %v", len(acknowledged), failed, code, health)
	if code != 503 || !strings.Contains(strings.Join(health.Problems, "; "), "no space") {
		t.Errorf("healthz on a full disk = %d %v; want 503 saying so", code, health)
	}
	// Poll cycles go on committing into freed pages; /healthz stays 503.
	var before, after web.MeterView
	getJSON(t, base+"/api/v1/meters/M-a1", &before)
	for range 6 {
		time.Sleep(500 * time.Millisecond)
		if code := getJSON(t, base+"/healthz", &health); code != 503 {
			t.Errorf("healthz while the tmpfs stays full = %d %v; want 503", code, health)
		}
	}
	getJSON(t, base+"/api/v1/meters/M-a1", &after)
	t.Logf("reading time before %v, after %v (cycles committed while full if it moved)", before.ReadingTime, after.ReadingTime)

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "healthz ok once space is back", func() bool {
		return getJSON(t, base+"/healthz", &health) == 200
	})
	if code, _, b := postOp(t, topups, body(failed)); code != 201 {
		t.Errorf("the failed top-up sent again = %d %s; want 201", code, b)
	}
	if code, _, b := postOp(t, topups, body(failed)); code != 200 {
		t.Errorf("sent a third time = %d %s; want 200", code, b)
	}
	stop()

	db, err := store.Open(mall.dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seen := make(map[string]int)
	if err := db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.TopUp {
			seen[e.Ref]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range append(acknowledged, failed) {
		if seen[ref] != 1 {
			t.Errorf("%s is in the ledger %d times; want once", ref, seen[ref])
		}
	}
	if len(seen) != len(acknowledged)+1 {
		t.Errorf("ledger holds %d top-ups; want %d", len(seen), len(acknowledged)+1)
	}
	if report, err := verify.File(mall.dbPath); err != nil || len(report.Violations) != 0 {
		t.Errorf("verify = %v, %v", report.Violations, err)
	}
}
