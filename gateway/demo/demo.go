package demo

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/configs"
	"mallgrid/drivers/sim"
	"mallgrid/gateway"
	"mallgrid/gateway/config"
)

// simTurnaround is a simulated meter's response time; real KPM33Bs answer
// in 5–50 ms.
const simTurnaround = 10 * time.Millisecond

// Options tune `mallgrid demo`.
type Options struct {
	Listen  string // HTTP address; "" keeps the demo file's
	Log     zerolog.Logger
	Version string
	// Fast turns off wire-time emulation: replies come as fast as the
	// pseudo-terminal carries them instead of at 9600 baud.
	Fast bool
	// Ready, if set, is called with the status page's URL.
	Ready func(url string)
}

// basePower is the simulated daytime load in W of each tenant category.
var basePower = map[string]float64{
	"restaurant": 9000, "retail": 2500, "supermarket": 30000, "entertainment": 15000, "services": 3500,
}

// Run runs the simulated mall of configs/demo.yaml: every meter is a
// simulated KPM33B on a pseudo-terminal per bus, the database is a temporary
// file, and the gateway runs on them exactly as on real buses.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Parse(configs.DemoName, configs.Demo, nil)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mallgrid-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.Storage.Path = filepath.Join(dir, "demo.db")
	if o.Listen != "" {
		cfg.HTTP.Listen = o.Listen
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
	for i, b := range cfg.Buses {
		bus, err := demoBus(cfg, b.Name, b.Baud, o.Fast)
		if err != nil {
			return err
		}
		pty, err := sim.NewPTY()
		if err != nil {
			return err
		}
		ptys = append(ptys, pty)
		cfg.Buses[i].Port = pty.Path
		sims.Add(1)
		go func() {
			defer sims.Done()
			if err := bus.ServeRTU(simCtx, pty.Master); err != nil {
				o.Log.Error().Str("bus", b.Name).Err(err).Msg("simulated bus stopped")
			}
		}()
	}

	return gateway.Run(ctx, gateway.Options{
		Config: cfg, Log: o.Log, Version: o.Version,
		Ready: func(addr net.Addr) {
			if o.Ready != nil {
				o.Ready(pageURL(addr))
			}
		},
	})
}

// demoBus builds the simulated meters of one bus: each draws a load that
// suits its tenant's category and starts from its own counter.
func demoBus(cfg *config.Config, bus string, baud int, fast bool) (*sim.Bus, error) {
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
			base = basePower[t.Category]
			if base == 0 {
				base = 3000
			}
		}
		sm, err := sim.NewMeter(model, uint8(m.Address),
			sim.WithBasePower(base),
			sim.WithSeed(seedOf(m.ID)),
			sim.WithImportWh(int64(1_000_000+i*137_911)),
		)
		if err != nil {
			return nil, fmt.Errorf("simulated meter %s: %w", m.ID, err)
		}
		if err := sb.Add(sm); err != nil {
			return nil, err
		}
	}
	if !fast {
		sb.SetWireTiming(sim.WireTiming{Baud: baud, Turnaround: simTurnaround})
	}
	return sb, nil
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
