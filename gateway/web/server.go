package web

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/i18n"
	"mallgrid/store"
)

//go:embed assets
var assets embed.FS

// Server is the control room's HTTP server.
type Server struct {
	src        Source
	ledger     Ledger
	operator   Operator
	relayer    Relayer
	events     Events
	db         Health
	buses      Buses
	closing    chan struct{} // closed when shutdown begins: ends event streams
	closeOnce  sync.Once     // closes closing: at Serve's shutdown or when a Front retires the server
	inflight   sync.WaitGroup
	tokens     []Token
	users      []User
	log        zerolog.Logger
	loginPages map[i18n.Lang]*template.Template
	mux        *http.ServeMux
	rules      map[string]rule
	routes     []string // the patterns registered through handle, in order
	now        func() time.Time

	sessions   *sessions
	throttle   *throttle
	loginDelay time.Duration
	// bcryptSlots holds one token per login being checked (loginSlots).
	bcryptSlots chan struct{}
	// previewing holds one token per allocation preview being computed:
	// a year's preview of a consumption rule reads every tenant meter's
	// quarter hours, on the box that polls the meters.
	previewing chan struct{}
	dummyOnce  sync.Once
	dummy      []byte // bcrypt hash compared against for an unknown user name

	alarms Alarms
	// notifications is the outbox; nil: no notification endpoints.
	notifications Notifications
	pages         pageSet
	loc           *time.Location // site.timezone: every page's times
	prefs         Prefs          // each user's language
	auditor       Auditor
	auditLog      AuditLog
	recorder      Recorder
	publisher     Publisher
	finance       financeParts // the finance page's reports and allocations, the tenant page's statements

	hosts      []string     // http.hosts
	listenHost string       // http.listen's host, lower case; "" when it listens on every interface
	listenAny  bool         // http.listen is on every interface
	port       atomic.Int32 // the port served on, once Serve runs; 0: any port
	tls        *tls.Config
}

// Options are the Server's parts besides its Source.
type Options struct {
	Ledger   Ledger   // nil: no account endpoints
	Operator Operator // nil: no release and exchange endpoints
	Events   Events   // nil: no event stream
	Relayer  Relayer  // nil: no relay override
	Tokens   []Token  // machines' bearer tokens
	Users    []User   // people's logins (POST /login)
	DB       Health   // nil: /healthz does not ask the database
	Buses    Buses    // nil: /healthz does not look at the buses
	Log      zerolog.Logger
	// Now is the clock of sessions, login limits and audit records; nil
	// means time.Now.
	Now func() time.Time
	// Listen is http.listen: its host (and localhost) is what requests may
	// name in their Host header, besides Hosts.
	Listen string
	Hosts  []string // http.hosts
	// SessionIdle ends a login after so long without a request; 0 means
	// 30 minutes.
	SessionIdle time.Duration
	// LoginDelay is how long a wrong password waits for its answer; 0
	// means a second.
	LoginDelay time.Duration
	// TLS, if set, makes Serve serve HTTPS with it.
	TLS      *tls.Config
	Auditor  Auditor  // nil: no audit records
	AuditLog AuditLog // nil: no audit view (GET /api/v1/audit)
	History  History  // nil: no history endpoints (charts)
	Alarms   Alarms   // nil: no alarm endpoints
	// Notifications, if set, serves the outbox's delivery status and
	// resends; nil: no notification endpoints.
	Notifications Notifications
	// Prefs keeps each user's language; nil: in memory, until a restart.
	Prefs Prefs
	// Location is site.timezone, the zone every page shows times in;
	// nil means UTC.
	Location  *time.Location
	Recorder  Recorder  // nil: failed logins are not stored as events
	Publisher Publisher // nil: stored login events are not streamed
	Reports   Reports   // nil: no report endpoints
	// Allocations, if set, serves the public-area allocation's preview,
	// postings and reversals; nil: no allocation endpoints.
	Allocations Allocations
	// Statements serves the tenants' monthly statements and their signed
	// links; nil: no statement endpoints.
	Statements Statements
	// Paycodes draws the tenants' QR payment stickers for the admin's
	// page; nil: no sticker page or endpoints (uplink.qr is not set).
	Paycodes Paycodes
	// Sessions are the logins, when they must outlive this Server (a
	// reloaded configuration's Server takes its predecessor's); nil: the
	// Server's own. SessionIdle applies to them from New on.
	Sessions *Sessions
	// Metrics serves GET /metrics (Prometheus's exposition) to a viewer
	// and higher roles; nil: no /metrics.
	Metrics http.Handler
}

// Recorder stores events and returns them with their ids; *store.DB
// implements it.
type Recorder interface {
	PostEvents(events ...store.Event) ([]store.Event, error)
}

// Publisher hands stored events to the live stream; the gateway's event
// hub implements it.
type Publisher interface {
	Publish(evs []store.Event)
}

