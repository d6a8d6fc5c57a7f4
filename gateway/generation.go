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
	watch  *health.Tracker
	pipe   *pipeline.Pipeline
	srv    *web.Server

	// Made by build, from the configuration and the files it names, for
	// launch.
	channels   map[string]outbox.Channel
	ledger     *accounts.Ledger
	statements *report.Statements
	paycodes   web.Paycodes
	up         *uplink.Service

	// launched is when launch began: the statements wait for a cycle of
	// every bus after it.
	launched time.Time

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
	g, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.launch(ctx, g, nil); err != nil {
		return nil, err
	}
	return g, nil
}

// build makes what of cfg's generation can fail for a reason of the
// configuration or of a file it names: the notification channels, the
// statement renderer, the QR stickers, the uplink (its CA file, its keys).
// A reload builds the new generation while the running one goes on, so
// that such a failure keeps the running one rather than stopping it first.
// build neither reads what a running generation writes nor writes
// anything: the state in the database is launch's, once the running
// generation has stopped.
func (p *process) build(cfg *config.Config) (*generation, error) {
	opts := p.opts
	db := p.db
	clock := p.clock
	now := func() time.Time { return cfg.SiteTime(clock()) }
	g := &generation{cfg: cfg, now: now}
	g.lv = live.New(cfg, opts.Version, db.Path(), now)
	g.events = live.NewHub(db, cfg)
	var err error
	if g.channels, err = outbox.Channels(cfg, now); err != nil {
		return nil, err
	}
	renderer, err := report.NewStatementRenderer(cfg.Location)
	if err != nil {
		return nil, err
	}
	// Statements wait at start for every bus's first cycle: it posts the
	// charges a stop held over, dated in the month they were read. The
	// start is launch's, after the old generation's last cycles (a bus's
	// last cycle is carried over a reload).
	lv := g.lv
	g.statements = &report.Statements{DB: db, Config: cfg, Renderer: renderer, Now: now, Log: p.log,
		Ready: func() bool { return lv.CycledSince(g.launched) }}
	// The tenants' QR stickers, when uplink.qr is set: drawn from the
	// configuration alone, for the admin's page.
	if cfg.Uplink.QR.Enabled() {
		if g.paycodes, err = paycode.NewService(cfg.Site.Name, cfg.Uplink.SiteID, cfg.Uplink.QR, cfg.Tenants); err != nil {
			return nil, err
		}
	}
	// The ledger's accrued charges and enforcement come from the database's
	// state: launch gives them (Accrued, Enforcer) before anything runs.
	g.ledger = &accounts.Ledger{DB: db, Config: cfg, Now: now, Events: g.events, Log: p.log}
	// The uplink to the group's broker, when uplink.broker is set: it
	// reads the database's news and stores commands' results; nothing
	// waits for it.
	if cfg.Uplink.Broker != "" {
		if g.up, err = uplink.New(uplink.Parts{DB: db, Config: cfg, Ledger: g.ledger, Accounts: g.ledger.Accounts, Meters: lv.Meters,
			Buses: func() []web.BusView { return lv.Status().Buses }, Events: g.events, Version: opts.Version, Now: now, Log: p.log}); err != nil {
			return nil, err
		}
		lv.SetUplink(uplinkView(cfg, g.up, now, p.log))
	}
	return g, nil
}

