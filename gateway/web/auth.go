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
	Role   string // admin | operator | viewer
	SHA256 string
}

// handler is an API handler that knows who is calling ("" for anonymous reads).
type handler func(w http.ResponseWriter, r *http.Request, actor string)

// read serves GET endpoints: open to anyone who can reach the page, as the
// status page is (the listen address decides who that is).
func (s *Server) read(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, "") }
}

// write serves endpoints that change something: they need a bearer token
// of an operator or admin; the token's name is recorded as the actor.
func (s *Server) write(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := s.bearer(r)
		switch {
		case len(s.tokens) == 0:
			writeError(w, http.StatusForbidden, "no API tokens are configured (http.tokens); changes are refused")
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="mallgrid"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
		case tok.Role != "operator" && tok.Role != "admin":
			writeError(w, http.StatusForbidden, "token "+tok.Name+" is "+tok.Role+"; changes need operator or admin")
		default:
			h(w, r, "token:"+tok.Name)
		}
	}
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
