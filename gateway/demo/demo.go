package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"mallgrid/configs"
	"mallgrid/drivers/compere"
	"mallgrid/drivers/sim"
	comperesim "mallgrid/drivers/sim/compere"
	"mallgrid/gateway"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// simTurnaround is a simulated meter's response time; real KPM33Bs answer
// in 5–50 ms.
const simTurnaround = 10 * time.Millisecond

// Options tune `mallgrid demo`.
type Options struct {
	// Config is the configuration file of the simulated mall (-c); ""
	// runs the built-in one, configs/demo.yaml. Its buses are served by
	// simulated meters on pseudo-terminals whatever their type and port,
	// and its storage.path is never used (see DB).
	Config string
	// Env is the environment whose MALLGRID_* variables override Config's
	// keys, as for `mallgrid run`; the built-in file ignores it, so that
	// the demo starts the same everywhere.
	Env []string
	// DB is the database file; "" is a temporary one, removed at the end.
	// A demo started again on its DB carries on from where it stopped.
	DB      string
	Listen  string // HTTP address; "" keeps the configuration's
	Log     zerolog.Logger
	Version string
	// Fast turns off wire-time emulation: replies come as fast as the
	// pseudo-terminal carries them instead of at 9600 baud.
	Fast bool
	// Pace is how fast the story plays; the zero Pace is DefaultPace.
	Pace Pace
	// Out, if set, gets the banner once the status page is up: its URL,
	// the API token the demo accepts, and the story to watch for.
	Out io.Writer
	// Ready, if set, is called with the status page's URL and the token.
	Ready func(url, token string)

	// simulated, if set, is called with every simulated meter by meter
	// id before the buses start (tests watch the relays this way).
	simulated func(id string, m *sim.Meter)
}

