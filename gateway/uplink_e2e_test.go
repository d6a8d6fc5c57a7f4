//go:build e2e

package gateway

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mallgrid/store"
)

// TestE2E_UplinkMosquittoKilled: the group's broker is Debian's mosquitto
// (persistence on) and the group's consumer a client of it with a
// persistent session. Under load — top-ups at the till every 100 ms, a
// signed top-up sent down every 200 ms while the broker is up — mosquitto
// is killed (SIGKILL) for 60 s and started again: every message reaches
// the consumer, seqs contiguous from 1, and the gateway's outbox is empty
// at the end.
func TestE2E_UplinkMosquittoKilled(t *testing.T) {
	needMosquitto(t)
	began := time.Now()
	b := startMosquitto(t)
	broker := "tcp://" + b.addr()
	k := newConsumer(t, broker, "kpm", "secret")
	m := newTestMall(t, 1, uplinkYAML(broker, "  username: mallgrid\n  password: gw-secret\n"))
	base, stop := m.start(t)
	waitFor(t, 15*time.Second, "status online", func() bool { return strings.Contains(k.lastStatus(), `"online"`) })

	var (
		mu       sync.Mutex
		brokerUp = true
		tills    int
		commands int
		sent     = make(map[int][]byte) // each command's bytes, to send again as they were
	)
	done := make(chan struct{})
	var load sync.WaitGroup
	load.Add(2)
	go func() { // the till: the local API works whatever the uplink does
		defer load.Done()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "till-secret",
				fmt.Sprintf(`{"amount":"1.00","ref":"TILL-%d","channel":"cash"}`, i), nil); code != 201 {
				t.Errorf("top-up %d at the till: %d", i, code)
				return
			}
			mu.Lock()
			tills = i
			mu.Unlock()
		}
	}()
	go func() { // the platform: top-ups paid upstream
		defer load.Done()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			mu.Lock()
			up := brokerUp
			mu.Unlock()
			if !up || !k.c.IsConnectionOpen() {
				i--
				continue
			}
			mu.Lock()
			cmd, ok := sent[i]
			if !ok {
				cmd = signedTopUp(t, fmt.Sprintf("cmd-%d", i), "T-b1", "2.00", fmt.Sprintf("PAY-%d", i))
				sent[i] = cmd
			}
			mu.Unlock()
			tok := k.c.Publish("mallgrid/test-mall/down", 1, false, cmd)
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				i-- // not taken by the broker: sent again, the same bytes
				continue
			}
			mu.Lock()
			commands = i
			mu.Unlock()
		}
	}()

	time.Sleep(10 * time.Second)
	mu.Lock()
	brokerUp = false
	mu.Unlock()
	k.mu.Lock()
	statuses := len(k.status)
	k.mu.Unlock()
	b.stop(syscall.SIGKILL)
	killed := time.Now()
	time.Sleep(60 * time.Second)
	b.start()
	mu.Lock()
	brokerUp = true
	mu.Unlock()
	waitFor(t, 45*time.Second, "status online again", func() bool {
		k.mu.Lock()
		n := len(k.status)
		k.mu.Unlock()
		return n > statuses && strings.Contains(k.lastStatus(), `"online"`)
	})
	back := time.Since(killed)
	time.Sleep(10 * time.Second)
	close(done)
	load.Wait()
	mu.Lock()
	lastTill, lastCmd := tills, commands
	mu.Unlock()

	// A command mosquitto took and lost with its memory (killed, it saved
	// nothing) has no result: the platform sends it again, the same
	// bytes, as it would — once credited, a repeat is answered with the
	// first result.
	waitFor(t, 30*time.Second, "the last command answered", func() bool {
		_, ok := k.find("command_result", fmt.Sprintf(`"id":"cmd-%d"`, lastCmd))
		return ok
	})
	lost := 0
	for i := 1; i <= lastCmd; i++ {
		if _, ok := k.find("command_result", fmt.Sprintf(`"id":"cmd-%d"`, i)); !ok {
			lost++
			if tok := k.c.Publish("mallgrid/test-mall/down", 1, false, sent[i]); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("send cmd-%d again: %v", i, tok.Error())
			}
		}
	}
	// Everything made is delivered: the last top-up at the till in a
	// ledger message, every command answered.
	waitFor(t, 30*time.Second, "the last top-ups up and every command answered", func() bool {
		_, till := k.find("ledger", fmt.Sprintf(`"TILL-%d"`, lastTill))
		for i := 1; i <= lastCmd; i++ {
			if _, ok := k.find("command_result", fmt.Sprintf(`"id":"cmd-%d"`, i)); !ok {
				return false
			}
		}
		head, missing := k.contiguous()
		return till && head > 0 && len(missing) == 0
	})
	if got := account(t, base, "T-b1").Balance; got != fmt.Sprintf("%d.00", 2*lastCmd) {
		t.Errorf("T-b1's balance %s; want %d.00: each of %d commands credited once", got, 2*lastCmd, lastCmd)
	}
	time.Sleep(2 * time.Second) // a heartbeat made just now goes too
	stop()

	db, err := store.Open(m.dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.UplinkStats()
	if err != nil {
		t.Fatal(err)
	}
	head, missing := k.contiguous()
	if st.Depth != 0 || st.Head != head || len(missing) > 0 {
		t.Errorf("outbox: head %d, depth %d; consumer: up to %d, missing %v; want the outbox empty and every seq at the consumer", st.Head, st.Depth, head, missing)
	}
	k.mu.Lock()
	copies := k.copies
	k.mu.Unlock()
	t.Logf("%d messages (%d copies received), %d top-ups at the till, %d commands (%d lost by the killed broker, sent again); link back %s after the kill; took %s",
		head, copies, lastTill, lastCmd, lost, back.Round(time.Second), time.Since(began).Round(time.Second))
}
