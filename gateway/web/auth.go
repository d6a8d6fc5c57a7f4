package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// Token is an API bearer token as the configuration keeps it: the hex
// SHA-256 of the secret, never the secret.
type Token struct {
	Name   string
	Role   string // RoleViewer, RoleOperator, RoleFinance or RoleAdmin
	SHA256 string
}

// handler is an API handler that knows who is calling.
type handler func(w http.ResponseWriter, r *http.Request, actor string)

// read adapts a handler that reads; the guard (ServeHTTP) has already
// decided the caller may.
func (s *Server) read(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, principalOf(r).Actor) }
}

// write adapts a handler that changes something. The guard has checked the
// caller's role and, for a logged-in page, its CSRF token; it records the
// change in the audit log once the handler has answered. The caller (the
// user or token) is recorded as the actor.
func (s *Server) write(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, principalOf(r).Actor) }
}

// bearer finds the request's token among the configured ones, comparing
// hashes in constant time.
func (s *Server) bearer(r *http.Request) (Token, bool) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		return Token{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	got := hex.EncodeToString(sum[:])
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToLower(t.SHA256))) == 1 {
			return t, true
		}
	}
	return Token{}, false
}
