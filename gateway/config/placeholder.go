package config

import (
	"crypto/sha256"
	"encoding/hex"
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
// the example knows it, so a receiver that trusts it trusts anyone.
func placeholder(secret string) bool {
	s := strings.ToLower(strings.TrimSpace(secret))
	if scheme, rest, ok := strings.Cut(s, " "); ok && (scheme == "bearer" || scheme == "basic" || scheme == "token") {
		s = strings.TrimSpace(rest)
	}
	return strings.HasPrefix(s, "change-me") || strings.HasPrefix(s, "changeme") || strings.HasPrefix(s, "change_me")
}
