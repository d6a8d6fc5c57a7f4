package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/modbus"
	"mallgrid/gateway/config"
	"mallgrid/gateway/health"
	"mallgrid/gateway/live"
	"mallgrid/gateway/metrics"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/supervise"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Options are what Run needs besides the configuration.
type Options struct {
	Config  *config.Config
	Log     zerolog.Logger
	Version string
	// Now is the clock; nil means time.Now. Tests pass a fake.
	Now func() time.Time
	// Listener, if set, serves HTTP instead of Config.HTTP.Listen.
	Listener net.Listener
	// Ready, if set, is called once HTTP is listening, with its address.
	Ready func(addr net.Addr)
	// SwitchGap, if set, replaces the least time between two commands to
	// one relay and the first retry's wait (tests).
	SwitchGap time.Duration
	// OfflineAfter, if set, replaces the least time without an answer
	// before a meter is offline (health.DefaultOfflineAfter; tests).
	OfflineAfter time.Duration
	// Supervisor is told when the gateway is ready, reloading and
	// stopping, gets a status line, and watches every bus loop and the
	// relay reconciler (its watchdog pings stop when one hangs); nil: no
	// service manager.
	Supervisor *supervise.Manager
	// holdCycle, if set, is called on the bus's goroutine before each
	// cycle is committed: tests make a commit hang with it.
	holdCycle func(poll.Cycle)
	// Reload, if set, asks for the configuration to be reloaded: each
	// value received calls Load and, when the file is valid, replaces the
	// running generation with one built from it (reload.go). Values sent
	// while a reload runs wait for it; send without blocking on a channel
	// of capacity 1 so that several requests in a row make one reload.
	Reload <-chan struct{}
	// Load loads the configuration again for a reload; a *config.Problems
	// error has every problem with its FILE:LINE. nil: Reload is ignored.
	Load func() (*config.Config, error)
	// InForce, if set, is called with each configuration as it takes
	// effect: Config at the start, then each reload's (and the running one
	// again when a reload's cannot start). The daemon's log is timed in
	// its site's zone.
	InForce func(*config.Config)
}

// Run runs the gateway until ctx is cancelled. It returns nil after a clean
// shutdown, or the error that kept it from starting.
//
// The process opens the database once and holds the HTTP listener for its
// whole life; everything built from the configuration is a generation
// (generation.go), replaced by a new one when Options.Reload asks for it
// (reload.go).
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Log
	clock := opts.Now
	if clock == nil {
		clock = time.Now
	}
	p := &process{opts: opts, log: log, clock: clock, sessions: web.NewSessions()}
	// Every time the gateway takes is in the site's zone: the texts that
	// format them (counter events, messages) read as the mall's clocks do,
	// whatever zone the server is set to. What lives for the process (the
	// daily snapshots) reads the zone of the configuration in force: a
	// reload may change site.timezone.
	now := p.siteNow
	// The routes follow the configuration in force: a reload swaps them.
	p.setRoute(cfg)
	// The marker beside the file makes a missing, empty or other database a
	// refusal to start, never a fresh ledger.
	// Every event stored is routed there: its notifications are written in
	// its own transaction.
	// A file of an older schema is copied aside before it is upgraded.
	db, err := store.Open(cfg.Storage.Path, store.Options{LockTimeout: cfg.Storage.LockTimeout, Marker: true, Route: p.routeEvent,
		BeforeUpgrade: snapshotBeforeUpgrade(cfg, log, clock)})
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error().Err(err).Msg("close database")
		}
	}()
	// The control socket and the daily snapshots live for the process,
	// and stop before the database closes.
	stopBackups, err := startBackups(ctx, cfg, db, log, now)
	if err != nil {
		return err
	}
	defer stopBackups()
	p.db = db
	// The registry lives for the process: a counter never goes back on a
	// reload.
	p.metrics = metrics.New(metrics.Options{DB: db, Version: opts.Version, Now: clock, Log: log})
	if db.Created() {
		// Only where the directory holds no other gateway's database or
		// marker (store.Open refuses there): still, a new ledger is worth
		// a line at warn level and an event of its own.
		log.Warn().Str("db", db.Path()).Str("id", db.ID()).Msg("new empty ledger created at " + db.Path())
		if _, err := db.PostEvents(store.Event{Time: now(), Kind: "database_created", Text: fmt.Sprintf(
			"A new, empty ledger (database %s) was created at %s: there was no database and no marker there.", db.ID(), db.Path()),
			Args: map[string]string{"db": db.ID(), "path": db.Path()}}); err != nil {
			return fmt.Errorf("record the new database: %w", err)
		}
	}
	var tlsConfig *tls.Config
	if t := cfg.HTTP.TLS; t != nil {
		// Checked when the configuration was loaded; read again here, as
		// the files may have changed since.
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return fmt.Errorf("http.tls: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	p.front = web.NewFront(tlsConfig)

	gen, err := p.start(ctx, cfg)
	if err != nil {
		return err
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			gen.stop()
			return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
		}
	}

	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- p.front.Serve(httpCtx, ln) }()
	log.Info().Str("site", cfg.Site.Name).Str("http", ln.Addr().String()).Int("buses", len(cfg.Buses)).
		Int("meters", len(cfg.Meters)).Msg("gateway running")
	opts.Supervisor.Ready()
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}

	var httpErr error
	httpRunning := true
	running := true
	for running {
		select {
		case <-ctx.Done():
			running = false
		case httpErr = <-httpDone: // the listener failed: stop everything
			httpRunning = false
			running = false
		case <-opts.Reload:
			if gen, err = p.reload(ctx, gen); err != nil {
				// Neither the new configuration's generation nor the
				// old one's could start: nothing polls; a restart is
				// the way out.
				httpErr = err
				running = false
			}
		}
	}
	// Shutdown order: polling first (each bus finishes and commits its
	// cycle), then HTTP, then the database (deferred above).
	opts.Supervisor.Stopping()
	opts.Supervisor.Status("stopping: each bus commits its last cycle")
	if gen != nil {
		gen.stop()
	}
	if httpRunning {
		stopHTTP()
		if err := <-httpDone; httpErr == nil {
			httpErr = err
		}
	}
	log.Info().Msg("gateway stopped")
	return httpErr
}

