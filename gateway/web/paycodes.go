package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Paycodes is what the admin's QR sticker page and its API read:
// gateway/paycode implements it from the configuration. Errors:
// ErrNotFound for a tenant the configuration does not hold, ErrInvalid
// for a format not drawn.
type Paycodes interface {
	// Tenants lists every tenant with its sticker's link.
	Tenants() []PaycodeTenant
	// Code returns tenant's QR code alone as format "png" or "svg".
	Code(tenant, format string) (Document, error)
	// Sheet returns the A4 sticker sheet of tenants (every tenant when
	// none is named) as format "pdf" or "svg".
	Sheet(tenants []string, format string) (Document, error)
}

// PaycodeTenant is one tenant on the QR sticker page.
type PaycodeTenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Link string `json:"link"` // the signed payment page's URL the code holds
}

// paycodeRow is a tenant on the QR sticker page.
type paycodeRow struct {
	PaycodeTenant
	// Seg is the id as a path segment of the page's links: "." and ".."
	// escaped too (url.PathEscape leaves them), which a browser would
	// otherwise drop as dot segments.
	Seg string
}

// pathSegment escapes s for one path segment, dot segments included.
func pathSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// paycodesView is the QR sticker page.
type paycodesView struct {
	Query   string // the filter as typed
	Tenants []paycodeRow
	Total   int // tenants before the filter
	// SheetPDF and SheetSVG are the listed tenants' sheet (every
	// tenant's when there is no filter).
	SheetPDF, SheetSVG string
}

// sheetParams are the query parameters of the sheet; any other is refused.
var sheetParams = []string{"format", "tenant"}

func (s *Server) paycodeRoutes(pc Paycodes) {
	// One sheet drawn at a time: a PDF reads the embedded Chinese font
	// afresh (some 28 MB and 30-50 ms); another is refused at once.
	drawing := make(chan struct{}, 1)
	s.handle("GET /paycodes", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query string: %v", err))
			return
		}
		q := strings.TrimSpace(query.Get("q"))
		all := pc.Tenants()
		v := paycodesView{Query: q, Total: len(all), Tenants: []paycodeRow{}}
		var ids string
		for _, t := range all {
			if q == "" || strings.Contains(strings.ToLower(t.ID+" "+t.Name), strings.ToLower(q)) {
				v.Tenants = append(v.Tenants, paycodeRow{PaycodeTenant: t, Seg: pathSegment(t.ID)})
				ids += "&tenant=" + url.QueryEscape(t.ID)
			}
		}
		if q == "" {
			ids = ""
		}
		v.SheetPDF, v.SheetSVG = "/api/v1/paycodes/sheet?format=pdf"+ids, "/api/v1/paycodes/sheet?format=svg"+ids
		s.render(w, r, "paycodes", "paycodes.title", v)
	}))
	s.handle("GET /api/v1/paycodes/sheet", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// r.URL.Query drops what it cannot parse: "tenant=A;tenant=B"
		// would be the whole sheet rather than the two stickers asked for.
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query string: %v", err))
			return
		}
		for k, vals := range v {
			if !slices.Contains(sheetParams, k) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q; the sheet takes format and tenant (repeated)", k))
				return
			}
			if k == "format" && len(vals) > 1 {
				writeError(w, http.StatusBadRequest, "parameter format given more than once; give it once")
				return
			}
		}
		format := or(v.Get("format"), "pdf")
		if format != "pdf" && format != "svg" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want pdf or svg", format))
			return
		}
		tenants, reason := sheetTenants(v["tenant"], pc.Tenants())
		if reason != "" {
			writeError(w, http.StatusBadRequest, reason)
			return
		}
		select {
		case drawing <- struct{}{}:
		default:
			w.Header().Set("Retry-After", pdfRetryAfter)
			writeError(w, http.StatusServiceUnavailable, "another sticker sheet is being drawn: try again in a few seconds")
			return
		}
		doc, err := func() (Document, error) {
			defer func() { <-drawing }() // however drawing ends
			return pc.Sheet(tenants, format)
		}()
		if err != nil {
			s.fail(w, err)
			return
		}
		writeDownload(w, doc)
	}))
	for _, format := range []string{"png", "svg"} {
		s.handle("GET /api/v1/accounts/{tenant}/paycode."+format, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			doc, err := pc.Code(r.PathValue("tenant"), format)
			if err != nil {
				s.fail(w, err)
				return
			}
			writeDocument(w, doc)
		}))
	}
}

// sheetTenants is the sheet's tenants as asked, each once in the order
// first named, or the reason of a 400: more names than there are tenants
// (9,999 × one tenant was a 766 MB, 15 s PDF), or names of no tenant —
// every sticker is drawn before the sheet is written, so the request is
// checked in full first.
func sheetTenants(asked []string, all []PaycodeTenant) ([]string, string) {
	if len(asked) > len(all) {
		return nil, fmt.Sprintf("%d tenants asked for; there are %d: name each tenant once", len(asked), len(all))
	}
	known := make(map[string]bool, len(all))
	for _, t := range all {
		known[t.ID] = true
	}
	seen := make(map[string]bool, len(asked))
	var out, unknown []string
	for _, id := range asked {
		switch {
		case seen[id]:
		case !known[id]:
			unknown = append(unknown, strconv.Quote(id))
		default:
			out = append(out, id)
		}
		seen[id] = true
	}
	if len(unknown) > 0 {
		const most = 10 // the reason names a few; the count says the rest
		more := ""
		if len(unknown) > most {
			more, unknown = fmt.Sprintf(" and %d more", len(unknown)-most), unknown[:most]
		}
		return nil, fmt.Sprintf("unknown tenants %s%s", strings.Join(unknown, ", "), more)
	}
	return out, ""
}

// writeDownload writes doc as a file to save rather than show.
func writeDownload(w http.ResponseWriter, doc Document) {
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, doc.Filename))
	h := w.Header()
	h.Set("Content-Type", doc.ContentType)
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc.Body) // a client gone away is not the gateway's failure
}
