package uplink

import (
	"crypto/ed25519"
	"encoding/json"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"mallgrid/gateway/accounts"
	"mallgrid/gateway/config"
)

// resultTap is the platform's side of the results: every command_result
// of the site the broker takes, as published.
type resultTap struct {
	mqtt.HookBase
	mu  sync.Mutex
	got []Result
	bad []string
}

func (r *resultTap) ID() string { return "results" }

func (r *resultTap) Provides(b byte) bool { return b == mqtt.OnPublish }

func (r *resultTap) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.TopicName != "mallgrid/"+site+"/up/command_result" {
		return pk, nil
	}
	var env struct {
		Site string          `json:"site"`
		Kind string          `json:"kind"`
		Data json.RawMessage `json:"data"`
	}
	var res Result
	r.mu.Lock()
	defer r.mu.Unlock()
	if json.Unmarshal(pk.Payload, &env) != nil || env.Site != site || env.Kind != "command_result" || strictJSON(env.Data, &res) != nil {
		r.bad = append(r.bad, string(pk.Payload))
		return pk, nil
	}
	r.got = append(r.got, res)
	return pk, nil
}

func (r *resultTap) results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.got...)
}

// Signed commands published to the site's down topic on a real broker are
// carried out and answered on its up/command_result topic: a top-up
// credited, the same message again answered as a duplicate, a forged one
// refused; each result published once its command is, and the outbox
// emptied by the broker's acknowledgements.
func TestCommands_OverBroker(t *testing.T) {
	db := openDB(t)
	cfg, err := config.Parse("t.yaml", []byte(harnessYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := vectorKey(t)
	now := func() time.Time { return vectorNow }
	ledger := &accounts.Ledger{DB: db, Config: cfg, Now: now, Log: zerolog.Nop()}
	cmds := &Commands{DB: db, SiteID: site, Keys: map[string]ed25519.PublicKey{"k1": key.Public().(ed25519.PublicKey)}, Config: cfg,
		Ledger: ledger, Now: now, Log: zerolog.Nop()}
	b := startBroker(t, newRecorder())
	tap := &resultTap{}
	if err := b.server().AddHook(tap, nil); err != nil {
		t.Fatal(err)
	}
	l := runLink(t, db, b, config.Uplink{}, cmds, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(100 * time.Millisecond) // SUBACK

	cmd := vectorCommand("c-1", site, `"tenant":"T-101","amount":"100.00","ref":"WX-1","channel":"wechat"`, vectorNow.Add(-time.Minute), vectorNow.Add(time.Hour))
	_, forger, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range [][]byte{signed(key, "k1", cmd), signed(key, "k1", cmd), signed(forger, "k1", cmd)} {
		if err := b.server().Publish(DownTopic(site), msg, false, 1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the result", func() bool { return len(tap.results()) == i+1 })
	}
	got := tap.results()
	if r := got[0]; r.ID != "c-1" || r.Status != StatusOK || r.Entry != 1 || r.Balance != "100.00" || r.Existing == nil || *r.Existing || r.Duplicate {
		t.Errorf("first result %+v; want c-1 credited as entry 1", r)
	}
	if r := got[1]; r.Entry != 1 || !r.Duplicate {
		t.Errorf("second result %+v; want the first again, duplicate", r)
	}
	if r := got[2]; r.Reason != ReasonBadSignature || r.ID != "c-1" {
		t.Errorf("third result %+v; want c-1 refused, bad_signature", r)
	}
	if len(tap.bad) != 0 {
		t.Errorf("results not in the format: %q", tap.bad)
	}
	if a, err := db.Account("T-101"); err != nil || a.Balance.String() != "100.00" || a.Entries != 1 {
		t.Errorf("account = %+v, %v; want 100.00 credited once", a, err)
	}
	waitFor(t, 5*time.Second, "the outbox acknowledged", func() bool {
		s, err := db.UplinkStats()
		return err == nil && s.Depth == 0 && s.Head == 3
	})
}
