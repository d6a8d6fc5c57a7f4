package config

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"mallgrid/gateway/yamlcheck"
)

// UplinkQR is the tenants' payment stickers: a QR code per tenant for the
// mall's payment page, signed so that the page can trust the tenant id
// (gateway/paycode, docs/QR.md). Empty URL: no stickers.
type UplinkQR struct {
	// URL is the payment page's address template. {site} (uplink.site_id),
	// {tenant}, {key} (KeyID) and {sig} are each required and replaced,
	// percent-escaped, in the path or the query: never in the host nor
	// after a #. The template is ASCII without spaces, as on the wire.
	URL string `yaml:"url"`
	// KeyID names the secret the stickers are signed with: the payment page
	// picks its secret by it, so that a new secret can be brought in while
	// the stickers already on the walls still verify under the old one.
	KeyID string `yaml:"key_id"`
	// Secret is the HMAC-SHA256 key shared with the payment page, at least
	// MinQRSecret bytes. MALLGRID_UPLINK_QR_SECRET (QRSecretVar) gives it
	// and overrides the file; one written in the file is a warning.
	Secret string `yaml:"secret"`
}

const (
	// DefaultQRKeyID is uplink.qr.key_id's default.
	DefaultQRKeyID = "q1"
	// MinQRSecret is the shortest uplink.qr.secret, in bytes: 256 bits,
	// HMAC-SHA256's own strength; a shorter one could be guessed offline
	// from one sticker's signature.
	MinQRSecret = 32
	// QRSecretVar is the environment variable that gives uplink.qr.secret.
	QRSecretVar = EnvPrefix + "UPLINK_QR_SECRET"
)

// Enabled reports whether stickers are configured.
func (q UplinkQR) Enabled() bool { return q.URL != "" }

// Link fills the URL template with site, tenant, the key id and sig, each
// percent-escaped (QREscape).
func (q UplinkQR) Link(site, tenant, sig string) string {
	return strings.NewReplacer("{site}", QREscape(site), "{tenant}", QREscape(tenant),
		"{key}", QREscape(q.KeyID), "{sig}", QREscape(sig)).Replace(q.URL)
}

// QREscape percent-escapes every byte but the unreserved characters of
// RFC 3986 (A-Z a-z 0-9 - . _ ~): the result means the same in a path
// segment and in a query value, wherever the template puts it — a tenant
// id "B1/02" or "A&B" cannot add a path segment or a query parameter.
func QREscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// publishedQRSecrets are secrets printed for all to read: the example
// configuration's and docs/QR.md's test vectors'. Either would work, and
// stickers signed with it could be forged by anyone who read the docs.
var publishedQRSecrets = []string{"example-only-0123456789abcdef-0123456789", "mallgrid-qr-test-secret-0123456789abcdef"}

// qrPlaceholders are the template's placeholders; each is required.
var qrPlaceholders = []string{"{site}", "{tenant}", "{key}", "{sig}"}

