package web

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mallgrid/gateway/i18n"
	"mallgrid/store"
)

// User is a control-room login as the configuration keeps it.
type User struct {
	Name         string
	Role         string // RoleViewer, RoleOperator, RoleFinance or RoleAdmin
	PasswordHash string // bcrypt
}

// defaultLoginDelay is how long a wrong password waits before its answer
// when Options leave it out: a guesser gets a few tries a second at most
// per connection, a person notices nothing.
const defaultLoginDelay = time.Second

// maxNameLen bounds the user name a login attempt is logged and counted by.
const maxNameLen = 64

// Logins checked at once (bcrypt), and how long a login waits for its
// turn before it is told the gateway is busy.
const (
	loginSlots    = 2
	loginBusyWait = 3 * time.Second
)

type loginPage struct {
	Site  string
	Lang  i18n.Lang
	Langs []i18n.Lang
	Next  string
	User  string
	// Message is the id of the message shown above the button (with Wait
	// for login.too_many); rendered, the message itself.
	Message string
	Wait    time.Duration
}

func (s *Server) loginRoutes() {
	s.handle("GET /login", http.HandlerFunc(s.loginForm))
	s.handle("POST /login", http.HandlerFunc(s.login))
	s.handle("POST /logout", http.HandlerFunc(s.logout))
	s.handle("GET /api/v1/session", http.HandlerFunc(s.apiSession))
}

// safeNext returns where to go after the login: a path on this gateway,
// never another site ("//evil.example", "/\evil.example").
func safeNext(next string) string {
	// Browsers drop tabs and newlines from URLs and read "\" as "/":
	// "/\t/evil.example" would become "//evil.example", another site.
	for _, c := range []byte(next) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	msg := ""
	if len(s.users) == 0 {
		msg = "login.no_users"
	}
	// The login page switches language by a link (?lang=): nobody is
	// logged in yet to send a form's CSRF token, and a language is no
	// change to guard.
	if lang, ok := i18n.ParseLang(r.URL.Query().Get("lang")); ok {
		s.rememberLang(w, r, lang)
		// This answer is in it already: the request's own cookie still
		// names the choice before, which outranks any Accept-Language.
		cookies := r.Cookies()
		r.Header.Del("Cookie")
		for _, c := range cookies {
			if c.Name != i18n.CookieName {
				r.AddCookie(c)
			}
		}
		r.AddCookie(&http.Cookie{Name: i18n.CookieName, Value: string(lang)})
	}
	s.renderLogin(w, r, http.StatusOK, loginPage{Next: safeNext(r.URL.Query().Get("next")), Message: msg})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, d loginPage) {
	d.Site, d.Lang, d.Langs = s.src.Status().Site, s.langOf(r), i18n.Langs()
	if d.Message != "" {
		d.Message = i18n.New(d.Lang, s.loc).T(d.Message, "wait", d.Wait)
	}
	var page bytes.Buffer
	if err := s.loginPages[d.Lang].Execute(&page, d); err != nil {
		s.log.Error().Err(err).Msg("render login page")
		writeError(w, http.StatusInternalServerError, "the login page could not be rendered; see the gateway's log")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if _, err := w.Write(page.Bytes()); err != nil {
		s.log.Debug().Err(err).Str("client", r.RemoteAddr).Msg("login page not delivered: the client went away")
	}
}

// login checks a user name and password against http.users. A wrong one
// waits (loginDelay), is logged, stored as a login_failed event and
// audited, and counts towards the limits of its address and its name;
// past them every attempt is refused with 429 before the password is
// looked at. The answer never tells a wrong name from a wrong password.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	addr := clientAddress(r)
	wait, release := s.throttle.begin(addr, name, s.now())
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.log.Debug().Str("client", addr).Str("user", name).Msg("login refused: too many failures")
		s.renderLogin(w, r, http.StatusTooManyRequests, loginPage{Next: next, User: name,
			Message: "login.too_many", Wait: time.Duration(secs) * time.Second})
		return
	}
	// bcrypt takes both cores' worth of time under a flood of logins: a
	// few at once, the others told to come back, so that polling and
	// billing keep their CPU.
	select {
	case s.bcryptSlots <- struct{}{}:
	case <-time.After(loginBusyWait):
		release(attemptAbandoned)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many logins at once; try again in a few seconds")
		return
	case <-r.Context().Done():
		release(attemptAbandoned)
		return
	}
	u, ok := s.checkPassword(name, password)
	<-s.bcryptSlots
	if !ok {
		release(attemptFailed)
		s.loginFailed(r, addr, name)
		select { // slowed, unless the client has gone
		case <-time.After(s.loginDelay):
		case <-r.Context().Done():
			return
		}
		s.renderLogin(w, r, http.StatusUnauthorized, loginPage{Next: next, User: name, Message: "login.failed"})
		return
	}
	release(attemptSucceeded)
	sess, err := s.sessions.start(u, s.now())
	if err != nil {
		s.log.Error().Err(err).Msg("login")
		writeError(w, http.StatusInternalServerError, "internal error; see the gateway's log")
		return
	}
	setSessionCookie(w, r, sess.id, 0)
	s.log.Info().Str("client", addr).Str("user", u.Name).Str("role", u.Role).Msg("logged in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// checkPassword returns the user name and password match. Every user is
// looked at and bcrypt runs once whatever the name, so the time taken
// does not tell whether the name exists.
func (s *Server) checkPassword(name, password string) (User, bool) {
	var found *User
	for i := range s.users {
		if subtle.ConstantTimeCompare([]byte(s.users[i].Name), []byte(name)) == 1 {
			found = &s.users[i]
		}
	}
	hash := s.dummyHash()
	if found != nil {
		hash = []byte(found.PasswordHash)
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if found == nil || err != nil || name == "" {
		return User{}, false
	}
	return *found, true
}

// dummyHash is a hash of a random password at the users' cost, compared
// against for a name that is no user's.
func (s *Server) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		cost := bcrypt.DefaultCost
		if len(s.users) > 0 {
			if c, err := bcrypt.Cost([]byte(s.users[0].PasswordHash)); err == nil {
				cost = c
			}
		}
		h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
		if err != nil { // only for a cost out of range, which validation refuses
			h = []byte("$2a$10$" + strings.Repeat(".", 53))
		}
		s.dummy = h
	})
	return s.dummy
}