// dbWatchInterval is how often the database's path is checked: at least
// once a poll cycle.
const dbWatchInterval = time.Second

// databaseLost tells of a database file gone from its path, or changed
// behind the gateway's back: in the log, always, and as an event on the
// status page and the event stream. A file only gone from its path is
// still whole and holds what was acknowledged since the last backup, gone
// once the gateway stops: it is copied beside the path first (Rescue), and
// the event and the log name the copy. The event is stored in the file
// still open, which gives it its id in the stream; that file is lost with
// it, so the log is the lasting record.
func databaseLost(db *store.DB, events *live.Hub, log zerolog.Logger, now func() time.Time, reason error) {
	text := fmt.Sprintf("The database file %s was deleted or replaced while the gateway ran: top-ups, overrides and readings are not recorded "+
		"until it is restored and the gateway is restarted.", db.Path())
	entry := log.Error().Err(reason).Str("db", db.Path())
	// The kind's own sentence is a file lost whose open copy was saved;
	// forms broken and unsaved.
	args := map[string]string{"path": db.Path()}
	if db.Broken() {
		text = fmt.Sprintf("The database file %s was changed behind the gateway's back (emptied or overwritten) while it ran: nothing is read from "+
			"or recorded in it until it is restored from a backup and the gateway is restarted.", db.Path())
		args["form"] = "broken"
	} else if rescued, err := db.Rescue(now()); err != nil {
		log.Error().Err(err).Str("db", db.Path()).Msg("could not rescue the open database: what was acknowledged since the last backup is lost when the gateway stops")
		text += " Its open copy could not be saved: " + err.Error() + "."
		args["form"], args["error"] = "unsaved", err.Error()
	} else {
		entry = entry.Str("rescued", rescued)
		text += fmt.Sprintf(" What it held when this was noticed is saved as %s: restore that (see README, The database).", rescued)
		args["rescued"] = rescued
	}
	entry.Msg("database file lost: changes are refused until it is restored and the gateway restarted")
	ev := store.Event{Time: now(), Kind: "database_unavailable", Text: text, Args: args}
	stored, err := db.RecordLoss(ev) // with an id for the live stream even where it could not be stored
	if err != nil {
		log.Error().Err(err).Msg("store the database_unavailable event")
	}
	events.Publish([]store.Event{stored})
}

