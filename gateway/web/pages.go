package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"mallgrid/gateway/i18n"
	"mallgrid/store"
)

// The control room's pages are server-rendered (html/template) in the
// reader's language, each complete without a script; app.js adds the live
// updates (server-sent events), the charts and the forms that change
// something (which send the session's CSRF token). Nothing is loaded from
// outside the gateway: the control room works with no internet.

// pageNames are the templates under assets/pages besides the layout, one
// per page.
var pageNames = []string{"dashboard", "meters", "meter", "tenants", "tenant", "receipt", "alarms", "events", "audit", "notifications", "finance", "paycodes"}

// pageSet holds every page's template in every language: the template
// functions (words, money, times) are bound to a Localizer, so each
// language has its own parse.
type pageSet map[i18n.Lang]map[string]*template.Template

// parsePages parses the layout with each page, once per language.
func parsePages(loc *time.Location) (pageSet, error) {
	set := pageSet{}
	for _, lang := range i18n.Langs() {
		l := i18n.New(lang, loc)
		set[lang] = map[string]*template.Template{}
		for _, name := range pageNames {
			t, err := template.New(name).Funcs(l.Funcs()).Funcs(pageFuncs).Funcs(template.FuncMap{
				"pollErrors": func(errs map[string]int64) string { return pollErrors(l, errs) },
			}).
				ParseFS(assets, "assets/pages/layout.html", "assets/pages/"+name+".html")
			if err != nil {
				return nil, fmt.Errorf("page %s (%s): %w", name, lang, err)
			}
			set[lang][name] = t
		}
	}
	return set, nil
}

// pageFuncs are the template functions that do not depend on the language.
var pageFuncs = template.FuncMap{
	"fmtValue":  formatValue,
	"receiptNo": receiptNo,
	"daysLeft":  daysLeft,
	"has":       func(m map[string]bool, k string) bool { return m[k] },
	// pathEscape writes an id as one segment of a link's path: a tenant
	// named "A#3" or "B1/02" must not link to another page.
	"pathEscape": url.PathEscape,
}

