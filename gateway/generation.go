package gateway

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/accounts"
	"mallgrid/gateway/audit"
	"mallgrid/gateway/config"
	"mallgrid/gateway/enforce"
	"mallgrid/gateway/health"
	"mallgrid/gateway/history"
	"mallgrid/gateway/live"
	"mallgrid/gateway/metrics"
	"mallgrid/gateway/outbox"
	"mallgrid/gateway/paycode"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/report"
	"mallgrid/gateway/supervise"
	"mallgrid/gateway/uplink"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// process is what lives as long as the gateway does, whatever the
// configuration: the open database, the HTTP front on the listener, the
// logins, the clock and the log. The configuration's keys that only these
// read (storage.*, http.listen, http.tls, log.*) need a restart to change.
type process struct {
	opts     Options
	log      zerolog.Logger
	clock    func() time.Time
	db       *store.DB
	front    *web.Front
	sessions *web.Sessions
	// metrics is the registry behind /metrics: its counters outlive
	// generations, each generation attaches what scrapes read.
	metrics *metrics.Metrics
	// route is the notification routes of the configuration in force,
	// read by every transaction that stores events (store.Options.Route).
	route atomic.Pointer[store.Router]
	// inForce is the configuration in force, whose site's zone siteNow
	// gives the time in.
	inForce atomic.Pointer[config.Config]
}

// setRoute makes cfg the configuration in force: its notification routes
// the ones events are queued by, its site's zone the process's
// (Options.InForce is told).
func (p *process) setRoute(cfg *config.Config) {
	r := outbox.Route(cfg)
	p.route.Store(&r)
	p.inForce.Store(cfg)
	if p.opts.InForce != nil {
		p.opts.InForce(cfg)
	}
}

// siteNow is the time now in the site's zone of the configuration in
// force.
func (p *process) siteNow() time.Time { return p.inForce.Load().SiteTime(p.clock()) }

// routeEvent is the database's store.Router: the routes in force now.
func (p *process) routeEvent(dbID string, e store.Event) []store.Delivery {
	r := p.route.Load()
	if r == nil {
		return nil
	}
	return (*r)(dbID, e)
}

// generation is everything built from one configuration: the live
// picture and event hub, the pipeline, health tracking, enforcement, the
// buses, the outbox deliverer, the uplink, allocations and statements, and
// the web Server the front hands requests to. It starts from the database
// exactly as a restart does, and stops as a clean shutdown does.
type generation struct {
	cfg    *config.Config
	now    func() time.Time
	lv     *live.Picture
	events *live.Hub
	pipe   *pipeline.Pipeline
	srv    *web.Server

	cancel context.CancelFunc
	loops  sync.WaitGroup
	// detachMetrics folds the generation's polling counts into the
	// process's counters, once its buses have stopped.
	detachMetrics func()
}

// stop ends the generation's loops the way a shutdown does — each bus
// finishes and commits its cycle — and waits for them.
func (g *generation) stop() {
	g.cancel()
	g.loops.Wait()
	if g.detachMetrics != nil {
		g.detachMetrics()
	}
}

