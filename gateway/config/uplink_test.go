package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

const uplinkHead = "site: {name: Sunny Mall}\nbuses: [{name: b1, port: /dev/ttyUSB0}]"

// pubKey is a real Ed25519 public key, base64 of 32 bytes, made for this
// run: a published one is refused.
var pubKey = func() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}()

func TestParse_Uplink(t *testing.T) {
	cfg, err := Parse("t.yaml", doc(uplinkHead, "uplink:", "  broker: 'ssl://mq.group.example:8883'", "  site_id: sunny-mall",
		"  username: gw", "  keys: [{id: k1, ed25519_public: '"+pubKey+"'}]"),
		[]string{"MALLGRID_UPLINK_PASSWORD=s3cret"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	u := cfg.Uplink
	if u.ClientID != "mallgrid-sunny-mall" || u.Password != "s3cret" || u.BacklogRate != DefaultUplinkBacklogRate || u.Inflight != DefaultUplinkInflight {
		t.Errorf("uplink = %+v; want client id mallgrid-sunny-mall, the variable's password, the default rate and window", u)
	}
	if k := u.Keys[0].PublicKey(); len(k) != ed25519.PublicKeySize {
		t.Errorf("PublicKey() = %x; want 32 bytes", k)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v; want none", cfg.Warnings)
	}

	cfg, err = Parse("t.yaml", doc(uplinkHead), nil)
	if err != nil || cfg.Uplink.Broker != "" || cfg.Uplink.ClientID != "" {
		t.Fatalf("no uplink section: %v, %+v; want it to load without an uplink", err, cfg)
	}
}

func TestParse_UplinkProblems(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	_, otherKey := writePair(t, dir, "b")
	priv := base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(make([]byte, 32)))
	ssl := "  broker: 'ssl://mq:8883'"
	cases := []struct {
		name  string
		lines []string
		want  string // the one problem, exactly, or its start
	}{
		{"no site id", []string{ssl}, "t.yaml:3: uplink.site_id: required, not set"},
		{"site id not a topic level", []string{ssl, "  site_id: Sunny/Mall"},
			`t.yaml:5: uplink.site_id: want 1..64 lower-case letters, digits and - (it is a topic level), got "Sunny/Mall"`},
		{"site id too long", []string{ssl, "  site_id: " + strings.Repeat("a", 65)},
			"t.yaml:5: uplink.site_id: want 1..64 lower-case letters"},
		{"broker scheme", []string{"  broker: 'mqtt://mq:1883'", "  site_id: s"},
			`t.yaml:4: uplink.broker: want tcp://host:port or ssl://host:port, got "mqtt://mq:1883"`},
		{"bad client id", []string{ssl, "  site_id: s", "  client_id: 'a b'"},
			`t.yaml:6: uplink.client_id: want 1..64 letters, digits, _ . and -, got "a b"`},
		{"password without username", []string{ssl, "  site_id: s", "  password: x"},
			"t.yaml:6: uplink.password: a password needs a username"},
		{"ca file on tcp", []string{"  broker: 'tcp://mq:1883'", "  site_id: s", "  ca_file: /etc/ca.pem"},
			"t.yaml:6: uplink.ca_file: applies to ssl:// brokers only"},
		{"cert without key", []string{ssl, "  site_id: s", "  client_cert: " + cert},
			"t.yaml:3: uplink.client_key: client_cert and client_key go together (one is missing)"},
		{"cert and key not a pair", []string{ssl, "  site_id: s", "  client_cert: " + cert, "  client_key: " + otherKey},
			"t.yaml:7: uplink.client_key: the certificate and key are not a pair to log in with: "},
		{"relative cert", []string{ssl, "  site_id: s", "  client_cert: cert.pem", "  client_key: " + key},
			`t.yaml:6: uplink.client_cert: want an absolute path, got "cert.pem"`},
		{"key not base64", []string{ssl, "  site_id: s", "  keys: [{id: k1, ed25519_public: 'not base64!'}]"},
			`t.yaml:6: uplink.keys[0].ed25519_public: want the public key in standard base64 (44 characters), got "not base64!"`},
		{"key too short", []string{ssl, "  site_id: s", "  keys: [{id: k1, ed25519_public: 'AAAA'}]"},
			"t.yaml:6: uplink.keys[0].ed25519_public: want a 32-byte Ed25519 public key, got 3 bytes"},
		{"a private key", []string{ssl, "  site_id: s", "  keys: [{id: k1, ed25519_public: '" + priv + "'}]"},
			"t.yaml:6: uplink.keys[0].ed25519_public: this is a 64-byte Ed25519 private key; give its public key"},
		{"key without id", []string{ssl, "  site_id: s", "  keys: [{ed25519_public: '" + pubKey + "'}]"},
			"t.yaml:6: uplink.keys[0].id: required, not set"},
		{"one key id twice", []string{ssl, "  site_id: s", "  keys:", "    - {id: k1, ed25519_public: '" + pubKey + "'}",
			"    - {id: k1, ed25519_public: '" + pubKey + "'}"},
			`t.yaml:8: uplink.keys[1].id: duplicate key id "k1" (first at line 7)`},
		{"rate 0", []string{ssl, "  site_id: s", "  backlog_rate: 0"}, "t.yaml:6: uplink.backlog_rate: want 1..10000, got 0"},
		{"window too large", []string{ssl, "  site_id: s", "  inflight: 5000"}, "t.yaml:6: uplink.inflight: want 1..1000, got 5000"},
		{"the example's password", []string{ssl, "  site_id: s", "  username: u", "  password: change-me"},
			"t.yaml:7: uplink.password: the example's placeholder: give the password the group's broker has for this site in MALLGRID_UPLINK_PASSWORD"},
		{"the seed 00…1f's key", []string{ssl, "  site_id: s", "  keys: [{id: k1, ed25519_public: 'A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg='}]"},
			"t.yaml:6: uplink.keys[0].ed25519_public: a published key"},
		{"RFC 8032 test 1's key", []string{ssl, "  site_id: s", "  keys:", "    - id: k1", "      ed25519_public: '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo='"},
			"t.yaml:8: uplink.keys[0].ed25519_public: a published key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", doc(append([]string{uplinkHead, "uplink:"}, tc.lines...)...), nil)
			if cfg != nil || err == nil {
				t.Fatalf("Parse = %v, %v; want the problem %q", cfg, err, tc.want)
			}
			var got []string
			for _, p := range problems(t, err) {
				if !p.Warning { // a broker without keys warns
					got = append(got, p.Error())
				}
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Errorf("got %q; want one problem starting %q", got, tc.want)
			}
		})
	}
}