// Run runs a simulated mall: every meter of the configuration is a
// simulated meter on a pseudo-terminal per bus, and the gateway runs on
// them exactly as on real buses. Before it starts, every tenant is given
// an opening balance by a real top-up; once it serves, the banner is
// written to Out and the story's script plays (see the package doc). It
// returns nil after ctx is cancelled and a clean shutdown.
func Run(ctx context.Context, o Options) error {
	cfg, err := o.load()
	if err != nil {
		return err
	}
	now := time.Now()
	path := o.DB
	if path == "" {
		dir, err := os.MkdirTemp("", "mallgrid-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "demo.db")
	}
	cfg.Storage.Path = path
	if o.Listen != "" {
		cfg.HTTP.Listen = o.Listen
	}
	token, err := acceptToken(cfg)
	if err != nil {
		return err
	}
	user, password, err := acceptUser(cfg)
	if err != nil {
		return err
	}
	pace := o.Pace
	if pace == (Pace{}) {
		pace = DefaultPace()
	}
	st, err := castStory(cfg, pace, now)
	if err != nil {
		return err
	}
	if st.low == nil {
		o.Log.Warn().Msg("no story: no tenant has a credit rating, a tariff and a meter with a relay")
	}
	st.warnProtected(cfg, now, o.Log)
	last, err := prepareDB(ctx, cfg, path, st, o.Log)
	if err != nil {
		return err
	}

	simCtx, stopSims := context.WithCancel(context.WithoutCancel(ctx))
	var (
		sims sync.WaitGroup
		ptys []*sim.PTY
	)
	// The terminals close only after their simulators have stopped reading.
	defer func() {
		stopSims()
		sims.Wait()
		for _, p := range ptys {
			_ = p.Close()
		}
	}()
	loads := st.loads()
	for i, b := range cfg.Buses {
		if b.IsMQTT() {
			// The gateway's broker on a free port, and the floor's
			// simulated meters its clients.
			addr, err := freeLocalAddr()
			if err != nil {
				return err
			}
			cfg.Buses[i].Listen = addr
			devices, err := demoMQTTMeters(cfg, b, "tcp://"+addr, last, o.Log)
			if err != nil {
				return err
			}
			for _, d := range devices {
				sims.Add(1)
				go func() {
					defer sims.Done()
					if err := d.Run(simCtx); err != nil {
						o.Log.Error().Str("bus", b.Name).Err(err).Msg("simulated MQTT meter stopped")
					}
				}()
			}
			continue
		}
		bus, err := demoBus(cfg, b.Name, b.Baud, o.Fast, loads, last, o.simulated)
		if err != nil {
			return err
		}
		pty, err := sim.NewPTY()
		if err != nil {
			return err
		}
		ptys = append(ptys, pty)
		// Whatever the file says, the bus is now this terminal: a TCP bus
		// becomes RTU, and TIOCSRS485 would fail on a terminal.
		cfg.Buses[i].Type, cfg.Buses[i].Port, cfg.Buses[i].RS485 = config.BusRTU, pty.Path, false
		if cfg.Buses[i].Baud == 0 {
			cfg.Buses[i].Baud, cfg.Buses[i].Parity, cfg.Buses[i].StopBits = 9600, "E", 1
		}
		sims.Add(1)
		go func() {
			defer sims.Done()
			if err := bus.ServeRTU(simCtx, pty.Master); err != nil {
				o.Log.Error().Str("bus", b.Name).Err(err).Msg("simulated bus stopped")
			}
		}()
	}

	// The mall group's broker, for a site that names itself to the group
	// (uplink.site_id) but has no broker to publish to: the built-in
	// mall's uplink and its status line work as they would at a site.
	if cfg.Uplink.SiteID != "" && cfg.Uplink.Broker == "" {
		group, err := startGroupBroker()
		if err != nil {
			return err
		}
		// Closed after the gateway has stopped (deferred before its Run).
		defer func() {
			if err := group.Close(); err != nil {
				o.Log.Warn().Err(err).Msg("close the demo's group broker")
			}
		}()
		cfg.Uplink.Broker = group.URL()
	}

	// The script stops with the gateway: its context ends when Run's does,
	// or when the gateway returns early, and Run waits for it.
	scriptCtx, stopScript := context.WithCancel(ctx)
	var script sync.WaitGroup
	defer func() {
		stopScript()
		script.Wait()
	}()
	return gateway.Run(ctx, gateway.Options{
		Config: cfg, Log: o.Log, Version: o.Version,
		Ready: func(addr net.Addr) {
			url := pageURL(addr)
			if o.Out != nil {
				st.banner(o.Out, url, token, user, password)
			}
			if o.Ready != nil {
				o.Ready(url, token)
			}
			if st.kept {
				return // the story plays only on a fresh database (banner)
			}
			script.Add(1)
			go func() {
				defer script.Done()
				st.play(scriptCtx, newAPI(url, token), o.Log)
			}()
		},
	})
}

// load reads the configuration: Config, or the built-in one.
// Either way the stickers' secret is one made for this run, unless the
// environment of a -c file gives one (withQRSecret).
func (o Options) load() (*config.Config, error) {
	var env []string
	if o.Config != "" {
		env = o.Env
	}
	env, err := withQRSecret(env)
	if err != nil {
		return nil, err
	}
	if o.Config == "" {
		return config.Parse(configs.DemoName, configs.Demo, env)
	}
	return config.Load(o.Config, env)
}

// demoToken is the API token of the built-in demo; configs/demo.yaml
// keeps its SHA-256.
const demoToken = "demo"

// acceptToken returns the bearer token the demo prints and its script
// uses: "demo" where the configuration accepts it for changes (the
// built-in one does); otherwise a random token, added to the
// configuration as an admin's, so that a -c file's own tokens are
// neither needed nor shown.
func acceptToken(cfg *config.Config) (string, error) {
	if canChange(cfg, demoToken) {
		return demoToken, nil
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make the demo's API token: %w", err)
	}
	token := hex.EncodeToString(raw)
	name := "demo"
	for i := 2; slices.ContainsFunc(cfg.HTTP.Tokens, func(t config.Token) bool { return t.Name == name }); i++ {
		name = fmt.Sprintf("demo-%d", i)
	}
	sum := sha256.Sum256([]byte(token))
	cfg.HTTP.Tokens = append(cfg.HTTP.Tokens, config.Token{Name: name, Role: config.RoleAdmin, SHA256: hex.EncodeToString(sum[:])})
	return token, nil
}

// canChange reports whether token is one of cfg's with a role that may
// change things (top-ups).
func canChange(cfg *config.Config, token string) bool {
	sum := sha256.Sum256([]byte(token))
	want := hex.EncodeToString(sum[:])
	return slices.ContainsFunc(cfg.HTTP.Tokens, func(t config.Token) bool {
		// The story's top-up is paid by WeChat: finance's or an admin's to record.
		return strings.EqualFold(t.SHA256, want) && (t.Role == config.RoleFinance || t.Role == config.RoleAdmin)
	})
}

// demoPassword is the password of the built-in demo's user "demo".
const demoPassword = "demo"

// acceptUser returns the user name and password a person logs in to the
// demo's page with: demo/demo where the configuration has them (the
// built-in one does); otherwise a new admin with a random password, added
// to the configuration, so that a -c file's own passwords are neither
// needed nor shown.
func acceptUser(cfg *config.Config) (name, password string, err error) {
	for _, u := range cfg.HTTP.Users {
		if u.Name == "demo" && bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(demoPassword)) == nil {
			return u.Name, demoPassword, nil
		}
	}
	password = rand.Text()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", "", fmt.Errorf("make the demo's login: %w", err)
	}
	name = "demo"
	for i := 2; slices.ContainsFunc(cfg.HTTP.Users, func(u config.User) bool { return u.Name == name }); i++ {
		name = fmt.Sprintf("demo-%d", i)
	}
	cfg.HTTP.Users = append(cfg.HTTP.Users, config.User{Name: name, Role: config.RoleAdmin, PasswordHash: string(hash)})
	return name, password, nil
}

