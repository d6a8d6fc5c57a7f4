package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"

	"mallgrid/gateway/uplink"
)

// uplinkKey is the platform's signing key in these tests, made for the
// run: a key whose private half is published (RFC 8032's test 1) is
// refused by the configuration.
var uplinkKey = func() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// uplinkYAML is the uplink section of a test mall publishing to broker
// (tcp://host:port) as site test-mall, taking commands signed by uplinkKey.
func uplinkYAML(broker, extra string) string {
	pub := base64.StdEncoding.EncodeToString(uplinkKey.Public().(ed25519.PublicKey))
	return fmt.Sprintf("uplink:\n  broker: '%s'\n  site_id: test-mall\n  keys: [{id: k1, ed25519_public: '%s'}]\n%s", broker, pub, extra)
}

// signedTopUp is a top-up command for tenant as the group's platform sends
// it down: the command's bytes, signed, in the envelope.
func signedTopUp(t *testing.T, id, tenant, amount, ref string) []byte {
	t.Helper()
	now := time.Now()
	cmd, err := json.Marshal(map[string]string{"id": id, "site": "test-mall", "kind": "topup", "tenant": tenant, "amount": amount,
		"ref": ref, "channel": "wechat", "issued_at": now.Add(-time.Minute).Format(time.RFC3339),
		"expires_at": now.Add(time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(map[string]string{"key_id": "k1", "payload": base64.StdEncoding.EncodeToString(cmd),
		"sig": base64.StdEncoding.EncodeToString(ed25519.Sign(uplinkKey, cmd))})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// upMessage is an uplink envelope as a consumer reads it.
type upMessage struct {
	V    int             `json:"v"`
	Site string          `json:"site"`
	Seq  uint64          `json:"seq"`
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// consumer is the group's side: a client of the broker with a persistent
// session, subscribed to the site's messages, dropping repeats by seq.
type consumer struct {
	t      *testing.T
	c      paho.Client
	mu     sync.Mutex
	bySeq  map[uint64]upMessage
	copies int      // messages received, repeats too
	status []string // the status messages, in order
}

func newConsumer(t *testing.T, broker, user, password string) *consumer {
	t.Helper()
	k := &consumer{t: t, bySeq: make(map[uint64]upMessage)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID("group-consumer").SetCleanSession(false).
		SetUsername(user).SetPassword(password).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) { c.Subscribe("mallgrid/test-mall/up/#", 1, k.receive) }).
		SetDefaultPublishHandler(k.receive)
	k.c = paho.NewClient(o)
	if tok := k.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("consumer connect: %v", tok.Error())
	}
	t.Cleanup(func() { k.c.Disconnect(100) })
	return k
}

func (k *consumer) receive(_ paho.Client, m paho.Message) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if strings.HasSuffix(m.Topic(), "/up/status") {
		k.status = append(k.status, string(m.Payload()))
		return
	}
	var e upMessage
	if err := json.Unmarshal(m.Payload(), &e); err != nil || e.Seq == 0 || e.Site != "test-mall" || !strings.HasSuffix(m.Topic(), "/up/"+e.Kind) {
		k.t.Errorf("message on %s: %q (%v); want an envelope of test-mall with a seq, on its kind's topic", m.Topic(), m.Payload(), err)
		return
	}
	k.copies++
	k.bySeq[e.Seq] = e
}

// find returns the first message of kind whose data holds s.
func (k *consumer) find(kind, s string) (upMessage, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.bySeq {
		if e.Kind == kind && strings.Contains(string(e.Data), s) {
			return e, true
		}
	}
	return upMessage{}, false
}

// contiguous returns the highest seq received and the seqs missing below it.
func (k *consumer) contiguous() (head uint64, missing []uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for s := range k.bySeq {
		head = max(head, s)
	}
	for s := uint64(1); s <= head; s++ {
		if _, ok := k.bySeq[s]; !ok {
			missing = append(missing, s)
		}
	}
	return head, missing
}

func (k *consumer) lastStatus() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.status) == 0 {
		return ""
	}
	return k.status[len(k.status)-1]
}