func TestParse_UplinkSessionOfABus(t *testing.T) {
	_, err := Parse("t.yaml", doc("site: {name: Sunny Mall}",
		"buses: [{name: tw, type: compere-mqtt, broker: 'tcp://mq:1883', client_id: gw}]",
		"uplink: {broker: 'TCP://MQ:1883', site_id: s, client_id: gw}"), nil)
	want := "t.yaml:3: uplink.client_id: bus tw already connects to tcp://mq:1883 as gw (line 2): the broker would throw one off for the other, again and again"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v; want %q", err, want)
	}
}

func TestParse_UplinkKeysWithoutBroker(t *testing.T) {
	cfg, err := Parse("t.yaml", doc(uplinkHead, "uplink: {site_id: s, inflight: 5}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := printed(cfg.Warnings)
	if len(got) != 1 || got[0] != "t.yaml:3: uplink.inflight: warning: ignored: there is no uplink without uplink.broker" {
		t.Errorf("warnings %q; want one saying inflight is ignored", got)
	}
}

// The published keys are what their private keys make: the seed 00 01 02
// … 1f's, and RFC 8032 7.1 test 1's (whose public key the RFC prints).
func TestPublishedUplinkKeys(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	rfc, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	for _, s := range [][]byte{seed, rfc} {
		pub := ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
		if !published(pub) {
			t.Errorf("the key of seed %x (%s) is not refused", s, base64.StdEncoding.EncodeToString(pub))
		}
	}
	if published(ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)) {
		t.Error("a key not published is refused")
	}
}

// A broker without keys loads with a warning (an uplink may only publish;
// one meant to take top-ups would refuse them all); a password from the
// environment with no broker is a warning too.
func TestParse_UplinkWarnings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		env   []string
		want  string
	}{
		{"no keys", []string{"uplink:", "  broker: 'ssl://mq:8883'", "  site_id: s"}, nil,
			"t.yaml:3: uplink.keys: warning: none: every command the group sends down is refused (unknown_key)"},
		{"password, no broker", []string{"uplink:", "  site_id: s"}, []string{"MALLGRID_UPLINK_PASSWORD=x"},
			"t.yaml: uplink.password: warning: env MALLGRID_UPLINK_PASSWORD: set and ignored: there is no uplink without uplink.broker"},
	} {
		cfg, err := Parse("t.yaml", doc(append([]string{uplinkHead}, tc.lines...)...), tc.env)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := printed(cfg.Warnings)
		if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%s: warnings %q; want one starting %q", tc.name, got, tc.want)
		}
	}
}
