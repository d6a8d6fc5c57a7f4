package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

//go:embed assets
var assets embed.FS

// Server is the control room's HTTP server.
type Server struct {
	src      Source
	ledger   Ledger
	operator Operator
	relayer  Relayer
	events   Events
	db       Health
	buses    Buses
	closing  chan struct{} // closed when shutdown begins: ends event streams
	tokens   []Token
	log      zerolog.Logger
	page     *template.Template
	mux      *http.ServeMux
}

// Options are the Server's parts besides its Source.
type Options struct {
	Ledger   Ledger   // nil: no account endpoints
	Operator Operator // nil: no release and exchange endpoints
	Events   Events   // nil: no event stream
	Relayer  Relayer  // nil: no relay override
	Tokens   []Token  // who may change things through the API
	DB       Health   // nil: /healthz does not ask the database
	Buses    Buses    // nil: /healthz does not look at the buses
	Log      zerolog.Logger
}

// New returns a Server reading from src.
func New(src Source, o Options) (*Server, error) {
	log := o.Log
	page, err := template.New("status.html").Funcs(template.FuncMap{
		"fmtValue":  formatValue,
		"ago":       ago,
		"errorList": errorList,
	}).ParseFS(assets, "assets/status.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	s := &Server{src: src, ledger: o.Ledger, operator: o.Operator, relayer: o.Relayer, events: o.Events, tokens: o.Tokens, db: o.DB, buses: o.Buses, log: log, page: page,
		mux: http.NewServeMux(), closing: make(chan struct{})}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.statusPage)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /api/v1/status", s.apiStatus)
	s.mux.HandleFunc("GET /api/v1/meters", s.apiMeters)
	s.mux.HandleFunc("GET /api/v1/meters/{id}", s.apiMeter)
	if s.ledger != nil {
		s.ledgerRoutes()
	}
	if s.operator != nil {
		s.operatorRoutes()
	}
	if s.events != nil {
		s.mux.HandleFunc("GET /api/v1/events", s.read(s.apiEvents))
	}
	if s.relayer != nil {
		s.relayRoutes()
	}
	return s, nil
}

// Handler returns the server's routes, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers on ln until ctx is cancelled, then shuts down, giving open
// requests (an SSE stream, a slow client) at most a second.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	// Shutdown waits for open requests; event streams never end by
	// themselves, so they are told to.
	var closeOnce sync.Once
	srv.RegisterOnShutdown(func() { closeOnce.Do(func() { close(s.closing) }) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}

type pageData struct {
	Status   StatusView
	Meters   []MeterView
	Accounts []AccountView // most urgent first
	Events   []EventView   // newest first
	LastID   uint64        // the newest event's id: the page's stream starts after it
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := pageData{Status: s.src.Status(), Meters: s.src.Meters()}
	if s.ledger != nil {
		accts, err := s.ledger.Accounts()
		if err != nil {
			s.log.Error().Err(err).Msg("read accounts for the status page")
		}
		data.Accounts = byUrgency(accts)
	}
	if s.events != nil {
		evs, err := s.events.Last(20)
		if err != nil {
			s.log.Error().Err(err).Msg("read events for the status page")
		}
		if n := len(evs); n > 0 {
			data.LastID = evs[n-1].ID
		}
		for i := len(evs) - 1; i >= 0; i-- { // newest on top, as the stream adds them
			data.Events = append(data.Events, evs[i])
		}
	}
	// Rendered whole before a byte is sent: a template error is a fault of
	// the gateway's (logged as one, answered 500); a failed write is only a
	// client that went away (a closed tab), which is no error.
	var page bytes.Buffer
	if err := s.page.Execute(&page, data); err != nil {
		s.log.Error().Err(err).Msg("render status page")
		writeError(w, http.StatusInternalServerError, "the status page could not be rendered; see the gateway's log")
		return
	}
	if _, err := w.Write(page.Bytes()); err != nil {
		s.log.Debug().Err(err).Str("client", r.RemoteAddr).Msg("status page not delivered: the client went away")
	}
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.src.Status())
}

func (s *Server) apiMeters(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.src.Meters())
}

func (s *Server) apiMeter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, m := range s.src.Meters() {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no meter %q", id))
}

// writeJSON encodes v before writing anything, so a value that cannot be
// encoded becomes a 500 with a reason instead of a 200 with half a body.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n')) // a write error means the client left
}

// writeError is every API error: a status and a reason a person can act on.
func writeError(w http.ResponseWriter, code int, reason string) {
	writeJSON(w, code, map[string]string{"error": reason})
}

func formatValue(m MeterView, q string) string {
	v, ok := m.Values[q]
	if !ok {
		return "—"
	}
	switch v.Unit {
	case "":
		return fmt.Sprintf("%.3f", v.Value)
	case "Hz":
		return fmt.Sprintf("%.2f", v.Value)
	case "W":
		return fmt.Sprintf("%.0f", v.Value)
	}
	return fmt.Sprintf("%.1f", v.Value)
}

// errorList writes errors by kind as "crc 2, timeout 5", sorted by kind.
func errorList(errs map[string]int64) string {
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, errs[k])
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

func ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

// urgency orders account states: the ones the control room must look at
// first come first.
var urgency = map[string]int{
	"cut_off": 0, "exhausted": 1, "overdraft": 2, "warning_2": 3, "warning_1": 4, "normal": 5,
}

// byUrgency sorts accounts: cut off, then about to be cut (earliest cut-off
// first), then in overdraft and warnings, then the rest by tenant.
func byUrgency(accts []AccountView) []AccountView {
	out := append([]AccountView(nil), accts...)
	rank := func(a AccountView) int {
		if r, ok := urgency[a.State]; ok {
			return r
		}
		return len(urgency)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if (a.PendingCutOff != nil) != (b.PendingCutOff != nil) {
			return a.PendingCutOff != nil
		}
		if a.PendingCutOff != nil && !a.PendingCutOff.Equal(*b.PendingCutOff) {
			return a.PendingCutOff.Before(*b.PendingCutOff)
		}
		return a.Tenant < b.Tenant
	})
	return out
}
