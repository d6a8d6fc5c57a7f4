//go:build e2e

package uplink_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestE2E_GroupACL runs docs/GROUP.md's mosquitto configuration (but TLS)
// and acl_file as published, in Debian's mosquitto with a password per
// site and service: a site
// publishes only under mallgrid/<site>/up/ and reads only its own down
// topic; the ingest service reads every site's messages through a shared
// subscription; the payment platform writes any site's commands and reads
// only the command results. Each forbidden message is followed by an
// allowed one on the same connection (the marker): the broker keeps a
// connection's order, so a forbidden message let through would arrive
// before its marker — no waiting for something not to happen.
func TestE2E_GroupACL(t *testing.T) {
	for _, name := range []string{"/usr/sbin/mosquitto", "mosquitto_passwd"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed in CI (apt-get install mosquitto mosquitto-clients): %v", name, err)
			}
			t.Skipf("%s not installed (apt-get install mosquitto mosquitto-clients): %v", name, err)
		}
	}
	dir := t.TempDir()
	doc := filepath.Join("..", "..", "docs", "GROUP.md")
	acl := groupDocBlock(t, doc, "`/etc/mosquitto/acl`")
	if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	users := []string{"riverside-plaza", "other-mall", "svc_ingest", "svc_payments"}
	pw := filepath.Join(dir, "passwd")
	for i, u := range users {
		args := []string{"-b", pw, u, u + "-secret"}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v %s", u, err, out)
		}
	}
	// The broker's configuration is docs/GROUP.md's too, but for TLS (no
	// certificates here) and its files' places: mosquitto refuses to start
	// on an option it does not know.
	var conf strings.Builder
	for line := range strings.Lines(groupDocBlock(t, doc, "`/etc/mosquitto/conf.d/mallgrid.conf`")) {
		switch key, _, _ := strings.Cut(strings.TrimSpace(line), " "); key {
		case "listener", "certfile", "keyfile", "cafile", "tls_version":
		case "password_file":
			fmt.Fprintf(&conf, "password_file %s\n", pw)
		case "acl_file":
			fmt.Fprintf(&conf, "acl_file %s\n", filepath.Join(dir, "acl"))
		case "persistence_location":
			fmt.Fprintf(&conf, "persistence_location %s/\n", dir)
		default:
			conf.WriteString(line)
		}
	}
	b := groupRunMosquitto(t, dir, conf.String())

	ingest := aclClient(t, b, "svc_ingest")
	site := aclClient(t, b, "riverside-plaza")
	other := aclClient(t, b, "other-mall")
	payments := aclClient(t, b, "svc_payments")

	ingested := ingest.subscribe(t, "$share/ingest/mallgrid/+/up/#")
	results := payments.subscribe(t, "mallgrid/+/up/command_result")
	commands := site.subscribe(t, "mallgrid/riverside-plaza/down")
	// Subscriptions beyond its own down topic: refused, or allowed and
	// given nothing — either way no message of another site's.
	snooped := site.subscribe(t, "mallgrid/other-mall/down", "mallgrid/+/down", "mallgrid/+/up/#")

	// A site publishes under its own up/ only.
	site.publish(t, "mallgrid/other-mall/up/ledger", "forged: a ledger in another site's name")
	site.publish(t, "mallgrid/riverside-plaza/down", "forged: a command to itself")
	site.publish(t, "mallgrid/riverside-plaza/up/ledger", "marker: own ledger")
	if got := ingested.until(t, "marker: own ledger"); len(got) != 1 {
		t.Errorf("ingest got %q; want the site's own ledger alone", got)
	}
	// The platform reads the command results only.
	site.publish(t, "mallgrid/riverside-plaza/up/command_result", "marker: own result")
	if got := results.until(t, "marker: own result"); len(got) != 1 {
		t.Errorf("payments got %q; want the command result alone", got)
	}
	// A site reads its own commands only, from the platform only.
	payments.publish(t, "mallgrid/other-mall/down", "for the other mall")
	payments.publish(t, "mallgrid/riverside-plaza/down", "marker: a command")
	if got := commands.until(t, "marker: a command"); len(got) != 1 {
		t.Errorf("the site's down got %q; want the platform's command alone, not its own forgery", got)
	}
	other.publish(t, "mallgrid/other-mall/up/ledger", "the other mall's ledger")
	other.publish(t, "mallgrid/other-mall/up/heartbeat", "marker: the other mall")
	ingested.until(t, "marker: the other mall")
	// The site's wider subscriptions saw its own messages at most.
	payments.publish(t, "mallgrid/riverside-plaza/down", "marker: last")
	commands.until(t, "marker: last")
	for _, m := range snooped.all() {
		if !strings.HasPrefix(m, "mallgrid/riverside-plaza/") {
			t.Errorf("riverside-plaza read %q", m)
		}
	}
}

// groupDocBlock returns the first fenced block after the line of the
// markdown file holding mark.
func groupDocBlock(t *testing.T, path, mark string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), mark)
	if !ok {
		t.Fatalf("%s: no %s", path, mark)
	}
	_, after, ok = strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("%s: no block after %s", path, mark)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("%s: the block after %s is not closed", path, mark)
	}
	return block
}

// aclClientT is a paho client logged in as one user.
type aclClientT struct{ pc paho.Client }

func aclClient(t *testing.T, b *groupMosquitto, user string) *aclClientT {
	t.Helper()
	pc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.addr).SetClientID("acl-" + user).
		SetUsername(user).SetPassword(user + "-secret").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", user, tok.Error())
	}
	t.Cleanup(func() { pc.Disconnect(100) })
	return &aclClientT{pc: pc}
}

func (c *aclClientT) publish(t *testing.T, topic, payload string) {
	t.Helper()
	if tok := c.pc.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// aclInbox holds what a subscription received, "topic payload" each.
type aclInbox struct {
	mu   sync.Mutex
	msgs []string
	news chan struct{}
}

// subscribe subscribes to topics at QoS 1; a refused one (SUBACK 0x80)
// just receives nothing.
func (c *aclClientT) subscribe(t *testing.T, topics ...string) *aclInbox {
	t.Helper()
	in := &aclInbox{news: make(chan struct{}, 1)}
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = 1
	}
	tok := c.pc.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		in.mu.Lock()
		in.msgs = append(in.msgs, m.Topic()+" "+string(m.Payload()))
		in.mu.Unlock()
		select {
		case in.news <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", topics, tok.Error())
	}
	return in
}

// until waits for the message whose payload is marker and returns what
// came since the last call, the marker included.
func (in *aclInbox) until(t *testing.T, marker string) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		in.mu.Lock()
		for i, m := range in.msgs {
			if strings.HasSuffix(m, " "+marker) {
				got := in.msgs[:i+1]
				in.msgs = in.msgs[i+1:]
				in.mu.Unlock()
				return got
			}
		}
		in.mu.Unlock()
		select {
		case <-in.news:
		case <-deadline:
			t.Fatalf("%q never arrived", marker)
		}
	}
}

func (in *aclInbox) all() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs...)
}
