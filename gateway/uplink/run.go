package uplink

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/upfeed"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Parts are what New composes: the database, the configuration (its
// uplink section has a broker), the ledger the commands credit, and the
// root's present state for the feed's snapshots and heartbeat.
type Parts struct {
	DB     *store.DB
	Config *config.Config
	// Ledger carries out the commands (accounts.Ledger).
	Ledger Ledger
	// Accounts, Meters and Buses are the control room's views
	// (accounts.Ledger.Accounts, live.Picture.Meters and Status().Buses);
	// nil: none in the snapshots.
	Accounts func() ([]web.AccountView, error)
	Meters   func() []web.MeterView
	Buses    func() []web.BusView
	// Events is the live hub the control room's open pages follow
	// (live.Hub): a refused command reaches them at once, not at their
	// next reload; nil: stored only.
	Events  interface{ Publish([]store.Event) }
	Version string
	Now     func() time.Time
	Log     zerolog.Logger
}

// Service is a site's uplink: the feed filling the outbox, the link
// publishing it and the commands it takes down.
type Service struct {
	feed *upfeed.Feed
	link *Link
	cmds *Commands
}

// New composes the uplink of p.Config.Uplink. It fails for keys or TLS
// files that cannot be used, which configuration checks rule out.
func New(p Parts) (*Service, error) {
	up := p.Config.Uplink
	log := p.Log.With().Str("part", "uplink").Logger()
	cmds, err := NewCommands(p.DB, p.Config, up, p.Ledger, p.Now, log)
	if err != nil {
		return nil, err
	}
	cmds.Events = p.Events
	link, err := NewLink(up, p.DB, noting{cmds}, upfeed.Envelope, log, p.Now)
	if err != nil {
		return nil, err
	}
	feed := &upfeed.Feed{DB: p.DB, SiteID: up.SiteID, Config: p.Config, Now: p.Now, Version: p.Version, Log: log,
		Accounts: accountsOf(p.Accounts, p.Meters, log), Meters: metersOf(p.Meters), Buses: busesOf(p.Buses)}
	return &Service{feed: feed, link: link, cmds: cmds}, nil
}

// Run runs the feed and the link until ctx ends, and returns nil then.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.feed.Run(ctx); err != nil {
			s.link.log.Error().Err(err).Msg("uplink feed stopped")
		}
	}()
	go func() {
		defer wg.Done()
		_ = s.link.Run(ctx) // nil on cancel
	}()
	wg.Wait()
	return nil
}

// Status is the link's and its outbox's state.
func (s *Service) Status() (Status, error) { return s.link.Status() }

// LastCommand returns the last command handled since the start; false:
// none yet.
func (s *Service) LastCommand() (LastCommand, bool) { return s.cmds.LastCommand() }

// accountsOf gives every account's balance and state, and its relays'
// state from the meters; an account whose balance cannot be read is left
// out, logged. The accounts' error is returned: the feed then makes no
// snapshot (an empty one would say the site has no tenants) and tries
// again at its next round.
func accountsOf(accounts func() ([]web.AccountView, error), meters func() []web.MeterView, log zerolog.Logger) func() ([]upfeed.Account, error) {
	if accounts == nil {
		return nil
	}
	return func() ([]upfeed.Account, error) {
		views, err := accounts()
		if err != nil {
			return nil, err
		}
		relays := make(map[string]string)
		if meters != nil {
			for _, m := range meters() {
				if m.Tenant != "" {
					relays[m.Tenant] = joinRelay(relays[m.Tenant], m.Relay.Actual)
				}
			}
		}
		out := make([]upfeed.Account, 0, len(views))
		for _, v := range views {
			bal, err := billing.ParseMoney(v.Balance)
			if err != nil {
				log.Error().Err(err).Str("tenant", v.Tenant).Msg("uplink: balance not read for the snapshot")
				continue
			}
			out = append(out, upfeed.Account{Tenant: v.Tenant, Balance: bal, State: v.State, Relay: cmp.Or(relays[v.Tenant], "unknown")})
		}
		return out, nil
	}
}

// joinRelay folds one more meter's relay into a tenant's: closed or open
// when all its meters agree, mixed when they do not, unknown when one is.
func joinRelay(sofar, actual string) string {
	if actual != "closed" && actual != "open" {
		actual = "unknown"
	}
	switch {
	case sofar == "" || sofar == actual:
		return actual
	case sofar == "unknown" || actual == "unknown":
		return "unknown"
	}
	return "mixed"
}

func metersOf(meters func() []web.MeterView) func() []upfeed.MeterHealth {
	if meters == nil {
		return nil
	}
	return func() []upfeed.MeterHealth {
		views := meters()
		out := make([]upfeed.MeterHealth, 0, len(views))
		for _, m := range views {
			h := upfeed.MeterHealth{Meter: m.ID, Online: m.Online}
			if m.LastSeen != nil {
				h.LastSeen = *m.LastSeen
			}
			for _, n := range m.Stats.Errors {
				h.Errors += n
			}
			out = append(out, h)
		}
		return out
	}
}

// busesOf: a bus is up while one of its meters answers (a bus without
// meters is up).
func busesOf(buses func() []web.BusView) func() []upfeed.Bus {
	if buses == nil {
		return nil
	}
	return func() []upfeed.Bus {
		views := buses()
		out := make([]upfeed.Bus, 0, len(views))
		for _, b := range views {
			out = append(out, upfeed.Bus{Name: b.Name, Up: b.Online > 0 || b.Meters == 0})
		}
		return out
	}
}
