package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"mallgrid/gateway/i18n"
)

// Statements is what the tenants' statement endpoints read; the gateway
// implements it over the store (gateway/report). Errors: ErrNotFound for
// a tenant, month or link that names nothing, ErrInvalid for a month that
// has not begun, ErrLinkExpired for a link past its time.
type Statements interface {
	// List returns tenant's issued statements, newest first, each with a
	// signed link the tenant can open without a login.
	List(tenant string) ([]StatementInfo, error)
	// Statement returns tenant's statement of month (YYYY-MM) as format
	// "html" or "pdf" in lang: the issued one, or for a month not issued
	// yet the figures as they stand.
	Statement(tenant, month, format string, lang i18n.Lang) (Document, error)
	// Shared returns the issued statement a signed link's token names,
	// and only that one.
	Shared(token, format string, lang i18n.Lang) (Document, error)
}

// ErrLinkExpired is returned for a signed link whose time is up: it was
// genuine, so the answer says so (403), unlike a link that was altered.
var ErrLinkExpired = errors.New("the link has expired")

// Document is a rendered statement.
type Document struct {
	Body        []byte
	ContentType string
	// CSP replaces the gateway's Content-Security-Policy for the document
	// (a statement's page carries its own style sheet); "" keeps it.
	CSP      string
	Filename string // for Content-Disposition
}

// StatementInfo is one line of GET /api/v1/accounts/{tenant}/statements.
type StatementInfo struct {
	Month     string    `json:"month"` // YYYY-MM
	Generated time.Time `json:"generated"`
	Opening   string    `json:"opening"` // decimal amounts
	Closing   string    `json:"closing"`
	// HTML and PDF are the staff's URLs of the statement.
	HTML string `json:"html"`
	PDF  string `json:"pdf"`
	// Link is the tenant's read-only link (a path on this gateway), valid
	// until LinkExpires.
	Link        string    `json:"link"`
	LinkExpires time.Time `json:"link_expires"`
}

// statementTypes are the statement's formats and their media types.
var statementTypes = map[string]string{
	"html": "text/html; charset=utf-8",
	"pdf":  "application/pdf",
}

// pdfRenders bounds the statement PDFs drawn at once, over the staff's
// routes and the tenants' links together: one takes some 30-50 ms of a
// core and 28 MB (the embedded Chinese font is read for each), and a
// link needs no login. A PDF asked for while pdfRenders are drawn is
// refused at once with 503 and Retry-After, not queued (a waiting request
// holds a connection and its memory to come).
const pdfRenders = 2

// pdfRetryAfter is the Retry-After (seconds) of a PDF refused as busy.
const pdfRetryAfter = "2"

func (s *Server) statementRoutes(st Statements) {
	drawing := make(chan struct{}, pdfRenders)
	// busy takes a drawing token for a PDF (true: go on, and call done);
	// when all are taken it answers 503 with Retry-After.
	busy := func(w http.ResponseWriter, format string, refuse func()) (done func(), ok bool) {
		if format != "pdf" {
			return func() {}, true
		}
		select {
		case drawing <- struct{}{}:
			return func() { <-drawing }, true
		default:
			w.Header().Set("Retry-After", pdfRetryAfter)
			refuse()
			return nil, false
		}
	}
	s.handle("GET /api/v1/accounts/{tenant}/statements", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		list, err := st.List(r.PathValue("tenant"))
		if err != nil {
			s.fail(w, err)
			return
		}
		if list == nil {
			list = []StatementInfo{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tenant": r.PathValue("tenant"), "statements": list})
	}))
	s.handle("GET /api/v1/accounts/{tenant}/statements/{month}", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		month := r.PathValue("month")
		if t, err := time.Parse("2006-01", month); err != nil || t.Format("2006-01") != month {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("month %q: want YYYY-MM, like 2026-11", month))
			return
		}
		format, lang, ok := s.statementQuery(w, r)
		if !ok {
			return
		}
		done, ok := busy(w, format, func() {
			writeError(w, http.StatusServiceUnavailable, "other statement PDFs are being drawn: try again in a few seconds")
		})
		if !ok {
			return
		}
		// Released however drawing ends: a panic (net/http recovers it)
		// must not keep a slot for ever.
		doc, err := func() (Document, error) {
			defer done()
			return st.Statement(r.PathValue("tenant"), month, format, lang)
		}()
		if err != nil {
			s.fail(w, err)
			return
		}
		writeDocument(w, doc)
	}))
	// The tenant's link: no login, the token is the permission. It answers
	// a reason page, never JSON: a tenant opens it in a browser.
	s.handle("GET /s/{token}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format, lang, ok := s.statementQuery(w, r)
		if !ok {
			return
		}
		done, ok := busy(w, format, func() { s.linkPage(w, http.StatusServiceUnavailable, lang, "statement.link.busy") })
		if !ok {
			return
		}
		doc, err := func() (Document, error) { defer done(); return st.Shared(r.PathValue("token"), format, lang) }()
		switch {
		case err == nil:
			w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the URL
			writeDocument(w, doc)
		case errors.Is(err, ErrLinkExpired):
			s.linkPage(w, http.StatusForbidden, lang, "statement.link.expired")
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid):
			s.linkPage(w, http.StatusNotFound, lang, "statement.link.invalid")
		default:
			s.log.Error().Err(err).Msg("statement link")
			s.linkPage(w, http.StatusInternalServerError, lang, "statement.link.missing")
		}
	}))
}

// statementQuery reads ?format=html|pdf (html by default) and
// ?lang=en|zh-CN (the reader's language by default).
func (s *Server) statementQuery(w http.ResponseWriter, r *http.Request) (format string, lang i18n.Lang, ok bool) {
	q := r.URL.Query()
	format = q.Get("format")
	if format == "" {
		format = "html"
	}
	if _, known := statementTypes[format]; !known {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want html or pdf", format))
		return "", "", false
	}
	lang = s.langOf(r)
	if v := q.Get("lang"); v != "" {
		l, known := i18n.ParseLang(v)
		if !known {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("lang %q: want en or zh-CN", v))
			return "", "", false
		}
		lang = l
	}
	return format, lang, true
}

func writeDocument(w http.ResponseWriter, doc Document) {
	h := w.Header()
	if doc.CSP != "" {
		h.Set("Content-Security-Policy", doc.CSP)
	}
	h.Set("Content-Type", doc.ContentType)
	if doc.Filename != "" {
		h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s"`, doc.Filename))
	}
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc.Body) // a client gone away is not the gateway's failure
}

// linkPageHTML is the page a tenant sees for a link that does not open.
var linkPageHTML = template.Must(template.New("link").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Reason}}</p></body></html>
`))

func (s *Server) linkPage(w http.ResponseWriter, code int, lang i18n.Lang, reason string) {
	l := i18n.New(lang, s.loc)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	_ = linkPageHTML.Execute(w, map[string]string{"Lang": string(l.Lang()), "Title": l.T("statement.link.title"), "Reason": l.T(reason)})
}
