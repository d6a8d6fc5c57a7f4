package upfeed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// crashEnv names the database the helper process writes and feeds.
const crashEnv = "UPFEED_CRASH_DB"

// TestCrashHelper is not a test: run by TestFeed_KilledAnywhere in a
// process of its own, it stores events and top-ups and runs a Feed over
// them as fast as it can until it is killed.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("the helper of TestFeed_KilledAnywhere")
	}
	db, err := store.Open(path, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f := &Feed{DB: db, SiteID: "s", Config: &config.Config{Location: time.UTC}, Period: time.Millisecond, Log: zerolog.Nop()}
	go func() {
		for i := 0; ; i++ {
			if _, err := db.PostEvents(store.Event{Time: time.Now(), Kind: "warning_1", Text: "x"}, store.Event{Time: time.Now(), Kind: "warning_2", Text: "y"}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			ref := fmt.Sprintf("%d-%d", os.Getpid(), i)
			if _, _, err := db.PostTopUp(store.Entry{Time: time.Now(), Account: "T-1", Kind: store.TopUp, Amount: billing.Yuan, Ref: ref}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			f.Wake()
		}
	}()
	_ = f.Run(context.Background())
}

// A gateway killed with SIGKILL at random moments, over and over, while it
// stores news and feeds the outbox: afterwards every event and entry went
// up exactly once, in order, and the seqs are 1…head without a gap.
func TestFeed_KilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	// The uplink's first start, before anything is stored: every event
	// and entry after it must go up.
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &Feed{DB: db, SiteID: "s", Config: &config.Config{Location: time.UTC}, Log: zerolog.Nop()}
	if _, err := f.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(15, 9))
	for i := range 12 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatalf("helper %d ended by itself", i)
		}
	}
	db, err = store.Open(path, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f = &Feed{DB: db, SiteID: "s", Config: &config.Config{Location: time.UTC}, Log: zerolog.Nop()}
	for more := true; more; {
		if more, err = f.Round(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var events, entries []uint64
	var seq uint64
	for after := uint64(0); ; {
		page, err := db.UplinkAfter(after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if seq++; m.Seq != seq {
				t.Fatalf("seq %d after %d", m.Seq, seq-1)
			}
			switch m.Kind {
			case KindEvent:
				for _, e := range decode[EventBody](t, m).Events {
					events = append(events, e.ID)
				}
			case KindLedger:
				for _, e := range decode[LedgerBody](t, m).Entries {
					entries = append(entries, e.ID)
				}
			}
		}
		after = page[len(page)-1].Seq
	}
	last, err := db.LastEvents(1)
	if err != nil || len(last) != 1 {
		t.Fatalf("no events stored: %v", err)
	}
	accts, err := db.Accounts()
	if err != nil || len(accts) != 1 {
		t.Fatalf("accounts %v, %v", accts, err)
	}
	for name, c := range map[string]struct {
		got  []uint64
		last uint64
	}{"events": {events, last[0].ID}, "entries": {entries, accts[0].LastEntry}} {
		want := make([]uint64, c.last)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if !slices.Equal(c.got, want) {
			t.Errorf("%s sent: %d (first %v); want 1…%d each once in order", name, len(c.got), c.got[:min(5, len(c.got))], c.last)
		}
	}
	t.Logf("12 kills: %d messages, %d events, %d entries", seq, len(events), len(entries))
}
