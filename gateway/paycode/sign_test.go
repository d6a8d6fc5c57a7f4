package paycode

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"mallgrid/gateway/config"
)

// vector is one test vector of docs/QR.md.
type vector map[string]string

// docVectors reads the vectors of docs/QR.md: each fenced block after a
// "<!-- vector -->" line, "name: value" a line.
func docVectors(t *testing.T) []vector {
	t.Helper()
	doc, err := os.ReadFile("../../docs/QR.md")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	parts := strings.Split(string(doc), "<!-- vector -->\n")
	for _, p := range parts[1:] {
		body, ok := strings.CutPrefix(p, "```\n")
		end := strings.Index(body, "```")
		if !ok || end < 0 {
			t.Fatalf("docs/QR.md: a vector marker not followed by a fenced block")
		}
		v := vector{}
		for _, line := range strings.Split(strings.TrimSpace(body[:end]), "\n") {
			k, val, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("docs/QR.md: vector line %q is not name: value", line)
			}
			v[k] = strings.TrimSpace(val)
		}
		vs = append(vs, v)
	}
	if len(vs) < 2 {
		t.Fatalf("docs/QR.md holds %d vectors; want the two published", len(vs))
	}
	return vs
}

// TestDocsVectors: what docs/QR.md publishes is what the code computes,
// signature and link, and what Verify accepts.
func TestDocsVectors(t *testing.T) {
	for _, v := range docVectors(t) {
		if got := Sig([]byte(v["secret"]), v["site"], v["tenant"]); got != v["sig"] {
			t.Errorf("tenant %q: Sig = %s; docs/QR.md says %s", v["tenant"], got, v["sig"])
		}
		s, err := NewSigner(v["site"], config.UplinkQR{URL: v["url"], KeyID: v["key_id"], Secret: v["secret"]})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Link(v["tenant"]); got != v["link"] {
			t.Errorf("tenant %q: Link = %s; docs/QR.md says %s", v["tenant"], got, v["link"])
		}
		if !Verify([]byte(v["secret"]), v["site"], v["tenant"], v["sig"]) {
			t.Errorf("tenant %q: Verify refuses the published signature", v["tenant"])
		}
	}
}

// A signature is 22 characters of base64url and holds for its site and
// tenant only: another tenant, another site, another secret, a changed
// character — each is refused.
func TestVerify_Forgeries(t *testing.T) {
	secret := []byte("mallgrid-qr-test-secret-0123456789abcdef")
	sig := Sig(secret, "riverside-plaza", "B1-07")
	if len(sig) != 22 || strings.ContainsAny(sig, "+/=") {
		t.Fatalf("Sig = %q; want 22 characters of unpadded base64url", sig)
	}
	flipped := []byte(sig)
	flipped[5] ^= 1
	// The one message two (site, tenant) pairs share when a newline may
	// end the site: "riverside-plaza\nB1\n07" is both.
	shifted := Sig(secret, "riverside-plaza", "B1\n07")
	cases := []struct {
		name              string
		secret            []byte
		site, tenant, sig string
	}{
		{"another tenant", secret, "riverside-plaza", "B1-08", sig},
		{"another site", secret, "harbour-mall", "B1-07", sig},
		{"site and tenant shifted", secret, "riverside-plaza\nB1", "07", shifted},
		{"a site not a site id", secret, "Riverside-Plaza", "B1-07", Sig(secret, "Riverside-Plaza", "B1-07")},
		{"an empty site", secret, "", "B1-07", Sig(secret, "", "B1-07")},
		{"another secret", []byte("mallgrid-qr-test-secret-0123456789abcdeX"), "riverside-plaza", "B1-07", sig},
		{"a character changed", secret, "riverside-plaza", "B1-07", string(flipped)},
		{"truncated", secret, "riverside-plaza", "B1-07", sig[:21]},
		{"padded", secret, "riverside-plaza", "B1-07", sig + "=="},
	}
	for _, tc := range cases {
		if Verify(tc.secret, tc.site, tc.tenant, tc.sig) {
			t.Errorf("%s: Verify accepts it", tc.name)
		}
	}
	if !Verify(secret, "riverside-plaza", "B1-07", sig) {
		t.Error("Verify refuses the genuine signature")
	}
}

func TestNewSigner_NotConfigured(t *testing.T) {
	if _, err := NewSigner("s", config.UplinkQR{}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("NewSigner without a URL = %v; want ErrNotConfigured", err)
	}
}

// The shell one-liner of docs/QR.md, run as published, prints the first
// vector's signature.
func TestDocsShellVerification(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	doc, err := os.ReadFile("../../docs/QR.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```sh\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/QR.md has no sh block")
	}
	v := docVectors(t)[0]
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "SECRET="+v["secret"])
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the one-liner: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != v["sig"] {
		t.Errorf("the one-liner prints %q; want %s", got, v["sig"])
	}
}
