package paycode

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"regexp"

	"mallgrid/gateway/config"
)

// SigContext starts every signed message: a signature made for anything
// else the secret may one day sign cannot pass for a sticker's.
const SigContext = "mallgrid-qr/1"

// SigBytes is how much of the HMAC a signature keeps: 128 bits.
const SigBytes = 16

// Signer signs the stickers of one site. Make it with NewSigner; it is
// safe for concurrent use.
type Signer struct {
	site string
	qr   config.UplinkQR
}

// NewSigner returns the Signer of site (uplink.site_id) with qr
// (uplink.qr, validated); ErrNotConfigured when qr has no URL.
func NewSigner(site string, qr config.UplinkQR) (*Signer, error) {
	if !qr.Enabled() {
		return nil, ErrNotConfigured
	}
	return &Signer{site: site, qr: qr}, nil
}

// Sig is tenant's signature.
func (s *Signer) Sig(tenant string) string { return Sig([]byte(s.qr.Secret), s.site, tenant) }

// Link is tenant's sticker URL.
func (s *Signer) Link(tenant string) string { return s.qr.Link(s.site, tenant, s.Sig(tenant)) }

// Sig is the signature of site's tenant under secret (see the package
// documentation).
func Sig(secret []byte, site, tenant string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(SigContext + "\n" + site + "\n" + tenant))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:SigBytes])
}

// SiteID is what a site id is (uplink.site_id's rule). Verify holds a
// site to it: a newline in the site would let "riverside-plaza\nB1" with
// tenant "07" sign the same message as "riverside-plaza" with "B1\n07".
var SiteID = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// Verify reports whether sig is site's tenant's signature under secret,
// comparing in constant time: what the payment page does with a link. A
// site that is not a site id (SiteID) is refused whatever the signature:
// with no newline in the site, the message splits one way only.
func Verify(secret []byte, site, tenant, sig string) bool {
	if !SiteID.MatchString(site) {
		return false
	}
	return hmac.Equal([]byte(Sig(secret, site, tenant)), []byte(sig))
}