// New returns a Server reading from src. It fails when a template does not
// parse or an endpoint has no access rule.
func New(src Source, o Options) (*Server, error) {
	log := o.Log
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	pages, err := parsePages(loc)
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	loginPages, err := parseLogin(loc)
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	delay := o.LoginDelay
	if delay <= 0 {
		delay = defaultLoginDelay
	}
	s := &Server{src: src, ledger: o.Ledger, operator: o.Operator, relayer: o.Relayer, events: o.Events, tokens: o.Tokens, db: o.DB, buses: o.Buses, log: log, pages: pages, loc: loc,
		mux: http.NewServeMux(), closing: make(chan struct{}), users: o.Users, loginPages: loginPages, rules: accessRules(), now: now,
		sessions: newSessions(o.SessionIdle), throttle: newThrottle(), loginDelay: delay, bcryptSlots: make(chan struct{}, loginSlots), previewing: make(chan struct{}, 1),
		alarms: o.Alarms, notifications: o.Notifications, auditor: o.Auditor, auditLog: o.AuditLog, recorder: o.Recorder, publisher: o.Publisher, hosts: o.Hosts, tls: o.TLS}
	if o.Sessions != nil {
		o.Sessions.ss.setIdle(o.SessionIdle)
		s.sessions = o.Sessions.ss
	}
	s.prefs = o.Prefs
	if s.prefs == nil {
		s.prefs = &memPrefs{}
	}
	if host, _, err := net.SplitHostPort(o.Listen); err == nil {
		ip := net.ParseIP(host)
		s.listenAny = host == "" || ip != nil && ip.IsUnspecified()
		if !s.listenAny {
			s.listenHost = strings.ToLower(strings.Trim(host, "[]"))
		}
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	s.handle("GET /static/", noListing(http.StripPrefix("/static/", http.FileServerFS(static))))
	s.handle("GET /healthz", http.HandlerFunc(s.healthz))
	s.handle("GET /api/v1/status", http.HandlerFunc(s.apiStatus))
	s.meterRoutes()
	s.loginRoutes()
	if s.ledger != nil {
		s.ledgerRoutes()
	}
	if s.operator != nil {
		s.operatorRoutes()
	}
	if s.events != nil {
		s.handle("GET /api/v1/events", s.read(s.apiEvents))
	}
	if s.relayer != nil {
		s.relayRoutes()
	}
	if o.History != nil {
		s.historyRoutes(o.History)
	}
	if s.alarms != nil {
		s.alarmRoutes()
	}
	if s.notifications != nil {
		s.notificationRoutes()
	}
	if s.auditLog != nil {
		s.auditRoutes()
	}
	if o.Reports != nil {
		s.reportRoutes(o.Reports)
	}
	if o.Statements != nil {
		s.statementRoutes(o.Statements)
	}
	if o.Allocations != nil {
		s.allocationRoutes(o.Allocations)
	}
	if o.Paycodes != nil {
		s.paycodeRoutes(o.Paycodes)
	}
	if o.Metrics != nil {
		s.handle("GET /metrics", o.Metrics)
	}
	s.finance = financeParts{reports: o.Reports, allocations: o.Allocations, statements: o.Statements}
	s.pageRoutes()
	if err := s.checkRules(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkRules returns an error naming the first endpoint without an access
// rule: such an endpoint is refused to everyone, which is a mistake.
func (s *Server) checkRules() error {
	for _, p := range s.routes {
		if _, ok := s.rules[p]; !ok {
			return fmt.Errorf("web: endpoint %q has no access rule (accessRules in access.go)", p)
		}
	}
	return nil
}

// handle registers an endpoint; the guard (ServeHTTP) decides who may call
// it by its pattern's access rule.
func (s *Server) handle(pattern string, h http.Handler) {
	s.routes = append(s.routes, pattern)
	s.mux.Handle(pattern, compressed(pattern, h))
}

// Handler returns the server's routes behind its guard, for tests and for
// embedding.
func (s *Server) Handler() http.Handler { return s }

// Serve answers on ln (with TLS when Options.TLS was set) until ctx is
// cancelled, then shuts down, giving open
// requests (an SSE stream, a slow client) at most a second.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.port.Store(int32(a.Port))
	}
	// Shutdown waits for open requests; event streams never end by
	// themselves, so they are told to.
	return serveHTTP(ctx, ln, s, s.tls, s.endStreams)
}

// The server's bounds on reading a whole request and on writing its answer
// (an event stream sets its own deadline for each event; a request a
// reload holds has them from the end of its wait: Front.ServeHTTP).
const (
	serverReadTimeout  = 15 * time.Second
	serverWriteTimeout = 30 * time.Second
)

// serveHTTP answers on ln with h (with TLS when tlsConfig is set) until ctx
// is cancelled, then shuts down, calling onShutdown first and giving open
// requests (an SSE stream, a slow client) at most a second. Server and
// Front both serve through it.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, tlsConfig *tls.Config, onShutdown func()) error {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       serverReadTimeout,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       60 * time.Second,
	}
	srv.RegisterOnShutdown(onShutdown)
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
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

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.src.Status())
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

// noListing serves files only: a directory's path is 404, not a listing of
// what the gateway embeds.
func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
