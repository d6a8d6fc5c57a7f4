package config

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// guessablePasswords are passwords anyone tries first: none at all, the
// example's placeholder, and the meters' password the example once gave
// a hash of ("password"). A password_sha256 of one of them lets any
// device on the mall's network log in as the meters and publish readings
// for the bus's meter ids.
var guessablePasswords = []string{"", "password", "change-me", "changeme", "123456", "12345678", "admin"}

// guessableDigest returns the password whose hex SHA-256 is digest when it
// is one of guessablePasswords, however the hex is cased.
func guessableDigest(digest string) (password string, ok bool) {
	for _, p := range guessablePasswords {
		sum := sha256.Sum256([]byte(p))
		if strings.EqualFold(digest, hex.EncodeToString(sum[:])) {
			return p, true
		}
	}
	return "", false
}

// placeholder reports whether secret is a placeholder of the kind the
// example writes where a secret of the site's own goes ("change-me",
// "change-me-to-a-long-random-string", "Bearer change-me"): whoever read
// the example knows it, so a receiver that trusts it trusts anyone. The
// word must stand whole — change-me, changeme or change_me, then the end or
// a character that is not a letter or digit — so that a secret that only
// starts with its letters ("changemeter", "change_member…") is the site's.
func placeholder(secret string) bool {
	s := strings.ToLower(strings.TrimSpace(secret))
	if scheme, rest, ok := strings.Cut(s, " "); ok && (scheme == "bearer" || scheme == "basic" || scheme == "token") {
		s = strings.TrimSpace(rest)
	}
	return placeholderWord.MatchString(s)
}

// placeholderWord is the example's placeholder at the start of a lower-case
// secret, as a whole word.
var placeholderWord = regexp.MustCompile(`^change[-_]?me([^a-z0-9]|$)`)

// credentialHeader reports whether an SMS gateway's header (name as
// written in the file, any case) carries a credential — Authorization,
// Proxy-Authorization, or a name that says key, token, secret, password,
// auth or signature (X-Api-Key, X-Auth-Token) — and so must not be the
// example's placeholder. Other headers carry what the gateway wants to
// read (a template, a notice), where the placeholder's letters may be
// words of the site's.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"authorization", "key", "token", "secret", "password", "passwd", "auth", "signature", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
