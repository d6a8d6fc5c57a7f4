package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/modbus"
	"mallgrid/gateway/accounts"
	"mallgrid/gateway/audit"
	"mallgrid/gateway/config"
	"mallgrid/gateway/enforce"
	"mallgrid/gateway/health"
	"mallgrid/gateway/history"
	"mallgrid/gateway/live"
	"mallgrid/gateway/outbox"
	"mallgrid/gateway/paycode"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/report"
	"mallgrid/gateway/uplink"
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
}

// Run runs the gateway until ctx is cancelled. It returns nil after a clean
// shutdown, or the error that kept it from starting.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Log
	clock := opts.Now
	if clock == nil {
		clock = time.Now
	}
	// Every time the gateway takes is in the site's zone: the texts that
	// format them (counter events, messages) read as the mall's clocks do,
	// whatever zone the server is set to.
	now := func() time.Time { return cfg.SiteTime(clock()) }
	// The marker beside the file makes a missing, empty or other database a
	// refusal to start, never a fresh ledger.
	// Every event stored is routed there: its notifications are written in
	// its own transaction.
	db, err := store.Open(cfg.Storage.Path, store.Options{LockTimeout: cfg.Storage.LockTimeout, Marker: true, Route: outbox.Route(cfg)})
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error().Err(err).Msg("close database")
		}
	}()
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
	lv := live.New(cfg, opts.Version, db.Path(), now)
	events := live.NewHub(db, cfg)
	watch := newHealth(cfg, db, events, log, now, opts.OfflineAfter)
	pipe, err := pipeline.New(db, cfg, lv, events, log)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	// What the configuration no longer names is reported, and a removed
	// meter's accrued charge posted: no bus cycle would ever close it.
	drift, err := pipeline.FindDrift(db, cfg)
	if err != nil {
		return fmt.Errorf("compare the configuration with the database: %w", err)
	}
	for _, d := range drift {
		log.Warn().Str("meter", d.Meter).Str("tenant", d.Tenant).Msg("configuration drift: " + d.Text)
	}
	if err := pipe.SettleRemoved(now()); err != nil {
		return err
	}
	// A rule alarm left open by a rule since turned off, or by a meter no
	// longer configured, is cleared: no reading would clear it.
	if err := pipe.ClearUnwatched(now()); err != nil {
		return err
	}
	var tokens []web.Token
	for _, t := range cfg.HTTP.Tokens {
		tokens = append(tokens, web.Token{Name: t.Name, Role: t.Role, SHA256: t.SHA256})
	}
	var users []web.User
	for _, u := range cfg.HTTP.Users {
		users = append(users, web.User{Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash})
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
	enf, err := enforce.New(cfg, db, lv, events, log, now, enforce.Options{Available: pipe.Available, SwitchGap: opts.SwitchGap})
	if err != nil {
		return fmt.Errorf("load enforcement state: %w", err)
	}
	lv.SetDesired(enf.DesiredName)
	pipe.OnCommit(enf.Wake) // a new balance may change an account's state
	channels, err := outbox.Channels(cfg, now)
	if err != nil {
		return err
	}
	deliverer := &outbox.Deliverer{DB: db, Config: cfg, Channels: channels, Now: now, Log: log, Publish: events.Publish}
	auditLog := &audit.Log{DB: db}
	ledger := &accounts.Ledger{DB: db, Config: cfg, Now: now, Accrued: pipe.Accrued, Enforcer: enf, Events: events, Log: log}
	// An allocation posted or reversed changes balances as a bus cycle's
	// charges do: enforcement looks at the accounts at once.
	allocator := &report.Allocator{DB: db, Config: cfg, Now: now, Log: log, Posted: enf.Wake}
	renderer, err := report.NewStatementRenderer(cfg.Location)
	if err != nil {
		return err
	}
	// Statements wait at start for every bus's first cycle: it posts the
	// charges a stop held over, dated in the month they were read.
	started := now()
	statements := &report.Statements{DB: db, Config: cfg, Renderer: renderer, Now: now, Log: log,
		Ready: func() bool { return lv.CycledSince(started) }}
	// The tenants' QR stickers, when uplink.qr is set: drawn from the
	// configuration alone, for the admin's page.
	var paycodes web.Paycodes
	if cfg.Uplink.QR.Enabled() {
		if paycodes, err = paycode.NewService(cfg.Site.Name, cfg.Uplink.SiteID, cfg.Uplink.QR, cfg.Tenants); err != nil {
			return err
		}
	}
	// The uplink to the group's broker, when uplink.broker is set: it
	// reads the database's news and stores commands' results; nothing
	// waits for it.
	var up *uplink.Service
	if cfg.Uplink.Broker != "" {
		if up, err = uplink.New(uplink.Parts{DB: db, Config: cfg, Ledger: ledger, Accounts: ledger.Accounts, Meters: lv.Meters,
			Buses: func() []web.BusView { return lv.Status().Buses }, Events: events, Version: opts.Version, Now: now, Log: log}); err != nil {
			return err
		}
		lv.SetUplink(uplinkView(cfg, up, now, log))
	}
	srv, err := web.New(lv, web.Options{
		Ledger:        ledger,
		Operator:      &accounts.Operator{Pipeline: pipe, Now: now},
		Alarms:        &accounts.Alarms{DB: db, Now: now, Events: events, Log: log},
		Notifications: &accounts.Notifications{DB: db, Now: now, Events: events, Log: log},
		Events:        events,
		Relayer:       enf,
		History:       &history.Reader{DB: db, Config: cfg},
		Reports:       &report.Reports{DB: db, Config: cfg},
		Allocations:   allocator,
		Statements:    statements,
		Paycodes:      paycodes,
		Tokens:        tokens,
		DB:            db,
		Buses:         watch,
		Log:           log,

		Users:       users,
		Now:         now,
		Listen:      cfg.HTTP.Listen,
		Hosts:       cfg.HTTP.Hosts,
		SessionIdle: cfg.HTTP.SessionIdle,
		TLS:         tlsConfig,
		Recorder:    db,
		Publisher:   events,
		Auditor:     auditLog,
		AuditLog:    auditLog,
		Location:    cfg.Location,
		Prefs:       &accounts.Prefs{DB: db},
	})
	if err != nil {
		return err
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
		}
	}

	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var buses sync.WaitGroup
	for _, b := range cfg.Buses {
		buses.Add(1)
		go func() {
			defer buses.Done()
			if b.IsMQTT() {
				runMQTTBus(pollCtx, cfg, b, pipe, lv, watch, log, now, cmp.Or(opts.OfflineAfter, health.DefaultOfflineAfter))
				return
			}
			runBus(pollCtx, cfg, b, pipe, lv, watch, log, now)
		}()
	}
	// Time alone turns a meter offline: a bus whose meters are all backed
	// off sends no cycle to notice it by.
	buses.Add(1)
	go func() {
		defer buses.Done()
		_ = watch.Run(pollCtx) // nil on cancel
	}()

	// Enforcement runs beside polling, from the states loaded above: a
	// cut-off decided before a restart is carried on, not forgotten.
	buses.Add(1)
	go func() {
		defer buses.Done()
		enf.Run(pollCtx)
	}()

	// A database file deleted or replaced under the running gateway is
	// noticed within dbWatchInterval even when nothing writes (every write
	// checks too): from then on writes are refused and the control room
	// is told.
	buses.Add(1)
	go func() {
		defer buses.Done()
		db.WatchFile(pollCtx, dbWatchInterval, func(reason error) { databaseLost(db, events, log, now, reason) })
	}()

	// Every account's last day of spending, for the time left before a
	// cut-off that the dashboard sorts by, is reckoned off the requests.
	buses.Add(1)
	go func() {
		defer buses.Done()
		ledger.RunSpend(pollCtx)
	}()

	// Power samples past storage.samples_keep go in small batches, so that
	// a bus cycle never waits long for the write lock.
	buses.Add(1)
	go func() {
		defer buses.Done()
		pruner := &history.Pruner{DB: db, Keep: cfg.Storage.SamplesRetention(), Now: now, Log: log}
		_ = pruner.Run(pollCtx) // nil on cancel
	}()

	// Each allocation rule's period is posted once it has ended (those
	// that ended while the gateway was down at once).
	buses.Add(1)
	go func() {
		defer buses.Done()
		_ = allocator.Run(pollCtx) // nil on cancel
	}()

	// Last month's statements are issued an hour after it ends (those of
	// months that ended while the gateway was down once every bus has
	// cycled), once.
	buses.Add(1)
	go func() {
		defer buses.Done()
		_ = statements.Run(pollCtx) // nil on cancel
	}()

	// Notifications go out beside polling; one cut short by the shutdown
	// stays pending, to be sent again under its id at the next start.
	buses.Add(1)
	go func() {
		defer buses.Done()
		if err := deliverer.Run(pollCtx); err != nil {
			log.Error().Err(err).Msg("notifications stopped")
		}
	}()

	// Published until polling stops; its last acknowledgements are
	// written before the database closes.
	if up != nil {
		buses.Add(1)
		go func() {
			defer buses.Done()
			_ = up.Run(pollCtx) // nil on cancel
		}()
	}

	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(httpCtx, ln) }()
	log.Info().Str("site", cfg.Site.Name).Str("http", ln.Addr().String()).Int("buses", len(cfg.Buses)).
		Int("meters", len(cfg.Meters)).Msg("gateway running")
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}

	var httpErr error
	httpRunning := true
	select {
	case <-ctx.Done():
	case httpErr = <-httpDone: // the listener failed: stop everything
		httpRunning = false
	}
	// Shutdown order: polling first (each bus finishes and commits its
	// cycle), then HTTP, then the database (deferred above).
	stopPolling()
	buses.Wait()
	if httpRunning {
		stopHTTP()
		httpErr = <-httpDone
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
// backoff, rather than stopping the whole gateway.
func runBus(ctx context.Context, cfg *config.Config, b config.Bus, pipe *pipeline.Pipeline, lv *live.Picture, watch *health.Tracker, log zerolog.Logger,
	now func() time.Time) {
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
			sink := cycleSink{pipe: pipe, lv: lv, health: watch}
			sched, err := poll.New(poll.Config{Bus: b.Name, Interval: b.Interval, Pause: b.Pause, Now: now, Log: log}, t, meters, sink)
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
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, time.Minute)
	}
}

// cycleSink commits a cycle, notes its timing for the status page and
// tells the health tracker who answered.
type cycleSink struct {
	pipe   *pipeline.Pipeline
	lv     *live.Picture
	health *health.Tracker
}

func (s cycleSink) Cycle(ctx context.Context, c poll.Cycle) {
	s.pipe.Cycle(ctx, c)
	if !c.Fast && !c.Partial { // the page shows the time of a whole pass over the bus
		s.lv.CycleDone(c.Bus, c.Start, c.End)
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