// prepareDB opens the accounts of the database at path (story.open) and
// returns the last stored reading of every meter: a demo started again on
// its database has its meters carry on from their counters and relay
// states, so that the gateway sees neither a counter going back nor a
// relay that closed by itself. The database is closed again before the
// gateway opens it.
func prepareDB(ctx context.Context, cfg *config.Config, path string, st *story, log zerolog.Logger) (map[string]store.Reading, error) {
	db, err := store.Open(path, store.Options{LockTimeout: cfg.Storage.LockTimeout, Marker: true})
	if err != nil {
		return nil, fmt.Errorf("demo database %s: %w", path, err)
	}
	err = st.open(ctx, cfg, db, time.Now, log)
	var last map[string]store.Reading
	if err == nil {
		last, err = db.LatestReadings()
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("demo database %s: %w", path, err)
	}
	return last, nil
}

// demoBus builds the simulated meters of one bus: each draws a load that
// suits its tenant's category (or its part's constant load, loads by meter
// id) and starts from its own counter, or from its last reading in last.
// seen, if set, is given each meter.
func demoBus(cfg *config.Config, bus string, baud int, fast bool, loads map[string]float64,
	last map[string]store.Reading, seen func(string, *sim.Meter)) (*sim.Bus, error) {
	sb, err := sim.NewBus()
	if err != nil {
		return nil, err
	}
	for i, m := range cfg.MetersOn(bus) {
		model, err := cfg.ModelOf(m)
		if err != nil {
			return nil, err
		}
		base := 20000.0 // public areas: lighting, escalators, air-conditioning
		if t, ok := cfg.Tenant(m.Tenant); ok {
			base = float64(categoryLoad(t))
		}
		opts := []sim.Option{sim.WithBasePower(base), sim.WithSeed(seedOf(m.ID)), sim.WithImportWh(int64(1_000_000 + i*137_911))}
		if w, ok := loads[m.ID]; ok {
			// A part of the story draws a constant load, so that it plays
			// the same at night, when the mall's day profile is low.
			opts = append(opts, sim.WithProfile(sim.Constant(w)))
		}
		r, resumed := last[m.ID]
		if resumed {
			opts = append(opts, sim.WithImportWh(r.ImportWh))
		}
		sm, err := sim.NewMeter(model, uint8(m.Address), opts...)
		if err != nil {
			return nil, fmt.Errorf("simulated meter %s: %w", m.ID, err)
		}
		if resumed && r.Relay == "open" {
			sm.SetRelay(false)
		}
		if err := sb.Add(sm); err != nil {
			return nil, err
		}
		if seen != nil {
			seen(m.ID, sm)
		}
	}
	if !fast {
		if baud == 0 {
			baud = 9600
		}
		sb.SetWireTiming(sim.WireTiming{Baud: baud, Turnaround: simTurnaround})
	}
	return sb, nil
}

// DemoMeterPassword is the password of the demo's simulated MQTT meters:
// configs/demo.yaml holds its SHA-256.
const DemoMeterPassword = "demo-meters"

// demoMQTTMeters are the simulated Compere meters of MQTT bus b, clients of
// broker, each carrying on from its last stored counter.
func demoMQTTMeters(cfg *config.Config, b config.Bus, broker string, last map[string]store.Reading, log zerolog.Logger) ([]*comperesim.Device, error) {
	var out []*comperesim.Device
	for i, m := range cfg.MetersOn(b.Name) {
		model, ok := compere.ModelByName(m.Model)
		if !ok {
			return nil, fmt.Errorf("simulated meter %s: model %q is no Compere MQTT model", m.ID, m.Model)
		}
		base := 20000.0
		if t, ok := cfg.Tenant(m.Tenant); ok {
			base = float64(categoryLoad(t))
		}
		start := int64(1_000_000 + i*137_911)
		if r, ok := last[m.ID]; ok {
			start = r.ImportWh
		}
		d, err := comperesim.New(comperesim.Config{Model: model, ID: m.DeviceID, Broker: broker, Username: b.Username,
			Password: DemoMeterPassword, BaseW: base, ImportWh: start, Seed: seedOf(m.ID), Location: cfg.Location, FirstAfter: time.Second,
			Log: log.Level(zerolog.WarnLevel)})
		if err != nil {
			return nil, fmt.Errorf("simulated meter %s: %w", m.ID, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// freeLocalAddr returns a loopback address with a port free now.
func freeLocalAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// seedOf gives each simulated meter its own load noise.
func seedOf(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() >> 1)
}

// pageURL is the status page's address as a person would type it.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
