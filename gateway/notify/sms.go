package notify

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// phone tidies a number as people write it ("+86 138 0013 8000") into what
// the SMS services take: digits with an optional leading +.
func phone(s string) string {
	var b strings.Builder
	for i, r := range s {
		if (r >= '0' && r <= '9') || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// paramsJSON is a template's parameters as the JSON object of strings
// Alibaba Cloud's TemplateParam wants.
func paramsJSON(ps []Param) (string, error) {
	o := make(map[string]string, len(ps))
	for _, p := range ps {
		o[p.Key] = p.Value
	}
	b, err := json.Marshal(o)
	return string(b), err
}

// uuid4 is a random RFC 4122 version 4 UUID, the nonce Alibaba Cloud advises.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// percentEncode is RFC 3986 percent-encoding as Alibaba Cloud signs it:
// A–Z a–z 0–9 - _ . ~ kept, every other byte of the UTF-8 as %XY in upper
// hex (so a space is %20, never +, and * is %2A). It is also what the
// generic SMS template puts in URLs: safe in a path and in a query alike.
func percentEncode(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}
