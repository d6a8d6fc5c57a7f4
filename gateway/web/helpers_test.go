package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
)

// The tests' bearer tokens, one per role: the secret is the role's name
// followed by "-secret".
func testTokens() []Token {
	var ts []Token
	for _, role := range []string{RoleViewer, RoleOperator, RoleFinance, RoleAdmin} {
		sum := sha256.Sum256([]byte(role + "-secret"))
		ts = append(ts, Token{Name: role + "-token", Role: role, SHA256: hex.EncodeToString(sum[:])})
	}
	return ts
}

// asViewer sends r to the gateway by localhost with the viewer's token.
func asViewer(r *http.Request) *http.Request { return as(r, RoleViewer) }

// as sends r to the gateway by localhost with the token of role.
func as(r *http.Request, role string) *http.Request {
	r.Host = "localhost"
	r.Header.Set("Authorization", "Bearer "+role+"-secret")
	return r
}

// netListen listens on a free loopback port.
func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
