//go:build soak

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"mallgrid/store"
)

// uplinkMinKill is how many kill points the uplink's crash test reaches.
const uplinkMinKill = 40

// upReceiver is the group's broker, in this process out of the kills'
// reach: it records each seq of the site as it takes the message, before
// its PUBACK.
type upReceiver struct {
	mqtt.HookBase
	mu     sync.Mutex
	got    map[uint64]int
	copies int
}

func (r *upReceiver) ID() string           { return "up-receiver" }
func (r *upReceiver) Provides(b byte) bool { return b == mqtt.OnPublish }

func (r *upReceiver) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	var e struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(pk.Payload, &e) == nil && e.Seq > 0 {
		r.mu.Lock()
		r.got[e.Seq]++
		r.copies++
		r.mu.Unlock()
	}
	return pk, nil
}

func (r *upReceiver) has(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[seq] > 0
}

// TestCrash_KilledGatewayUplinkLosesNothing kills the daemon with SIGKILL
// at least uplinkMinKill times while a till sends top-ups and the uplink
// publishes to a broker in this process. After each kill the database is
// held to what the broker took: no message left the outbox that the broker
// had not acknowledged. A last clean run delivers every seq the kills left
// behind.
func TestCrash_KilledGatewayUplinkLosesNothing(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	simAddr, _ := crashSim(t)
	httpAddr := freePort(t)
	dbPath := filepath.Join(dir, "g.db")
	cfgPath := writeCrashConfig(t, dir, dbPath, simAddr, httpAddr)

	rec := &upReceiver{got: make(map[uint64]int)}
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, h := range []mqtt.Hook{new(auth.AllowHook), rec} {
		if err := s.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	brokerAddr := freePort(t)
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "group", Address: brokerAddr})); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "uplink: {broker: 'tcp://%s', site_id: crash, inflight: 5, backlog_rate: 200}\n", brokerAddr)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	till := newTill("http://" + httpAddr)
	sending, stopSending := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	senders.Add(1)
	go func() {
		defer senders.Done()
		till.run(sending, rand.New(rand.NewPCG(9, 1)))
	}()
	defer func() { stopSending(); senders.Wait() }()

	// Lives of 300–1,500 ms: in start-up, mid-connect, mid-publish,
	// between a PUBACK and the write that acknowledges it.
	rng := rand.New(rand.NewPCG(9, 2))
	for kill := range uplinkMinKill {
		killAfter(t, cfgPath, kill, time.Duration(300+rng.IntN(1200))*time.Millisecond)
		checkOutbox(t, dbPath, rec)
	}
	stopSending()
	senders.Wait()

	// What the kills left behind goes in a clean run: every seq up to the
	// head after the last kill reaches the broker.
	head := checkOutbox(t, dbPath, rec)
	cmd, stderr := startGateway(t, cfgPath)
	deadline := time.Now().Add(30 * time.Second)
	for missing := uint64(1); missing <= head; {
		if rec.has(missing) {
			missing++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("seq %d of %d not at the broker 30 s into a clean run:\n%s", missing, head, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the acknowledgements written
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)
	checkOutbox(t, dbPath, rec)
	rec.mu.Lock()
	n, copies := len(rec.got), rec.copies
	rec.mu.Unlock()
	t.Logf("%d kills; %d messages, %d copies taken by the broker; %s", uplinkMinKill, n, copies, time.Since(began).Round(time.Second))
}

// checkOutbox fails for a seq gone from the outbox at path that the
// broker never took, and returns the outbox's head.
func checkOutbox(t *testing.T, path string, rec *upReceiver) uint64 {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.UplinkStats()
	if err != nil {
		t.Fatal(err)
	}
	left := make(map[uint64]bool)
	for after := uint64(0); ; {
		msgs, err := db.UplinkAfter(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			left[m.Seq] = true
			after = m.Seq
		}
	}
	for seq := uint64(1); seq <= st.Head; seq++ {
		if !left[seq] && !rec.has(seq) {
			t.Fatalf("seq %d left the outbox; the broker never took it", seq)
		}
	}
	return st.Head
}
