package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/accounts"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// The signed command vectors: a fixed key, envelopes handled in order by a
// gateway with an empty ledger, and each one's result. They are published
// in docs/UPLINK.md (section Downlink), which is where this test reads
// them from, so that what the payment platform tests its signer against
// is what the gateway does.

// vectorSeed is the secret key of RFC 8032, section 7.1, TEST 1: a
// published key, for tests only.
const vectorSeed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"

const (
	vectorSite   = "riverside-plaza"
	vectorTenant = "T-101"
)

// vectorNow is the gateway's clock for every vector: 10:00 in Shanghai.
var vectorNow = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

func vectorKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed, err := hex.DecodeString(vectorSeed)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// harness is a gateway's command handling over a real database, with the
// real ledger.
type harness struct {
	t      testing.TB
	path   string
	cfg    *config.Config
	db     *store.DB
	ledger *accounts.Ledger
	cmds   *Commands
	now    time.Time
	keys   map[string]ed25519.PublicKey
}

const harnessYAML = `site: {name: Riverside Plaza, timezone: Asia/Shanghai}
buses: [{name: b, port: /dev/ttyUSB0}]
meters:
  - {id: M-101, bus: b, address: 1, model: kpm33b, tenant: T-101}
  - {id: M-102, bus: b, address: 2, model: kpm33b, tenant: T-102}
tenants: [{id: T-101, name: Tea House}, {id: T-102, name: Noodle Bar}]
`