// TestRun_Uplink: with uplink.broker set, the gateway publishes its news to
// the group's broker — a top-up at the till goes up as a ledger message —
// and a top-up paid upstream comes down signed, is credited once (also
// when sent twice) and answered by a command_result; seqs are contiguous
// from 1, and the retained status says online, then offline at stop.
func TestRun_Uplink(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	mallBroker(t, addr)
	broker := "tcp://" + addr
	k := newConsumer(t, broker, "", "")
	m := newTestMall(t, 1, uplinkYAML(broker, ""))
	base, stop := m.start(t)
	waitFor(t, 10*time.Second, "status online", func() bool { return strings.Contains(k.lastStatus(), `"online"`) })

	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "till-secret", `{"amount":"20.00","ref":"TILL-1","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up at the till: %d", code)
	}
	waitFor(t, 10*time.Second, "the till's top-up as a ledger message", func() bool { _, ok := k.find("ledger", "TILL-1"); return ok })

	down := signedTopUp(t, "cmd-1", "T-a1", "50.00", "PAY-UP-1")
	for range 2 {
		if tok := k.c.Publish("mallgrid/test-mall/down", 1, false, down); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish the command: %v", tok.Error())
		}
	}
	waitFor(t, 10*time.Second, "the command's results", func() bool {
		_, first := k.find("command_result", `"id":"cmd-1","status":"ok"`)
		_, again := k.find("command_result", `"duplicate":true`)
		return first && again
	})
	waitFor(t, 10*time.Second, "the upstream top-up as a ledger message", func() bool { _, ok := k.find("ledger", "PAY-UP-1"); return ok })
	if e, _ := k.find("ledger", "PAY-UP-1"); !strings.Contains(string(e.Data), "uplink:k1") {
		t.Errorf("ledger message %s; want the actor uplink:k1", e.Data)
	}
	if got := account(t, base, "T-a1").Balance; got != "70.00" {
		t.Errorf("balance %s; want 70.00 (20 at the till, 50 upstream once)", got)
	}
	stop()
	waitFor(t, 5*time.Second, "status offline", func() bool { return strings.Contains(k.lastStatus(), `"offline"`) })
	head, missing := k.contiguous()
	if head < 4 || len(missing) > 0 {
		t.Errorf("seqs up to %d, missing %v; want every seq from 1", head, missing)
	}
}

// A command refused is told the control room's open pages at once, over
// the live stream, not only stored for their next reload: the uplink
// publishes its events to the root's hub.
func TestRun_UplinkRefusalLive(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	srv, _ := mallBrokerServer(t, addr)
	broker := "tcp://" + addr
	k := newConsumer(t, broker, "", "")
	m := newTestMall(t, 1, uplinkYAML(broker, ""))
	base, stop := m.start(t)
	defer stop()
	waitFor(t, 10*time.Second, "status online", func() bool { return strings.Contains(k.lastStatus(), `"online"`) })
	waitSubscribed(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := sse(t, ctx, base+"/api/v1/events", "")
	// Signed by a key the site does not trust: refused, bad_signature.
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cmd := []byte(`{"id":"cmd-forged","site":"test-mall","kind":"topup","tenant":"T-a1","amount":"9.00","ref":"F-1","channel":"wechat"}`)
	env, _ := json.Marshal(map[string]string{"key_id": "k1", "payload": base64.StdEncoding.EncodeToString(cmd),
		"sig": base64.StdEncoding.EncodeToString(ed25519.Sign(other, cmd))})
	if tok := k.c.Publish("mallgrid/test-mall/down", 1, false, env); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish the command: %v", tok.Error())
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-live:
			if !ok {
				t.Fatal("the stream ended")
			}
			if e.Kind == uplink.KindCommandRefused {
				if !strings.Contains(e.Text, "cmd-forged") {
					t.Errorf("event %+v; want the forged command's refusal", e)
				}
				return
			}
		case <-timeout:
			t.Fatal("no refusal on the live stream within 5 s")
		}
	}
}

// waitSubscribed waits until the site's link holds its subscription to the
// commands at srv. The link says online (and the API connected) before it
// subscribes: a command published in between has no subscriber and the
// broker drops it — a test's command was lost so on a loaded machine.
func waitSubscribed(t *testing.T, srv *mqtt.Server) {
	t.Helper()
	waitFor(t, 10*time.Second, "the link subscribed to its commands", func() bool {
		return len(srv.Topics.Subscribers(uplink.DownTopic("test-mall")).Subscriptions) > 0
	})
}
