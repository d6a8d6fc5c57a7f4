package uplink

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"mallgrid/store"
)

// FuzzCommands_Handle: whatever comes down, Handle answers it with one
// result and no error while the database writes, and never panics; a
// top-up is credited only under k1's signature.
func FuzzCommands_Handle(f *testing.F) {
	key := vectorKey(f)
	valid := topUpAt("c-1", "10.00", "P-1", vectorNow)
	f.Add(signed(key, "k1", valid))
	f.Add(signed(key, "k9", valid))
	f.Add([]byte(`{"key_id":"k1","payload":"e30=","sig":""}`))
	f.Add([]byte(`{"key_id":"k1","payload":"` + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("[", 100))) + `","sig":""}`))
	f.Add([]byte(`null`))
	h := newHarness(f, f.TempDir())
	f.Fuzz(func(t *testing.T, msg []byte) {
		h.t = t
		entries := func() int64 {
			a, err := h.db.Account(vectorTenant)
			if err != nil && !errors.Is(err, store.ErrNoAccount) {
				t.Fatal(err)
			}
			return a.Entries
		}
		before := entries()
		if _, err := h.handle(msg); err != nil {
			t.Fatalf("Handle(%q) = %v", msg, err)
		}
		if entries() != before {
			// Credited: only a message that is k1's signature over its
			// payload, read by a decoder of its own here.
			var env downEnvelope
			if strictJSON(msg, &env) != nil || env.KeyID != "k1" {
				t.Fatalf("credited by %q", msg)
			}
			body, berr := base64.StdEncoding.DecodeString(env.Payload)
			sig, serr := base64.StdEncoding.DecodeString(env.Sig)
			if berr != nil || serr != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(key.Public().(ed25519.PublicKey), body, sig) {
				t.Fatalf("credited by %q: not k1's signature of its payload", msg)
			}
		}
	})
}
