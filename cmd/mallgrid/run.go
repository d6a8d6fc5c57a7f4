package main

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/gateway"
	"mallgrid/gateway/config"
	"mallgrid/gateway/supervise"
)

func newRunCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the gateway daemon (what systemd starts)",
		Long: "Run the gateway daemon (what systemd starts).\n\n" +
			"SIGHUP (systemctl reload) reads FILE again: tenants, meters, tariffs, ratings and rules\n" +
			"change without a restart; a file with problems changes nothing and its problems are logged.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Caught before anything else: SIGHUP's default would end the
			// daemon, and one sent during start-up waits for it.
			reload := hangups(cmd.Context())
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			journal := false
			if f, ok := out.(*os.File); ok {
				journal = underJournal(f, os.Getenv("JOURNAL_STREAM"))
			}
			// Timed in the site's zone of the configuration in force: a
			// reload may change site.timezone (gateway.Options.InForce).
			var inForce atomic.Pointer[config.Config]
			inForce.Store(cfg)
			log := newLogger(cfg.Log, out, journal, func() time.Time { return inForce.Load().SiteTime(time.Now()) })
			logWarnings(log, cfg)
			// systemd's notify socket and watchdog, when it started us:
			// READY=1 once the gateway serves, pings while its loops move.
			sup := supervise.FromEnv(log)
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			watchdog := make(chan struct{})
			go func() {
				defer close(watchdog)
				sup.Run(ctx)
			}()
			err = gateway.Run(ctx, gateway.Options{Config: cfg, Log: log, Version: version, Supervisor: sup,
				Reload: reload, Load: func() (*config.Config, error) { return loadConfig(file) }, InForce: inForce.Store})
			stop()
			<-watchdog
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "/etc/mallgrid/mallgrid.yaml", "configuration file")
	return cmd
}

// hangups returns a channel that gets a value for each SIGHUP until ctx
// ends. Several in a row, or while a reload runs, make one reload: the
// channel holds one value and a send never waits.
func hangups(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	// The registration is kept after ctx ends: a SIGHUP during the
	// shutdown is dropped rather than ending the daemon before its buses
	// have committed their cycle.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case reload <- struct{}{}:
				default: // one is waiting already
				}
			}
		}
	}()
	return reload
}