// start builds a generation from cfg on the process's database and starts
// its loops under ctx. On error nothing of it runs.
func (p *process) start(ctx context.Context, cfg *config.Config) (*generation, error) {
	opts := p.opts
	log := p.log
	db := p.db
	clock := p.clock
	now := func() time.Time { return cfg.SiteTime(clock()) }
	lv := live.New(cfg, opts.Version, db.Path(), now)
	events := live.NewHub(db, cfg)
	watch := newHealth(cfg, db, events, log, now, opts.OfflineAfter)
	pipe, err := pipeline.New(db, cfg, lv, events, log)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	// What the configuration no longer names is reported, and a removed
	// meter's accrued charge posted: no bus cycle would ever close it.
	drift, err := pipeline.FindDrift(db, cfg)
	if err != nil {
		return nil, fmt.Errorf("compare the configuration with the database: %w", err)
	}
	for _, d := range drift {
		log.Warn().Str("meter", d.Meter).Str("tenant", d.Tenant).Msg("configuration drift: " + d.Text)
	}
	if err := pipe.SettleRemoved(now()); err != nil {
		return nil, err
	}
	// A rule alarm left open by a rule since turned off, or by a meter no
	// longer configured, is cleared: no reading would clear it.
	if err := pipe.ClearUnwatched(now()); err != nil {
		return nil, err
	}
	var tokens []web.Token
	for _, t := range cfg.HTTP.Tokens {
		tokens = append(tokens, web.Token{Name: t.Name, Role: t.Role, SHA256: t.SHA256})
	}
	var users []web.User
	for _, u := range cfg.HTTP.Users {
		users = append(users, web.User{Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash})
	}
	// The reconciler is watched as the buses are (from when it runs,
	// below): a relay command is bounded by its timeout, so a pass that
	// stops moving is hung.
	var enfLoop *supervise.Loop
	enf, err := enforce.New(cfg, db, lv, events, log, now, enforce.Options{Available: pipe.Available, SwitchGap: opts.SwitchGap,
		Commanded: p.metrics.RelayCommand, Progress: func() { enfLoop.Beat() }})
	if err != nil {
		return nil, fmt.Errorf("load enforcement state: %w", err)
	}
	lv.SetDesired(enf.DesiredName)
	pipe.OnCommit(enf.Wake) // a new balance may change an account's state
	pipe.ObserveCommits(p.metrics.Committed)
	pipe.ObserveCommitFailures(p.metrics.CommitFailed)
	channels, err := outbox.Channels(cfg, now)
	if err != nil {
		return nil, err
	}
	deliverer := &outbox.Deliverer{DB: db, Config: cfg, Channels: channels, Now: now, Log: log, Publish: events.Publish}
	auditLog := &audit.Log{DB: db}
	ledger := &accounts.Ledger{DB: db, Config: cfg, Now: now, Accrued: pipe.Accrued, Enforcer: enf, Events: events, Log: log}
	// An allocation posted or reversed changes balances as a bus cycle's
	// charges do: enforcement looks at the accounts at once.
	allocator := &report.Allocator{DB: db, Config: cfg, Now: now, Log: log, Posted: enf.Wake}
	renderer, err := report.NewStatementRenderer(cfg.Location)
	if err != nil {
		return nil, err
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
			return nil, err
		}
	}
	// The uplink to the group's broker, when uplink.broker is set: it
	// reads the database's news and stores commands' results; nothing
	// waits for it.
	var up *uplink.Service
	if cfg.Uplink.Broker != "" {
		if up, err = uplink.New(uplink.Parts{DB: db, Config: cfg, Ledger: ledger, Accounts: ledger.Accounts, Meters: lv.Meters,
			Buses: func() []web.BusView { return lv.Status().Buses }, Events: events, Version: opts.Version, Now: now, Log: log}); err != nil {
			return nil, err
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
		Sessions:    p.sessions, // logins outlive a reload
		Recorder:    db,
		Publisher:   events,
		Auditor:     auditLog,
		AuditLog:    auditLog,
		Location:    cfg.Location,
		Prefs:       &accounts.Prefs{DB: db},
		Metrics:     p.metrics.Handler(),
	})
	if err != nil {
		return nil, err
	}

	genCtx, cancel := context.WithCancel(ctx)
	g := &generation{cfg: cfg, now: now, lv: lv, events: events, pipe: pipe, srv: srv, cancel: cancel}
	pollCtx := genCtx
	buses := &g.loops
	for _, b := range cfg.Buses {
		// Watched from here, before the goroutine runs: READY=1 follows
		// start, and every bus is watched by then.
		sv := busWatch{loop: opts.Supervisor.Loop("bus " + b.Name), hold: opts.holdCycle}
		buses.Add(1)
		go func() {
			defer buses.Done()
			if b.IsMQTT() {
				runMQTTBus(pollCtx, cfg, b, pipe, lv, watch, log, now, cmp.Or(opts.OfflineAfter, health.DefaultOfflineAfter), sv)
				return
			}
			runBus(pollCtx, cfg, b, pipe, lv, watch, p.metrics, log, now, sv)
		}()
	}
	// The status line of `systemctl status`: the buses and meters once
	// they are started, how many answer and the last cycle every
	// statusEvery.
	opts.Supervisor.Status(statusLine(lv.Status()))
	buses.Add(1)
	go func() {
		defer buses.Done()
		runStatus(pollCtx, opts.Supervisor, lv)
	}()
	// Time alone turns a meter offline: a bus whose meters are all backed
	// off sends no cycle to notice it by.
	buses.Add(1)
	go func() {
		defer buses.Done()
		_ = watch.Run(pollCtx) // nil on cancel
	}()

	// Enforcement runs beside polling, from the states loaded above: a
	// cut-off decided before a restart is carried on, not forgotten.
	enfLoop = opts.Supervisor.Loop("relay reconciler")
	buses.Add(1)
	go func() {
		defer buses.Done()
		defer enfLoop.Done()
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
	g.detachMetrics = p.metrics.Attach(metrics.Sources{Meters: meterSamples(cfg, lv), Uplink: up != nil, MQTTBuses: mqttBuses(cfg)})
	p.front.Set(srv)
	return g, nil
}
