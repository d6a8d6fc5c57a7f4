package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// sessionCookie names the login cookie.
const sessionCookie = "mallgrid_session"

// defaultSessionIdle is a login's life without a request when Options
// leave it out (the configuration's default too).
const defaultSessionIdle = 30 * time.Minute

// session is one login. Its id is only in the cookie and the map's key;
// its CSRF token is what the pages send back with every change. It keeps
// no role: a reload may change the user's entry in http.users, and the
// role in force is the configuration's (Server.userOf).
type session struct {
	id   string
	csrf string
	user string
	cred [sha256.Size]byte // credential of the user's entry at the login
	seen time.Time         // the last request's time: idle from then
	born time.Time         // the login's time: it ends sessionMaxLife after, used or not
}

// credential is what a login keeps of its user's entry: a digest of the
// password hash, so that a reload giving the user a new password ends the
// logins made with the old one.
func credential(u User) [sha256.Size]byte { return sha256.Sum256([]byte(u.PasswordHash)) }

// userOf returns sess's user as the Server's configuration has it; false
// when the configuration no longer has the user, or has given it a new
// password since the login: the login no longer stands.
func (s *Server) userOf(sess session) (User, bool) {
	for _, u := range s.users {
		if u.Name == sess.user {
			c := credential(u)
			return u, subtle.ConstantTimeCompare(c[:], sess.cred[:]) == 1
		}
	}
	return User{}, false
}

// sessionMaxLife ends every login this long after it began, however busy:
// a control-room screen polls every few seconds, which alone would keep a
// login left open on it alive for ever.
const sessionMaxLife = 12 * time.Hour

// sessions are the logins in memory. A restart logs everyone out, which
// the package contract says: nothing of them is written to the disk.
type sessions struct {
	mu   sync.Mutex
	m    map[string]*session
	idle time.Duration
}

func newSessions(idle time.Duration) *sessions {
	if idle <= 0 {
		idle = defaultSessionIdle
	}
	return &sessions{m: make(map[string]*session), idle: idle}
}

// Sessions are logins kept apart from any one Server, so that they
// outlive it: the gateway hands them from the Server of one configuration
// to the next when the configuration is reloaded (Options.Sessions).
type Sessions struct{ ss *sessions }

// NewSessions returns an empty set of logins.
func NewSessions() *Sessions { return &Sessions{ss: newSessions(0)} }

// setIdle sets the time a login lives without a request (0: the default);
// a reloaded http.session_idle applies to the logins already made.
func (ss *sessions) setIdle(idle time.Duration) {
	if idle <= 0 {
		idle = defaultSessionIdle
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.idle = idle
}

// randomID returns 256 random bits, URL-safe.
func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("web: random session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// start makes a session for user; the sessions idle past their time are
// dropped first, so that the map holds only live logins.
func (ss *sessions) start(user User, now time.Time) (session, error) {
	id, err := randomID()
	if err != nil {
		return session{}, err
	}
	csrf, err := randomID()
	if err != nil {
		return session{}, err
	}
	s := &session{id: id, csrf: csrf, user: user.Name, cred: credential(user), seen: now, born: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, o := range ss.m {
		if ss.over(o, now) {
			delete(ss.m, k)
		}
	}
	ss.m[id] = s
	return *s, nil
}

// use returns the live session with id and marks it used at now; a
// session idle too long is ended and not returned.
func (ss *sessions) use(id string, now time.Time) (session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return session{}, false
	}
	if ss.over(s, now) {
		delete(ss.m, id)
		return session{}, false
	}
	if now.After(s.seen) {
		s.seen = now
	}
	return *s, true
}

// over reports whether s has ended by now: idle too long, or too old.
func (ss *sessions) over(s *session, now time.Time) bool {
	return now.Sub(s.seen) > ss.idle || now.Sub(s.born) > sessionMaxLife
}

// alive reports whether the session with id still stands at now, without
// counting this as use: an event stream asks it as it runs, so that a
// logout or an expired login ends the stream too.
func (ss *sessions) alive(id string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	return ok && !ss.over(s, now)
}

// end ends the session with id, if any.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// csrfOK reports whether r carries s's CSRF token, as the X-CSRF-Token
// header or, from a plain HTML form, the csrf field.
func csrfOK(r *http.Request, s session) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" && isForm(r) {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// isForm reports whether r's body is an HTML form's (the only body the
// guard parses itself: a JSON body is left for its handler).
func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 33 && ct[:33] == "application/x-www-form-urlencoded"
}

// setSessionCookie gives the browser s's id: HttpOnly (no script reads
// it), SameSite=Lax (another site's form posts without it), Secure when
// the page came over TLS.
func setSessionCookie(w http.ResponseWriter, r *http.Request, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}