func newHarness(t testing.TB, dir string) *harness {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(harnessYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := vectorKey(t).Public().(ed25519.PublicKey)
	h := &harness{t: t, path: filepath.Join(dir, "mallgrid.db"), cfg: cfg, now: vectorNow,
		keys: map[string]ed25519.PublicKey{"k1": pub}}
	h.open()
	return h
}

// open opens the database file and builds the handler on it: a gateway
// started (again).
func (h *harness) open() {
	db, err := store.Open(h.path, store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	clock := func() time.Time { return h.now }
	h.ledger = &accounts.Ledger{DB: db, Config: h.cfg, Now: clock, Log: zerolog.Nop()}
	h.cmds = &Commands{DB: db, SiteID: vectorSite, Keys: h.keys, Config: h.cfg, Ledger: h.ledger, Now: clock, Log: zerolog.Nop()}
	h.t.Cleanup(func() { _ = db.Close() })
}

func (h *harness) restart() {
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// handle hands one message to Handle and returns the result it queued
// (nil: none).
func (h *harness) handle(msg []byte) ([]byte, error) {
	h.t.Helper()
	before, err := h.db.UplinkStats()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.cmds.Handle(context.Background(), msg); err != nil {
		return nil, err
	}
	after, err := h.db.UplinkAfter(before.Head, 10)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(after) != 1 || after[0].Kind != store.KindCommandResult {
		h.t.Fatalf("Handle queued %+v; want one command_result", after)
	}
	return after[0].Data, nil
}

// signed is an envelope of payload signed by key, under keyID.
func signed(key ed25519.PrivateKey, keyID string, payload []byte) []byte {
	return envelopeOf(keyID, payload, ed25519.Sign(key, payload))
}

func envelopeOf(keyID string, payload, sig []byte) []byte {
	b, err := json.Marshal(downEnvelope{KeyID: keyID, Payload: base64.StdEncoding.EncodeToString(payload), Sig: base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		panic(err)
	}
	return b
}

// docVector is one vector as docs/UPLINK.md publishes it.
type docVector struct {
	name                      string
	command, envelope, result []byte
}

// readVectors reads the vectors of docs/UPLINK.md's Downlink section: a
// heading "#### name" each, then fenced blocks "json command" (the
// signed bytes), "json envelope" and "json result"; and the public key
// the section names on a line "Public key (base64): `…`".
func readVectors(t *testing.T) (string, []docVector) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "UPLINK.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Downlink\n")
	if !ok {
		t.Fatal("docs/UPLINK.md has no section ## Downlink")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var pub string
	var out []docVector
	lines := strings.Split(section, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if k, ok := strings.CutPrefix(line, "Public key (base64): `"); ok {
			pub = strings.TrimSuffix(strings.TrimSpace(k), "`")
		}
		if name, ok := strings.CutPrefix(line, "#### "); ok {
			out = append(out, docVector{name: name})
			continue
		}
		what, ok := strings.CutPrefix(line, "```json ")
		if !ok || len(out) == 0 {
			continue
		}
		var block []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			block = append(block, lines[i])
		}
		text := []byte(strings.Join(block, "\n"))
		v := &out[len(out)-1]
		switch what {
		case "command":
			v.command = text
		case "envelope":
			v.envelope = text
		case "result":
			v.result = text
		default:
			t.Fatalf("vector %s: block %q", v.name, what)
		}
	}
	return pub, out
}

// TestDownlinkVectors handles the published envelopes in order and
// compares each result with the published one, byte for byte.
func TestDownlinkVectors(t *testing.T) {
	pub, vectors := readVectors(t)
	if want := base64.StdEncoding.EncodeToString(vectorKey(t).Public().(ed25519.PublicKey)); pub != want {
		t.Fatalf("the doc's public key is %q; want %q, RFC 8032 TEST 1's", pub, want)
	}
	if len(vectors) < 8 {
		t.Fatalf("the doc has %d vectors; want at least 8", len(vectors))
	}
	schema := resultSchema(t)
	h := newHarness(t, t.TempDir())
	h.keys["k1"] = mustKey(t, pub)
	for _, v := range vectors {
		if len(v.envelope) == 0 || len(v.result) == 0 {
			t.Fatalf("vector %s: no envelope or no result", v.name)
		}
		var env downEnvelope
		if err := json.Unmarshal(v.envelope, &env); err == nil && v.command != nil {
			if body, err := base64.StdEncoding.DecodeString(env.Payload); err != nil || !bytes.Equal(body, v.command) {
				t.Errorf("vector %s: the envelope's payload is not the command shown", v.name)
			}
		}
		// A vector's signature is k1's over its payload exactly when its
		// result is not bad_signature: a vector "signed by k1" that is not
		// would teach a signer a wrong signature.
		if body, err := base64.StdEncoding.DecodeString(env.Payload); err == nil && env.Payload != "" {
			sig, _ := base64.StdEncoding.DecodeString(env.Sig)
			good := len(sig) == ed25519.SignatureSize && ed25519.Verify(h.keys["k1"], body, sig)
			if want := !bytes.Contains(v.result, []byte(`"reason":"bad_signature"`)); good != want {
				t.Errorf("vector %s: k1's signature of its payload: %v; its result says %v", v.name, good, want)
			}
		}
		got, err := h.handle(v.envelope)
		if err != nil {
			t.Fatalf("vector %s: Handle = %v", v.name, err)
		}
		if !bytes.Equal(got, v.result) {
			t.Errorf("vector %s:\n got %s\nwant %s", v.name, got, v.result)
		}
		if err := validResult(schema, got); err != nil {
			t.Errorf("vector %s: result %s is not valid by docs/uplink/command_result.schema.json: %v", v.name, got, err)
		}
	}
	a, err := h.db.Account(vectorTenant)
	if err != nil || a.Balance.String() != "100.00" || a.Entries != 1 {
		t.Errorf("account after the vectors = %+v, %v; want 100.00 in one entry", a, err)
	}
}

func mustKey(t *testing.T, b64 string) ed25519.PublicKey {
	t.Helper()
	k, err := ParseKeys([]config.UplinkKey{{ID: "k1", Ed25519Public: b64}})
	if err != nil {
		t.Fatal(err)
	}
	return k["k1"]
}

// vectorCommand is a command's JSON as the vectors sign it.
func vectorCommand(id, site, extra string, issued, expires time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"site":%q,"kind":"topup",%s,"issued_at":%q,"expires_at":%q}`, id, site, extra,
		issued.In(shanghai).Format(time.RFC3339), expires.In(shanghai).Format(time.RFC3339))
}

var shanghai = time.FixedZone("CST", 8*3600)

// TestDownlinkVectors_Print prints the vectors' section of docs/UPLINK.md
// from the code (MALLGRID_PRINT_VECTORS=1): how the published vectors
// were made, and how they are made again if a result changes.
func TestDownlinkVectors_Print(t *testing.T) {
	if os.Getenv("MALLGRID_PRINT_VECTORS") == "" {
		t.Skip("set MALLGRID_PRINT_VECTORS=1 to print the vectors")
	}
	key := vectorKey(t)
	issued, expires := vectorNow.Add(-time.Minute), vectorNow.Add(59*time.Minute)
	topup := func(id, site, amount, ref string) []byte {
		return vectorCommand(id, site, fmt.Sprintf(`"tenant":%q,"amount":%q,"ref":%q,"channel":"wechat"`, vectorTenant, amount, ref), issued, expires)
	}
	valid := topup("c-0001", vectorSite, "100.00", "WX-20261201-0001")
	tampered := bytes.Replace(topup("c-0003", vectorSite, "100.00", "WX-20261201-0003"), []byte("100.00"), []byte("900.00"), 1)
	invoiceCmd := fmt.Appendf(nil, `{"id":"c-0010","site":%q,"kind":"invoice_status","ref":"WX-20261201-0001","status":"issued","number":"04400012","url":"https://fapiao.example/04400012","reason":"","issued_at":%q,"expires_at":%q}`,
		vectorSite, issued.In(shanghai).Format(time.RFC3339), expires.In(shanghai).Format(time.RFC3339))
	fields := func(id, extra string) []byte {
		return vectorCommand(id, vectorSite, extra, issued, expires)
	}
	dupAmount := fields("c-0011", `"tenant":"T-101","amount":"1.00","ref":"WX-20261201-0011","channel":"wechat","amount":"5000.00"`)
	casedTenant := fields("c-0012", `"tenant":"T-101","Tenant":"T-102","amount":"1.00","ref":"WX-20261201-0012","channel":"wechat"`)
	upper := fmt.Appendf(nil, `{"ID":"c-0013","SITE":%q,"KIND":"topup","TENANT":"T-101","AMOUNT":"1.00","REF":"WX-20261201-0013","CHANNEL":"wechat","ISSUED_AT":%q,"EXPIRES_AT":%q}`,
		vectorSite, issued.In(shanghai).Format(time.RFC3339), expires.In(shanghai).Format(time.RFC3339))
	badUTF8 := fields("c-0014", "\"tenant\":\"T-101\",\"amount\":\"1.00\",\"ref\":\"WX-\xff\",\"channel\":\"wechat\"")
	twiceKey := fmt.Appendf(nil, `{"key_id":"k9","key_id":"k1","payload":%q,"sig":%q}`, base64.StdEncoding.EncodeToString(valid),
		base64.StdEncoding.EncodeToString(ed25519.Sign(key, valid)))
	type vec struct {
		name, about string
		command     []byte
		envelope    []byte
	}
	vecs := []vec{
		{"valid", "a top-up, credited", valid, signed(key, "k1", valid)},
		{"duplicate", "the same envelope delivered again: its first result, marked a duplicate", valid, signed(key, "k1", valid)},
		{"replayed", "the same id with other bytes", topup("c-0001", vectorSite, "200.00", "WX-20261201-0002"),
			signed(key, "k1", topup("c-0001", vectorSite, "200.00", "WX-20261201-0002"))},
		{"wrong key id", "signed by k1, named k9", topup("c-0002", vectorSite, "100.00", "WX-20261201-0002"),
			signed(key, "k9", topup("c-0002", vectorSite, "100.00", "WX-20261201-0002"))},
		{"tampered payload", "the signature k1 made of the command with 100.00; the payload says 900.00", tampered,
			envelopeOf("k1", tampered, ed25519.Sign(key, topup("c-0003", vectorSite, "100.00", "WX-20261201-0003")))},
		{"bad signature", "the signature of other bytes", topup("c-0004", vectorSite, "100.00", "WX-20261201-0004"),
			envelopeOf("k1", topup("c-0004", vectorSite, "100.00", "WX-20261201-0004"), ed25519.Sign(key, []byte("other bytes")))},
		{"expired", "expired an hour before the gateway's clock",
			vectorCommand("c-0005", vectorSite, `"tenant":"T-101","amount":"100.00","ref":"WX-20261201-0005","channel":"wechat"`, vectorNow.Add(-2*time.Hour), vectorNow.Add(-time.Hour)),
			signed(key, "k1", vectorCommand("c-0005", vectorSite, `"tenant":"T-101","amount":"100.00","ref":"WX-20261201-0005","channel":"wechat"`, vectorNow.Add(-2*time.Hour), vectorNow.Add(-time.Hour)))},
		{"other site", "for another mall", topup("c-0006", "harbour-mall", "100.00", "WX-20261201-0006"),
			signed(key, "k1", topup("c-0006", "harbour-mall", "100.00", "WX-20261201-0006"))},
		{"unknown field", "a field the kind does not have", vectorCommand("c-0007", vectorSite, `"tenant":"T-101","amount":"100.00","ref":"WX-20261201-0007","channel":"wechat","bonus":"5.00"`, issued, expires),
			signed(key, "k1", vectorCommand("c-0007", vectorSite, `"tenant":"T-101","amount":"100.00","ref":"WX-20261201-0007","channel":"wechat","bonus":"5.00"`, issued, expires))},
		{"duplicate field", "amount given twice: the decoder would take the last", dupAmount, signed(key, "k1", dupAmount)},
		{"field in another case", "tenant and Tenant: the decoder would take either for tenant", casedTenant, signed(key, "k1", casedTenant)},
		{"upper-case fields", "every field's name in capitals", upper, signed(key, "k1", upper)},
		{"not UTF-8", "a ref with the byte 0xff (the command is not shown: it is not text); the decoder would read it as U+FFFD", nil, signed(key, "k1", badUTF8)},
		{"envelope field twice", "key_id given twice in the envelope", nil, twiceKey},
		{"same ref again", "another command for the payment already credited: its entry, existing", topup("c-0008", vectorSite, "100.00", "WX-20261201-0001"),
			signed(key, "k1", topup("c-0008", vectorSite, "100.00", "WX-20261201-0001"))},
		{"ref conflict", "the payment's ref with another amount", topup("c-0009", vectorSite, "50.00", "WX-20261201-0001"),
			signed(key, "k1", topup("c-0009", vectorSite, "50.00", "WX-20261201-0001"))},
		{"invoice status, unknown ref", "an invoice issued for a top-up credited without an invoice request", invoiceCmd, signed(key, "k1", invoiceCmd)},
		{"unreadable", "a payload that is not base64: no id, the message's SHA-256", nil, []byte(`{"key_id":"k1","payload":"not base64!","sig":""}`)},
	}
	h := newHarness(t, t.TempDir())
	var b strings.Builder
	fmt.Fprintf(&b, "Public key (base64): `%s`\n", base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	for _, v := range vecs {
		res, err := h.handle(v.envelope)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n#### %s\n%s.\n", v.name, strings.ToUpper(v.about[:1])+v.about[1:])
		if v.command != nil {
			fmt.Fprintf(&b, "```json command\n%s\n```\n", v.command)
		}
		fmt.Fprintf(&b, "```json envelope\n%s\n```\n```json result\n%s\n```\n", v.envelope, res)
	}
	fmt.Println(b.String())
}
