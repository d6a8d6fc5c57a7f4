package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// contentSecurityPolicy allows the gateway's own scripts, styles and
// connections only: no inline script, no frame around the pages.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// principal is who a request comes from.
type principal struct {
	Actor string // "user:alice" or "token:till": what the ledger and the audit record
	Role  string
	// sess is the login behind a cookie-borne request; nil for a token.
	sess *session
}

type principalKey struct{}

// principalOf returns who r comes from; the zero principal for a public
// endpoint.
func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// ServeHTTP is the guard every request passes: the security headers, the
// Host check, then the endpoint's rule (accessRules): who is asking (a
// bearer token, or a session cookie), whether their role may, and for a
// change by cookie the CSRF token. A change is recorded in the audit log
// once its handler has answered.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if reason := s.refuseHost(r.Host); reason != "" {
		// DNS rebinding: a page from another site whose name now points
		// here sends its own name; nothing is answered to it.
		s.log.Debug().Str("client", r.RemoteAddr).Str("host", r.Host).Msg("request for another host refused")
		writeError(w, http.StatusMisdirectedRequest, reason)
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" { // no endpoint: the mux answers 404, 405 or a redirect
		s.mux.ServeHTTP(w, r)
		return
	}
	rl, ok := s.rules[pattern]
	if !ok {
		s.log.Error().Str("pattern", pattern).Msg("an endpoint has no access rule (web/access.go): refused to everyone")
		writeError(w, http.StatusForbidden, "this endpoint has no access rule; nobody may call it")
		return
	}
	if !safeMethod(r.Method) && crossSite(r) {
		// Another site's page posting here with the browser's cookie: the
		// login form too (a forged login would put the person in the
		// attacker's account). Machines send no Origin or Sec-Fetch-Site.
		writeError(w, http.StatusForbidden, "a change sent from another site's page is refused")
		return
	}
	if rl.public {
		s.mux.ServeHTTP(w, r)
		return
	}
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	change := !safeMethod(r.Method) && !rl.quiet
	var note *auditNote
	if change {
		note = &auditNote{}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, note))
	}
	rec := &recorder{ResponseWriter: w}
	switch {
	case !rl.allows(p.Role):
		writeError(rec, http.StatusForbidden, p.Actor+" is "+p.Role+"; "+r.Method+" "+r.URL.Path+" needs "+allowedText(rl.roles))
	case p.sess != nil && !safeMethod(r.Method) && !s.csrfGiven(rec, r, *p.sess):
		writeError(rec, http.StatusForbidden, "a change from a logged-in page needs its CSRF token (header X-CSRF-Token or form field csrf); reload the page")
	default:
		s.mux.ServeHTTP(rec, r)
	}
	if change {
		s.audit(r, p, pattern, note, rec)
	}
}

// csrfGiven checks the CSRF token of a change by cookie; a form's body is
// bounded first, as decodeBody bounds a JSON one.
func (s *Server) csrfGiven(w http.ResponseWriter, r *http.Request, sess session) bool {
	if isForm(r) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	return csrfOK(r, sess)
}

// authenticate finds who r comes from. A request that carries an
// Authorization header is judged by it alone (a machine with a wrong token
// is told so, not sent to a login page); else by its session cookie, whose
// user must still be in http.users with the password of the login, and
// has the role http.users gives it now: a reload that removes a user or
// changes the password ends the login at its next request, one that
// changes the role applies to it at once. When it returns false it has
// answered: 401 for the API and /metrics, a redirect to the login page for
// a page.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (principal, bool) {
	if r.Header.Get("Authorization") != "" {
		tok, ok := s.bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mallgrid"`)
			writeError(w, http.StatusUnauthorized, "the bearer token is not one of http.tokens")
			return principal{}, false
		}
		return principal{Actor: "token:" + tok.Name, Role: tok.Role}, true
	}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if sess, ok := s.sessions.use(c.Value, s.now()); ok {
			if u, ok := s.userOf(sess); ok {
				return principal{Actor: "user:" + sess.user, Role: u.Role, sess: &sess}, true
			}
			s.sessions.end(sess.id)
			setSessionCookie(w, r, "", -1)
			s.log.Info().Str("client", clientAddress(r)).Str("user", sess.user).
				Msg("logged out: the user is no longer in http.users, or has a new password")
		}
	}
	// A page sends a person to the login; the API and Prometheus's
	// scrape are machines', which cannot follow a login page.
	if !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics" && safeMethod(r.Method) {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return principal{}, false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="mallgrid"`)
	writeError(w, http.StatusUnauthorized, "log in (POST /login) or send a bearer token of http.tokens")
	return principal{}, false
}

// refuseHost returns why a request naming host is refused, or "". Allowed:
// localhost and the loopback addresses, the listen host, and with a
// listen on every interface any IP address (a rebinding page always names
// its own host, never an address), each with the port served on; and the
// names of http.hosts (a name alone with any port).
func (s *Server) refuseHost(host string) string {
	if host == "" {
		return "the request names no host (Host header)"
	}
	name, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	for _, a := range s.hosts {
		an, ap := a, ""
		if h, p, err := net.SplitHostPort(a); err == nil {
			an, ap = h, p
		}
		if strings.EqualFold(strings.Trim(an, "[]"), name) && (ap == "" || ap == port) {
			return ""
		}
	}
	local := name == "localhost" || name == "127.0.0.1" || name == "::1" || name == s.listenHost
	if !local && s.listenAny {
		local = net.ParseIP(name) != nil
	}
	if served := s.port.Load(); local && (port == "" || served == 0 || port == strconv.Itoa(int(served))) {
		return ""
	}
	return "host " + strconv.Quote(host) + " is not this gateway's (http.listen, localhost, or a name in http.hosts)"
}

// recorder notes a handler's status and, for a refusal, the start of its
// body, whose reason goes into the audit record.
type recorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 && len(w.body) < 1024 {
		w.body = append(w.body, b[:min(len(b), 1024-len(w.body))]...)
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes a stream's events on at once (GET /api/v1/events).
func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush() // an error is a client that left
}

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outcome is "ok" for a success, else the status and the refusal's reason.
func (w *recorder) outcome() string {
	code := w.status
	if code == 0 {
		code = http.StatusOK
	}
	if code < 400 {
		return "ok"
	}
	var e struct {
		Error string `json:"error"`
	}
	out := strconv.Itoa(code)
	if json.Unmarshal(w.body, &e) == nil && e.Error != "" {
		out += " " + e.Error
	}
	return out
}

// crossSite reports whether a browser says r comes from another site's
// page: Sec-Fetch-Site cross-site, or an Origin whose host is not the one
// r was sent to.
func crossSite(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	if origin == "null" { // a sandboxed frame or a file: no page of ours
		return true
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}
