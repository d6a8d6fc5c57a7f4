package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mallgrid/gateway/yamlcheck"
)

// qrFile is the part of a configuration the stickers read, decoded as the
// whole file decodes it, so that problems carry their lines.
type qrFile struct {
	Tenants []Tenant `yaml:"tenants"`
	Uplink  Uplink   `yaml:"uplink"`
}

const qrGoodSecret = "0123456789abcdef0123456789abcdef"

// parseQR decodes text, layers env over it and validates uplink.qr,
// returning what was loaded and every problem and warning printed.
func parseQR(t *testing.T, text string, env map[string]string) (UplinkQR, []string) {
	t.Helper()
	r := yamlcheck.NewReport("t.yaml")
	var f qrFile
	if !(yamlcheck.Decoder{}).Decode(r, []byte(text), &f) {
		t.Fatalf("decode: %v", r.Err())
	}
	used, _ := qrSecret(&f.Uplink.QR, r, env)
	if env[QRSecretVar] != "" && len(used) != 1 {
		t.Errorf("qrSecret used %v; want it to report %s read", used, QRSecretVar)
	}
	validateQR(r, &f.Uplink, f.Tenants)
	var got []string
	if err := r.Err(); err != nil {
		for _, p := range *err.(*yamlcheck.Problems) {
			got = append(got, p.Error())
		}
	} else {
		for _, p := range r.Warnings() {
			got = append(got, p.Error())
		}
	}
	return f.Uplink.QR, got
}