// runBus opens the bus's transport and polls it until ctx ends. A port that
// cannot be opened (an unplugged USB adapter) is retried, with a capped
// backoff, rather than stopping the whole gateway. Each transaction, commit
// and retry is a beat of sv's loop, which ends with runBus.
func runBus(ctx context.Context, cfg *config.Config, b config.Bus, pipe *pipeline.Pipeline, lv *live.Picture, watch *health.Tracker, m *metrics.Metrics,
	log zerolog.Logger, now func() time.Time, sv busWatch) {
	defer sv.loop.Done()
	// The poller names its bus on each line itself; the lines here get it
	// from blog, so that no line carries the key twice.
	blog := log.With().Str("bus", b.Name).Logger()
	var meters []poll.Meter
	for _, m := range cfg.MetersOn(b.Name) {
		model, err := cfg.ModelOf(m) // with the meter's function-code override
		if err != nil {              // config validation makes this unreachable
			blog.Error().Str("meter", m.ID).Err(err).Msg("meter skipped")
			continue
		}
		meters = append(meters, poll.Meter{ID: m.ID, Address: byte(m.Address), Model: model, Timeout: cfg.TimeoutOf(m),
			CTRatio: int64(m.CTRatio), PTRatio: int64(m.PTRatio), Interval: cfg.IntervalOf(m)})
	}
	retry := time.Second
	for {
		t, err := modbus.Open(transportConfig(b))
		if err == nil {
			defer t.Close()
			watch.PortOpened(b.Name)
			sink := cycleSink{pipe: pipe, lv: lv, health: watch, metrics: m, hold: sv.hold}
			sched, err := poll.New(poll.Config{Bus: b.Name, Interval: b.Interval, Pause: b.Pause, Now: now, Log: log, Progress: sv.loop.Beat}, t, meters, sink)
			if err != nil {
				blog.Error().Err(err).Msg("bus not started")
				return
			}
			lv.SetScheduler(b.Name, sched)
			if err := sched.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				blog.Error().Err(err).Msg("bus stopped")
			}
			return
		}
		// The tracker logs the bus going down once, at warn level, and
		// /healthz shows the latest error: a line per retry would be noise.
		watch.PortFailed(b.Name, err)
		blog.Debug().Err(err).Str("retry_in", retry.String()).Msg("cannot open bus")
		// Retrying is progress: at most a minute apart, well within the
		// supervisor's allowance.
		sv.loop.Beat()
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, time.Minute)
	}
}

// cycleSink commits a cycle, notes its timing for the status page and
// the metrics and tells the health tracker who answered.
type cycleSink struct {
	pipe    *pipeline.Pipeline
	lv      *live.Picture
	health  *health.Tracker
	metrics *metrics.Metrics
	hold    func(poll.Cycle) // busWatch.hold
}

func (s cycleSink) Cycle(ctx context.Context, c poll.Cycle) {
	if s.hold != nil {
		s.hold(c)
	}
	s.pipe.Cycle(ctx, c)
	if !c.Fast && !c.Partial { // the page shows the time of a whole pass over the bus
		s.lv.CycleDone(c.Bus, c.Start, c.End)
		s.metrics.CycleDone(c.Bus, c.End.Sub(c.Start))
	}
	s.health.Cycle(c)
}

// Hurry implements poll.Hurrier: the pipeline's.
func (s cycleSink) Hurry(r poll.Result) bool { return s.pipe.Hurry(r) }

// newHealth returns the tracker of every configured bus and meter, seeded
// with the states reported before this start so a restart does not report
// them again.
func newHealth(cfg *config.Config, db *store.DB, events *live.Hub, log zerolog.Logger, now func() time.Time, offlineAfter time.Duration) *health.Tracker {
	var buses []health.Bus
	for _, b := range cfg.Buses {
		hb := health.Bus{Name: b.Name, Port: b.Port}
		for _, m := range cfg.MetersOn(b.Name) {
			hb.Meters = append(hb.Meters, health.Meter{ID: m.ID, Tenant: m.Tenant, Address: m.Address})
		}
		buses = append(buses, hb)
	}
	t := health.New(health.Options{Buses: buses, Now: now, Location: cfg.Location, Log: log, Recorder: db, Publisher: events,
		OfflineAfter: offlineAfter})
	before, err := db.LastEvents(health.RestoreWindow)
	if err != nil {
		// Not fatal: at worst an outage already reported is reported again.
		log.Warn().Err(err).Msg("read the last meter and bus states reported: a meter offline before this start may be reported again")
	}
	t.Restore(before)
	return t
}

func transportConfig(b config.Bus) modbus.Config {
	c := modbus.Config{
		Kind:     modbus.Kind(b.Type),
		Address:  b.Port,
		Baud:     b.Baud,
		StopBits: b.StopBits,
		RS485:    b.RS485,
		Timeout:  b.Timeout,
	}
	if b.Parity != "" {
		c.Parity = b.Parity[0]
	}
	return c
}