// launch loads g's state from the database — the meters' baselines and
// accrued charges, enforcement's states, the meter and bus states last
// reported — as a start does, and starts g's loops under ctx. prev, when
// not nil, is the generation g replaces, stopped: what its picture and
// health tracking knew of the buses and meters g keeps is carried over.
//
// What can fail here is the database (or the embedded templates, the same
// for every configuration); nothing is written before the last of it, and
// a failure leaves nothing of g running.
func (p *process) launch(ctx context.Context, g *generation, prev *generation) error {
	opts := p.opts
	log := p.log
	db := p.db
	cfg, now, lv, events, ledger := g.cfg, g.now, g.lv, g.events, g.ledger
	g.launched = now()
	watch := newHealth(cfg, db, events, log, now, opts.OfflineAfter)
	g.watch = watch
	if prev != nil {
		kept := keptBuses(prev.cfg, cfg)
		lv.Carry(prev.lv, kept)
		watch.Carry(prev.watch, kept)
	}
	pipe, err := pipeline.New(db, cfg, lv, events, log)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	g.pipe = pipe
	// What the configuration no longer names is reported, and a removed
	// meter's accrued charge posted (below): no bus cycle would ever close
	// it.
	drift, err := pipeline.FindDrift(db, cfg)
	if err != nil {
		return fmt.Errorf("compare the configuration with the database: %w", err)
	}
	// The reconciler is watched as the buses are (from when it runs,
	// below): a relay command is bounded by its timeout, so a pass that
	// stops moving is hung.
	var enfLoop *supervise.Loop
	enf, err := enforce.New(cfg, db, lv, events, log, now, enforce.Options{Available: pipe.Available, SwitchGap: opts.SwitchGap,
		Commanded: p.metrics.RelayCommand, Progress: func() { enfLoop.Beat() }})
	if err != nil {
		return fmt.Errorf("load enforcement state: %w", err)
	}
	ledger.Accrued, ledger.Enforcer = pipe.Accrued, enf
	var tokens []web.Token
	for _, t := range cfg.HTTP.Tokens {
		tokens = append(tokens, web.Token{Name: t.Name, Role: t.Role, SHA256: t.SHA256})
	}
	var users []web.User
	for _, u := range cfg.HTTP.Users {
		users = append(users, web.User{Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash})
	}
	auditLog := &audit.Log{DB: db}
	// An allocation posted or reversed changes balances as a bus cycle's
	// charges do: enforcement looks at the accounts at once.
	allocator := &report.Allocator{DB: db, Config: cfg, Now: now, Log: log, Posted: enf.Wake}
	statements := g.statements
	up := g.up
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
		Paycodes:      g.paycodes,
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
		return err
	}
	g.srv = srv
	for _, d := range drift {
		log.Warn().Str("meter", d.Meter).Str("tenant", d.Tenant).Msg("configuration drift: " + d.Text)
	}
	// The first write, and the last step that can fail: a removed meter's
	// charge posted is what the configuration running then must agree
	// with, so nothing after it may send the gateway back to the
	// configuration before.
	if err := pipe.SettleRemoved(now()); err != nil {
		return err
	}
	// A rule alarm left open by a rule since turned off, or by a meter no
	// longer configured, is cleared: no reading would clear it. One that
	// cannot be is cleared at the next start or reload.
	if err := pipe.ClearUnwatched(now()); err != nil {
		log.Error().Err(err).Msg("alarms no longer watched stay open until the next start or reload")
	}
	lv.SetDesired(enf.DesiredName)
	pipe.OnCommit(enf.Wake) // a new balance may change an account's state
	pipe.ObserveCommits(p.metrics.Committed)
	pipe.ObserveCommitFailures(p.metrics.CommitFailed)
	deliverer := &outbox.Deliverer{DB: db, Config: cfg, Channels: g.channels, Now: now, Log: log, Publish: events.Publish}

	genCtx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
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
	return nil
}

// keptBuses names the buses of next on the same link as in running: the
// same type, port, line settings and broker. Their meters' states carry
// over a reload; only the polling pace (interval, timeout, pause) may have
// changed, which says nothing of whether a meter answers.
func keptBuses(running, next *config.Config) []string {
	before := make(map[string]config.Bus, len(running.Buses))
	for _, b := range running.Buses {
		before[b.Name] = b
	}
	var kept []string
	for _, b := range next.Buses {
		old, ok := before[b.Name]
		if !ok {
			continue
		}
		old.Interval, old.Timeout, old.Pause = b.Interval, b.Timeout, b.Pause
		if old == b {
			kept = append(kept, b.Name)
		}
	}
	return kept
}