var (
	qrPlaceholder = regexp.MustCompile(`\{[^{}/?&#]*\}`)
	qrKeyID       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

// qrSecret sets q.Secret from QRSecretVar in vars and returns the variable
// when it read it (or warned of it), and as known the variable it would
// read, for the hints about a misspelt one. Set while no stickers are
// configured, it is a warning: the technician believes it used.
//
// A secret written in the file is a warning, whether or not the variable
// replaces it: the file is read by more people than the service's
// environment.
func qrSecret(q *UplinkQR, r *yamlcheck.Report, vars map[string]string) (used, known []string) {
	if q.Enabled() && q.Secret != "" {
		const key = "uplink.qr.secret"
		r.WarnAt(r.Line(key), key, "the secret is written in the file: whoever reads the file can print a sticker for any tenant; give it in %s instead", QRSecretVar)
	}
	v := vars[QRSecretVar]
	if v == "" {
		return nil, []string{QRSecretVar}
	}
	if !q.Enabled() {
		r.WarnAt(0, "", "env %s: uplink.qr.url is not set, so no stickers are signed: ignored", QRSecretVar)
		return []string{QRSecretVar}, []string{QRSecretVar}
	}
	r.Override("uplink.qr.secret", "env "+QRSecretVar, v, &q.Secret)
	return []string{QRSecretVar}, []string{QRSecretVar}
}

// MaxQRLink is the longest sticker link, in bytes: what a QR code of
// version 10 holds at level Q in byte mode (57 modules, 0.68 mm each on
// the sticker's 44 mm with the quiet zone). A longer link makes a denser
// code that a phone reads badly from a meter box, and past some 1,000
// bytes no code at all.
const MaxQRLink = 151

// validateQR checks uplink.qr, whose stickers carry uplink.site_id and
// the ids of tenants, and sets key_id's default. Stickers need no broker:
// they are printed from the configuration alone.
func validateQR(r *yamlcheck.Report, u *Uplink, tenants []Tenant) {
	const p = "uplink.qr"
	q, siteID := &u.QR, u.SiteID
	if !q.Enabled() {
		for _, k := range []string{"key_id", "secret"} {
			if r.Given(p + "." + k) {
				r.Add(p+".url", "required when uplink.qr.%s is given: the payment page's address the stickers open", k)
				return
			}
		}
		return
	}
	if q.KeyID == "" && !r.Given(p+".key_id") {
		q.KeyID = DefaultQRKeyID
	}
	if r.Need(p+".key_id", q.KeyID) && !qrKeyID.MatchString(q.KeyID) {
		r.Add(p+".key_id", "want 1..32 of A-Z, a-z, 0-9, _ and -, got %q", q.KeyID)
	}
	if q.Secret == "" {
		r.Add(p+".secret", "required, not set: give it in %s (at least %d bytes, shared with the payment page)", QRSecretVar, MinQRSecret)
	} else if slices.Contains(publishedQRSecrets, q.Secret) {
		r.Add(p+".secret", "a published secret (configs/mallgrid.example.yaml's or docs/QR.md's): anyone could sign stickers with it; make one (openssl rand -base64 32) and give it in %s", QRSecretVar)
	} else if len(q.Secret) < MinQRSecret {
		r.Add(p+".secret", "%d bytes; want at least %d (like the output of: openssl rand -base64 32)", len(q.Secret), MinQRSecret)
	}
	if siteID == "" && u.Broker == "" { // with a broker, the link's own check says it
		r.Add("uplink.site_id", "required by uplink.qr.url: every sticker carries the site")
	}
	if validateQRTemplate(r, p+".url", *q, siteID) {
		validateQRTenants(r, *q, siteID, tenants)
	}
}

// validateQRTenants checks that each tenant's id can go on a sticker of
// the template q.URL (valid), at the id's line.
func validateQRTenants(r *yamlcheck.Report, q UplinkQR, siteID string, tenants []Tenant) {
	inPath := qrTenantInPath(q.URL)
	if siteID == "" {
		siteID = "site"
	}
	sig := strings.Repeat("A", 22) // a signature's length
	for i, t := range tenants {
		key := yamlcheck.Index("tenants", i) + ".id"
		if t.ID == "" {
			continue // the tenants' own check says so
		}
		if c := strings.IndexFunc(t.ID, unicode.IsControl); c >= 0 {
			r.Add(key, "a control character (U+%04X) in %q: the id goes on a signed sticker (uplink.qr); use letters, digits and punctuation", []rune(t.ID[c:])[0], t.ID)
			continue
		}
		if inPath && (t.ID == "." || t.ID == "..") {
			r.Add(key, "%q in the path of uplink.qr.url is a dot segment a browser drops: put {tenant} in the query (?t={tenant}) or rename the tenant", t.ID)
			continue
		}
		if n := len(q.Link(siteID, t.ID, sig)); n > MaxQRLink {
			r.Add(key, "the sticker's link is %d bytes (the id escaped: %d); at most %d fit a code easy to scan (QR version 10 at level Q): a shorter id or uplink.qr.url", n, len(QREscape(t.ID)), MaxQRLink)
		}
	}
}

// qrTokens stand for the placeholders while a template is parsed: letters
// and digits that url.Parse takes anywhere, host included, so that where
// each lands (host, path, query, fragment) is the parser's reading, not a
// guess at where the host ends.
var qrTokens = map[string]string{"{site}": "qrph0site0", "{tenant}": "qrph0tenant0", "{key}": "qrph0key0", "{sig}": "qrph0sig0"}

// parseQRTemplate is the template parsed with its placeholders as
// qrTokens.
func parseQRTemplate(t string) (*url.URL, error) {
	var pairs []string
	for _, ph := range qrPlaceholders {
		pairs = append(pairs, ph, qrTokens[ph])
	}
	return url.Parse(strings.NewReplacer(pairs...).Replace(t))
}

// qrTenantInPath reports whether template puts {tenant} in the path,
// where a tenant id "." or ".." is a dot segment browsers drop.
func qrTenantInPath(template string) bool {
	u, err := parseQRTemplate(template)
	return err == nil && strings.Contains(u.EscapedPath(), qrTokens["{tenant}"])
}

// validateQRTemplate checks the URL template: ASCII, http(s), every
// placeholder once known and in the path or the query (the only parts
// both sent to the payment page and free of the host's meaning), and,
// filled, an absolute URL. It reports whether the template is good.
func validateQRTemplate(r *yamlcheck.Report, key string, q UplinkQR, siteID string) bool {
	t := q.URL
	// A space or a Chinese character would be escaped by whoever prints
	// or scans the link, differently by each: the template is written as
	// it goes on the wire.
	for i, c := range []byte(t) {
		if c <= ' ' || c >= 0x7f {
			ch, _ := utf8.DecodeRuneInString(t[i:])
			r.Add(key, "want ASCII without spaces or control characters (percent-encode them: %%20, UTF-8 %%E5%%95%%86…), got %q at byte %d", string(ch), i)
			return false
		}
	}
	lower := strings.ToLower(t)
	scheme, _, ok := strings.Cut(lower, "://")
	if !ok || (scheme != "https" && scheme != "http") {
		r.Add(key, "want an https:// (or http://) address, got %q", t)
		return false
	}
	for _, ph := range qrPlaceholder.FindAllString(t, -1) {
		if !slices.Contains(qrPlaceholders, ph) {
			r.Add(key, "unknown placeholder %s; the template takes %s", ph, strings.Join(qrPlaceholders, ", "))
			return false
		}
	}
	var missing []string
	for _, ph := range qrPlaceholders {
		if !strings.Contains(t, ph) {
			missing = append(missing, ph)
		}
	}
	if len(missing) > 0 {
		r.Add(key, "the template lacks %s: the payment page needs the site, the tenant, the key id and the signature", strings.Join(missing, ", "))
		return false
	}
	if siteID == "" {
		siteID = "site"
	}
	q.KeyID = DefaultQRKeyID // the check is of the template; key_id is checked by itself
	filled := q.Link(siteID, "T-101", strings.Repeat("A", 22))
	u, err := parseQRTemplate(t)
	if err != nil {
		if _, ferr := url.Parse(filled); ferr != nil {
			err = ferr // the filled link's error names no token
		}
		r.Add(key, "filled in, it is not a URL (%s): %s", filled, err)
		return false
	}
	for _, ph := range qrPlaceholders {
		tok := qrTokens[ph]
		switch {
		case strings.Contains(u.Host, tok) || u.User != nil && strings.Contains(u.User.String(), tok):
			authority := t[len(scheme)+3:]
			if i := strings.IndexAny(authority, "/?#"); i >= 0 {
				authority = authority[:i]
			}
			r.Add(key, "a placeholder in the host (%q): put {site}, {tenant}, {key} and {sig} in the path or the query", authority)
			return false
		case strings.Contains(u.EscapedFragment(), tok):
			r.Add(key, "%s after the #: a browser never sends the fragment to the payment page; put it in the path or the query", ph)
			return false
		}
	}
	if u.Host == "" {
		r.Add(key, "filled in, it is not a URL (%s): no host", filled)
		return false
	}
	if scheme == "http" {
		r.Warn(key, "http:// sends the tenant's payment page in the clear: use https://")
	}
	return true
}