// loginFailed logs, counts, stores and audits one failed login.
func (s *Server) loginFailed(r *http.Request, addr, name string) {
	now := s.now()
	s.log.Warn().Str("client", addr).Str("user", name).Msg("login failed: wrong user name or password")
	if s.recorder != nil {
		stored, err := s.recorder.PostEvents(store.Event{Time: now, Kind: "login_failed",
			Text: "Failed login as " + strconv.Quote(name) + " from " + addr + ".", Args: map[string]string{"user": name, "address": addr}})
		if err != nil {
			s.log.Error().Err(err).Msg("store the login_failed event")
		} else if s.publisher != nil {
			s.publisher.Publish(stored)
		}
	}
	if s.auditor != nil {
		// The name tried is not who tried it: kept as the target, so that
		// a filter on an actor ("user:admin") never shows another's guess.
		rec := AuditRecord{Time: now, Actor: "login:" + addr, Target: name, Address: addr, Action: "login_failed",
			Outcome: "401 wrong user name or password"}
		if err := s.auditor.Record(rec); err != nil {
			s.log.Error().Err(err).Str("user", name).Msg("audit record of a failed login not kept")
		}
	}
}

// logout ends the session and sends the browser to the login page.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if p := principalOf(r); p.sess != nil {
		s.sessions.end(p.sess.id)
		s.log.Info().Str("client", clientAddress(r)).Str("user", p.sess.user).Msg("logged out")
	}
	setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// SessionView is GET /api/v1/session: who is asking, and the CSRF token
// the pages send with every change (empty for a token).
type SessionView struct {
	Actor string `json:"actor"`
	Role  string `json:"role"`
	CSRF  string `json:"csrf,omitempty"`
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	v := SessionView{Actor: p.Actor, Role: p.Role}
	if p.sess != nil {
		v.CSRF = p.sess.csrf
	}
	writeJSON(w, http.StatusOK, v)
}

// parseLogin parses the login page once per language.
func parseLogin(loc *time.Location) (map[i18n.Lang]*template.Template, error) {
	out := map[i18n.Lang]*template.Template{}
	for _, lang := range i18n.Langs() {
		t, err := template.New("login.html").Funcs(i18n.New(lang, loc).Funcs()).ParseFS(assets, "assets/login.html")
		if err != nil {
			return nil, err
		}
		out[lang] = t
	}
	return out, nil
}