// pollErrors writes errors by kind in l's words, sorted by kind: "CRC
// error 2, no answer 5".
func pollErrors(l i18n.Localizer, errs map[string]int64) string {
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %s", l.PollError(k), l.Number(errs[k]))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// receiptNo is the number the receipt of a top-up credited before receipts
// were numbered was printed with: its entry id. Numbered top-ups carry
// their own (EntryView.Receipt), from a sequence above every such id.
func receiptNo(id uint64) string { return store.ReceiptNumber(id) }

// daysLeft writes a credit time in days with one decimal ("3.5"), or ""
// when it is not known (no recent consumption).
func daysLeft(secs *int64) string {
	if secs == nil {
		return ""
	}
	tenths := *secs * 10 / 86400
	return fmt.Sprintf("%d.%d", tenths/10, tenths%10)
}

// pageView is what every page's layout shows; Data is the page's own.
type pageView struct {
	Name     string // the template: dashboard, meters, …
	Title    string // the page's heading (already in the reader's language)
	Lang     i18n.Lang
	Langs    []i18n.Lang
	Site     string
	Timezone string
	Zone     string // "UTC+08:00"
	Now      time.Time
	Version  string
	User     string // "" for a token
	Role     string
	CSRF     string
	Path     string // the page's own URL, for the language switch to come back to
	Charts   bool   // load the charting library
	// Script is the page's own script under /static, loaded after app.js;
	// "" for none.
	Script string
	// Can says which actions the reader's role may take, by name: the
	// page shows only those forms (the server refuses the others anyway).
	Can map[string]bool
	// LastEvent is the newest event's id: the page's event stream starts
	// after it, so that nothing older is shown (or sounded) as new.
	LastEvent uint64
	// Nav says which parts the gateway serves (alarms, tenants, events,
	// audit), for the menu.
	Nav  map[string]bool
	Data any
}

// actions maps what a page offers to the endpoint that does it: a form is
// shown to a role exactly when the endpoint's access rule allows it.
var actions = map[string]string{
	"topup":    "POST /api/v1/accounts/{tenant}/topups",
	"protect":  "POST /api/v1/accounts/{tenant}/protection",
	"reverse":  "POST /api/v1/accounts/{tenant}/reversals",
	"adjust":   "POST /api/v1/accounts/{tenant}/adjustments",
	"override": "POST /api/v1/meters/{id}/relay",
	"ack":      "POST /api/v1/alarms/{id}/ack",
	"resend":   "POST /api/v1/notifications/{id}/resend",
	"audit":    "GET /api/v1/audit",
	// statements: the tenant page lists the tenant's statements.
	"statements": "GET /api/v1/accounts/{tenant}/statements",
	"finance":    "GET /finance",
	"paycodes":   "GET /paycodes",
}

// pageScripts are the pages with a script of their own, beside app.js.
var pageScripts = map[string]string{"finance": "finance.js"}

// wordsJSON caches each language's catalog as JSON.
var wordsJSON sync.Map // i18n.Lang → string

func words(lang i18n.Lang) string {
	if v, ok := wordsJSON.Load(lang); ok {
		return v.(string)
	}
	b, _ := json.Marshal(i18n.New(lang, time.UTC).Messages()) // a map of strings: cannot fail
	wordsJSON.Store(lang, string(b))
	return string(b)
}

// wordsScript is GET /words/{file}: the catalog of a language as a
// script ("zh-CN.js" sets window.mallgridWords), for app.js to write live
// rows, toasts and charts in the page's language. Loaded by every page
// beside app.js rather than inside it: compressed, and cached by the
// browser (its URL carries the gateway's version), where the pages
// themselves are neither (they carry the session's CSRF token).
func (s *Server) wordsScript(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".js")
	lang, known := i18n.ParseLang(name)
	if !ok || !known || string(lang) != name {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = io.WriteString(w, "window.mallgridWords = "+words(lang)+";\n") // a write error means the client left
}

// langOf is the reader's language: the logged-in user's choice, else the
// browser's remembered choice (the cookie), else its Accept-Language.
func (s *Server) langOf(r *http.Request) i18n.Lang {
	// A logged-in user's own choice wins over the browser's cookie: on a
	// control-room PC shared by shifts, the cookie is the last person's.
	if p := principalOf(r); p.sess != nil {
		if lang, ok := i18n.ParseLang(s.prefs.UserLang(p.sess.user)); ok {
			return lang
		}
	}
	cookie := ""
	if c, err := r.Cookie(i18n.CookieName); err == nil {
		cookie = c.Value
	}
	return i18n.Negotiate(r.Header.Get("Accept-Language"), cookie)
}

// localizer is the reader's Localizer.
func (s *Server) localizer(r *http.Request) i18n.Localizer {
	return i18n.New(s.langOf(r), s.loc)
}

// render writes page name with data, rendered whole before a byte is
// sent: a template error is the gateway's fault (500, logged), a failed
// write only a client that went away.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name, titleID string, data any) {
	lang := s.langOf(r)
	l := i18n.New(lang, s.loc)
	st := s.src.Status()
	p := principalOf(r)
	v := pageView{Name: name, Title: l.T(titleID), Lang: lang, Langs: i18n.Langs(), Site: st.Site, Timezone: st.Timezone,
		Zone: l.Zone(st.Now), Now: st.Now, Version: st.Version, Role: p.Role, Path: r.URL.RequestURI(),
		Charts: name == "meter" || name == "tenant", Script: pageScripts[name], Can: map[string]bool{}, Data: data}
	if p.sess != nil {
		v.User, v.CSRF = p.sess.user, p.sess.csrf
	} else {
		v.User = p.Actor
	}
	if _, last := s.lastEvents(1); last > 0 {
		v.LastEvent = last
	}
	for action, pattern := range actions {
		if _, registered := s.rules[pattern]; registered && s.routeRegistered(pattern) && s.rules[pattern].allows(p.Role) {
			v.Can[action] = true
		}
	}
	v.Nav = map[string]bool{"alarms": s.routeRegistered("GET /alarms"), "tenants": s.routeRegistered("GET /tenants"),
		"events": s.events != nil, "audit": v.Can["audit"], "notifications": s.routeRegistered("GET /notifications"),
		"finance": v.Can["finance"], "paycodes": v.Can["paycodes"]}
	var page bytes.Buffer
	if err := s.pages[lang][name].ExecuteTemplate(&page, "layout", v); err != nil {
		s.log.Error().Err(err).Str("page", name).Msg("render page")
		writeError(w, http.StatusInternalServerError, "the page could not be rendered; see the gateway's log")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", string(lang))
	if _, err := w.Write(page.Bytes()); err != nil {
		s.log.Debug().Err(err).Str("client", r.RemoteAddr).Msg("page not delivered: the client went away")
	}
}

// routeRegistered reports whether an endpoint is served (its part of the
// gateway is configured).
func (s *Server) routeRegistered(pattern string) bool {
	for _, p := range s.routes {
		if p == pattern {
			return true
		}
	}
	return false
}

// notFoundPage answers a page for something that does not exist.
func (s *Server) notFoundPage(w http.ResponseWriter, r *http.Request, what string) {
	l := s.localizer(r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintln(w, l.T("page.not_found", "what", what))
}

// setLang is POST /lang (form field lang, next): the choice is kept in a
// cookie for a year and for the user (Prefs, in the database), so that
// another browser of the same user opens in it too.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	lang, ok := i18n.ParseLang(r.PostFormValue("lang"))
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("lang %q: want one of %s", r.PostFormValue("lang"), langList()))
		return
	}
	s.rememberLang(w, r, lang)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// rememberLang sets the language cookie and the session user's choice.
func (s *Server) rememberLang(w http.ResponseWriter, r *http.Request, lang i18n.Lang) {
	http.SetCookie(w, &http.Cookie{Name: i18n.CookieName, Value: string(lang), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	if p := principalOf(r); p.sess != nil {
		if err := s.prefs.SetUserLang(p.sess.user, string(lang)); err != nil {
			// The cookie still remembers it on this browser.
			s.log.Warn().Err(err).Str("user", p.sess.user).Msg("the user's language not stored")
		}
	}
}

// Prefs keeps each user's own choices (their language) across browsers
// and restarts; the gateway implements it over the database.
type Prefs interface {
	UserLang(user string) string // "" when the user chose none
	SetUserLang(user, lang string) error
}

// memPrefs keeps the choices in memory, when Options give no Prefs.
type memPrefs struct{ m sync.Map }

func (p *memPrefs) UserLang(user string) string {
	if v, ok := p.m.Load(user); ok {
		return v.(string)
	}
	return ""
}

func (p *memPrefs) SetUserLang(user, lang string) error {
	p.m.Store(user, lang)
	return nil
}

func langList() string {
	var names []string
	for _, l := range i18n.Langs() {
		names = append(names, string(l))
	}
	return strings.Join(names, ", ")
}

// checkPageTemplates proves every {{t "id"}} of the pages names a message.
func checkPageTemplates() error {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return err
	}
	var files []string
	for _, n := range append([]string{"layout"}, pageNames...) {
		files = append(files, path.Join("pages", n+".html"))
	}
	files = append(files, "login.html")
	return i18n.CheckTemplates(sub, files...)
}
