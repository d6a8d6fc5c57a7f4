package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrLinkInvalid is returned for a statement link token that was not made
// with the site's key: altered, cut short, or made up.
var ErrLinkInvalid = errors.New("report: statement link is not valid")

// ErrLinkExpired is returned for a genuine statement link past its expiry.
var ErrLinkExpired = errors.New("report: statement link has expired")

// Link is what a statement link grants: one tenant's statement of one
// month, until Expires.
type Link struct {
	Tenant  string
	Month   string
	Expires time.Time
}

// linkVersion starts every signed payload, so that another layout later
// can never be read as this one.
const linkVersion = "s1"

// SignLink makes the token of l under key: the payload (version, tenant,
// month, expiry in Unix seconds, separated by NUL, which no id holds) and
// its HMAC-SHA256, each base64url without padding, joined by a dot.
func SignLink(key []byte, l Link) (string, error) {
	if l.Tenant == "" || strings.ContainsRune(l.Tenant, 0) || strings.ContainsRune(l.Month, 0) {
		return "", fmt.Errorf("report: link for tenant %q month %q", l.Tenant, l.Month)
	}
	payload := strings.Join([]string{linkVersion, l.Tenant, l.Month, strconv.FormatInt(l.Expires.Unix(), 10)}, "\x00")
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(linkMAC(key, payload)), nil
}

func linkMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// VerifyLink returns what token grants at now: ErrLinkInvalid unless its
// MAC is key's over its payload (compared in constant time, before the
// payload is believed), ErrLinkExpired once now is past its expiry.
func VerifyLink(key []byte, token string, now time.Time) (Link, error) {
	enc := base64.RawURLEncoding
	p, m, ok := strings.Cut(token, ".")
	if !ok {
		return Link{}, ErrLinkInvalid
	}
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, linkMAC(key, string(payload))) {
		return Link{}, ErrLinkInvalid
	}
	parts := strings.Split(string(payload), "\x00")
	if len(parts) != 4 || parts[0] != linkVersion {
		return Link{}, ErrLinkInvalid
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return Link{}, ErrLinkInvalid
	}
	l := Link{Tenant: parts[1], Month: parts[2], Expires: time.Unix(exp, 0)}
	if !now.Before(l.Expires) {
		return l, fmt.Errorf("%w: %s", ErrLinkExpired, l.Expires.UTC().Format(time.RFC3339))
	}
	return l, nil
}