// Each mistake in uplink.qr is one problem at its line and key.
func TestValidateQR_Problems(t *testing.T) {
	env := map[string]string{QRSecretVar: qrGoodSecret}
	head := "uplink:\n  site_id: riverside\n  qr:\n"
	cases := []struct{ name, qr, want string }{
		{"not http", "    url: 'ftp://pay.example/{site}/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: want an https:// (or http://) address, got "ftp://pay.example/{site}/{tenant}?k={key}&s={sig}"`},
		{"no scheme", "    url: 'pay.example/{site}/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: want an https:// (or http://) address, got "pay.example/{site}/{tenant}?k={key}&s={sig}"`},
		{"placeholder in the host", "    url: 'https://{site}.pay.example/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: a placeholder in the host ("{site}.pay.example"): put {site}, {tenant}, {key} and {sig} in the path or the query`},
		{"missing sig", "    url: 'https://pay.example/{site}/{tenant}?k={key}'\n",
			"t.yaml:4: uplink.qr.url: the template lacks {sig}: the payment page needs the site, the tenant, the key id and the signature"},
		{"missing two", "    url: 'https://pay.example/{tenant}?s={sig}'\n",
			"t.yaml:4: uplink.qr.url: the template lacks {site}, {key}: the payment page needs the site, the tenant, the key id and the signature"},
		{"unknown placeholder", "    url: 'https://pay.example/{site}/{shop}/{tenant}?k={key}&s={sig}'\n",
			"t.yaml:4: uplink.qr.url: unknown placeholder {shop}; the template takes {site}, {tenant}, {key}, {sig}"},
		{"not a URL once filled", "    url: 'https://pay.example:port/{site}/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: filled in, it is not a URL (https://pay.example:port/riverside/T-101?k=q1&s=AAAAAAAAAAAAAAAAAAAAAA): parse "https://pay.example:port/riverside/T-101?k=q1&s=AAAAAAAAAAAAAAAAAAAAAA": invalid port ":port" after host`},
		{"placeholder in the user", "    url: 'https://{site}@pay.example/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: a placeholder in the host ("{site}@pay.example"): put {site}, {tenant}, {key} and {sig} in the path or the query`},
		{"placeholder in the fragment", "    url: 'https://pay.example/p?site={site}&t={tenant}&k={key}#{sig}'\n",
			"t.yaml:4: uplink.qr.url: {sig} after the #: a browser never sends the fragment to the payment page; put it in the path or the query"},
		{"a space", "    url: 'https://pay.example/my shop/{site}/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: want ASCII without spaces or control characters (percent-encode them: %20, UTF-8 %E5%95%86…), got " " at byte 22`},
		{"not ASCII", "    url: 'https://pay.example/商场/{site}/{tenant}?k={key}&s={sig}'\n",
			`t.yaml:4: uplink.qr.url: want ASCII without spaces or control characters (percent-encode them: %20, UTF-8 %E5%95%86…), got "商" at byte 20`},
		{"key id", "    url: 'https://pay.example/{site}/{tenant}?k={key}&s={sig}'\n    key_id: 'q 1'\n",
			`t.yaml:5: uplink.qr.key_id: want 1..32 of A-Z, a-z, 0-9, _ and -, got "q 1"`},
		{"key id empty", "    url: 'https://pay.example/{site}/{tenant}?k={key}&s={sig}'\n    key_id: ''\n",
			`t.yaml:5: uplink.qr.key_id: must not be empty`},
	}
	for _, tc := range cases {
		_, got := parseQR(t, head+tc.qr, env)
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), tc.want)
		}
	}
}

// The secret: from the variable, else the file (a warning), never short,
// never missing; the site is required.
func TestValidateQR_SecretAndSite(t *testing.T) {
	url := "    url: 'https://pay.example/{site}/{tenant}?k={key}&s={sig}'\n"
	cases := []struct {
		name, text string
		env        map[string]string
		want       []string
	}{
		{"no secret", "uplink:\n  site_id: s\n  qr:\n" + url, nil,
			[]string{"t.yaml:3: uplink.qr.secret: required, not set: give it in MALLGRID_UPLINK_QR_SECRET (at least 32 bytes, shared with the payment page)"}},
		{"short variable", "uplink:\n  site_id: s\n  qr:\n" + url, map[string]string{QRSecretVar: "short"},
			[]string{"t.yaml: uplink.qr.secret: env MALLGRID_UPLINK_QR_SECRET: 5 bytes; want at least 32 (like the output of: openssl rand -base64 32)"}},
		{"in the file", "uplink:\n  site_id: s\n  qr:\n" + url + "    secret: '" + qrGoodSecret + "'\n", nil,
			[]string{"t.yaml:5: uplink.qr.secret: warning: the secret is written in the file: whoever reads the file can print a sticker for any tenant; give it in MALLGRID_UPLINK_QR_SECRET instead"}},
		{"short in the file", "uplink:\n  site_id: s\n  qr:\n" + url + "    secret: 'abc'\n", nil,
			[]string{"t.yaml:5: uplink.qr.secret: warning: the secret is written in the file: whoever reads the file can print a sticker for any tenant; give it in MALLGRID_UPLINK_QR_SECRET instead",
				"t.yaml:5: uplink.qr.secret: 3 bytes; want at least 32 (like the output of: openssl rand -base64 32)"}},
		{"empty in the file, given by the variable", "uplink:\n  site_id: s\n  qr:\n" + url + "    secret: ''\n", map[string]string{QRSecretVar: qrGoodSecret}, nil},
		{"no site", "uplink:\n  qr:\n" + url, map[string]string{QRSecretVar: qrGoodSecret},
			[]string{"t.yaml:1: uplink.site_id: required by uplink.qr.url: every sticker carries the site"}},
		{"plain http", "uplink:\n  site_id: s\n  qr:\n    url: 'http://pay.example/{site}/{tenant}?k={key}&s={sig}'\n", map[string]string{QRSecretVar: qrGoodSecret},
			[]string{"t.yaml:4: uplink.qr.url: warning: http:// sends the tenant's payment page in the clear: use https://"}},
		{"variable without stickers", "uplink:\n  site_id: s\n", map[string]string{QRSecretVar: qrGoodSecret},
			[]string{"t.yaml: warning: env MALLGRID_UPLINK_QR_SECRET: uplink.qr.url is not set, so no stickers are signed: ignored"}},
		{"keys without url", "uplink:\n  site_id: s\n  qr:\n    key_id: q2\n", nil,
			[]string{"t.yaml:3: uplink.qr.url: required when uplink.qr.key_id is given: the payment page's address the stickers open"}},
		{"good", "uplink:\n  site_id: s\n  qr:\n" + url, map[string]string{QRSecretVar: qrGoodSecret}, nil},
	}
	for _, tc := range cases {
		_, got := parseQR(t, tc.text, tc.env)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// Templates that are good: the placeholders anywhere in the path or the
// query, a host ending at the "?" with no path at all.
func TestValidateQR_GoodTemplates(t *testing.T) {
	env := map[string]string{QRSecretVar: qrGoodSecret}
	for _, u := range []string{
		"https://pay.example?site={site}&t={tenant}&k={key}&s={sig}",
		"https://pay.example:8443/{site}/{key}/{sig}?t={tenant}",
		"https://pay.example/p/{site}-{tenant}?ks={key}.{sig}#top",
	} {
		if _, got := parseQR(t, "uplink:\n  site_id: s\n  qr:\n    url: '"+u+"'\n", env); got != nil {
			t.Errorf("%s: got\n%s\nwant no problem", u, strings.Join(got, "\n"))
		}
	}
}

// Tenant ids a sticker cannot carry are refused at their line while
// stickers are configured: a control character (a newline would let the
// signed message split two ways), "." and ".." with {tenant} in the path
// (a dot segment browsers drop), and an id whose link is too long for a
// code easy to scan.
func TestValidateQR_TenantIDs(t *testing.T) {
	env := map[string]string{QRSecretVar: qrGoodSecret}
	long := strings.Repeat("茶", 50)
	tenants := "tenants:\n  - id: B1-07\n  - id: \"B1\\n07\"\n  - id: \".\"\n  - id: \"..\"\n  - id: " + long + "\n  - id: \"\\x7f\"\n"
	qr := func(url string) string {
		return tenants + "uplink:\n  site_id: riverside-plaza\n  qr:\n    url: '" + url + "'\n"
	}
	_, got := parseQR(t, qr("https://pay.example/m/{site}/t/{tenant}?k={key}&s={sig}"), env)
	want := []string{
		`t.yaml:3: tenants[1].id: a control character (U+000A) in "B1\n07": the id goes on a signed sticker (uplink.qr); use letters, digits and punctuation`,
		`t.yaml:4: tenants[2].id: "." in the path of uplink.qr.url is a dot segment a browser drops: put {tenant} in the query (?t={tenant}) or rename the tenant`,
		`t.yaml:5: tenants[3].id: ".." in the path of uplink.qr.url is a dot segment a browser drops: put {tenant} in the query (?t={tenant}) or rename the tenant`,
		`t.yaml:6: tenants[4].id: the sticker's link is 520 bytes (the id escaped: 450); at most 151 fit a code easy to scan (QR version 10 at level Q): a shorter id or uplink.qr.url`,
		`t.yaml:7: tenants[5].id: a control character (U+007F) in "\x7f": the id goes on a signed sticker (uplink.qr); use letters, digits and punctuation`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("{tenant} in the path: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, got = parseQR(t, qr("https://pay.example/m?site={site}&t={tenant}&k={key}&s={sig}"), env)
	if len(got) != 3 || strings.Contains(strings.Join(got, "\n"), "dot segment") {
		t.Errorf("{tenant} in the query: got\n%s\nwant the control characters and the long id alone", strings.Join(got, "\n"))
	}
	// Without stickers a tenant id is the configuration's own business.
	if _, got := parseQR(t, tenants, nil); got != nil {
		t.Errorf("no uplink.qr: got %v; want no problem", got)
	}
}

// The variable wins over the file; key_id defaults to q1.
func TestValidateQR_Loaded(t *testing.T) {
	text := "uplink:\n  site_id: s\n  qr:\n    url: 'https://pay.example/p?site={site}&t={tenant}&k={key}&s={sig}'\n    secret: '" +
		strings.Repeat("f", 40) + "'\n"
	q, _ := parseQR(t, text, map[string]string{QRSecretVar: qrGoodSecret})
	if q.Secret != qrGoodSecret || q.KeyID != DefaultQRKeyID {
		t.Errorf("secret %q, key_id %q; want the variable's and %s", q.Secret, q.KeyID, DefaultQRKeyID)
	}
}

// A value that could end the path segment or start another query
// parameter is escaped: the link names the tenant it was made for.
func TestUplinkQR_Link(t *testing.T) {
	q := UplinkQR{URL: "https://pay.example/m/{site}/t/{tenant}?k={key}&s={sig}", KeyID: "q1"}
	got := q.Link("riverside plaza", "B1/02&x=1#é", "ab-_")
	want := "https://pay.example/m/riverside%20plaza/t/B1%2F02%26x%3D1%23%C3%A9?k=q1&s=ab-_"
	if got != want {
		t.Errorf("Link = %s; want %s", got, want)
	}
}

// exampleQR is the example configuration with its uplink.qr lines
// uncommented — the secret's too when withSecret — written to a file.
func exampleQR(t *testing.T, withSecret bool) string {
	t.Helper()
	data, err := os.ReadFile("../../configs/mallgrid.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys := "qr|url|key_id"
	if withSecret {
		keys += "|secret"
	}
	line := regexp.MustCompile(`(?m)^(\s*)# ((?:` + keys + `):)`)
	text, n := string(data), 0
	if i := strings.Index(text, "  # qr:"); i >= 0 {
		rest := line.ReplaceAllStringFunc(text[i:], func(m string) string {
			n++
			return line.ReplaceAllString(m, "$1$2")
		})
		text = text[:i] + rest
	}
	if want := strings.Count(keys, "|") + 1; n < want {
		t.Fatalf("uncommented %d uplink.qr lines of the example; want %d", n, want)
	}
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Through Load: the example's uplink.qr, uncommented, loads with the
// secret given by the variable (known: no "unknown variable" warning);
// key_id is the file's.
func TestLoad_QRSecretVariable(t *testing.T) {
	secret := strings.Repeat("s", 44)
	cfg, err := Load(exampleQR(t, false), []string{QRSecretVar + "=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Uplink.QR.Secret != secret || cfg.Uplink.QR.KeyID != "q1" || !cfg.Uplink.QR.Enabled() {
		t.Errorf("uplink.qr = %+v; want the variable's secret, key q1", cfg.Uplink.QR)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Error(), "unknown variable") {
			t.Errorf("warning %v; want %s known", w, QRSecretVar)
		}
	}
}

// A published secret — the example's, docs/QR.md's vectors' — is refused
// wherever it comes from: anyone could sign stickers with it.
func TestLoad_QRPublishedSecret(t *testing.T) {
	file := exampleQR(t, true)
	_, err := Load(file, nil)
	if err == nil || !strings.Contains(err.Error(), file+":") || !strings.Contains(err.Error(), ": uplink.qr.secret: a published secret") {
		t.Errorf("the example's secret uncommented: %v; want FILE:LINE: uplink.qr.secret: a published secret", err)
	}
	_, err = Load(exampleQR(t, false), []string{QRSecretVar + "=mallgrid-qr-test-secret-0123456789abcdef"})
	if err == nil || !strings.Contains(err.Error(), "uplink.qr.secret: env "+QRSecretVar+": a published secret") {
		t.Errorf("docs/QR.md's secret in %s: %v; want it refused", QRSecretVar, err)
	}
	// Every secret the docs and the example print is on the list.
	for _, f := range []string{"../../docs/QR.md", "../../configs/mallgrid.example.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^[\s#]*secret:\s*"?([^"\s]{8,})`).FindAllStringSubmatch(string(data), -1) {
			if !strings.Contains(f, "example") || strings.HasPrefix(m[1], "example-only") {
				if !slices.Contains(publishedQRSecrets, m[1]) {
					t.Errorf("%s prints the secret %q; publishedQRSecrets lacks it", f, m[1])
				}
			}
		}
	}
}
