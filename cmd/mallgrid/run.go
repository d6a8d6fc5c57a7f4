package main

import (
	"io"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"mallgrid/gateway"
	"mallgrid/gateway/config"
)

func newRunCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the gateway daemon (what systemd starts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.OutOrStdout())
			logWarnings(log, cfg)
			return gateway.Run(cmd.Context(), gateway.Options{Config: cfg, Log: log, Version: version})
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "/etc/mallgrid/mallgrid.yaml", "configuration file")
	return cmd
}

// newLogger builds the daemon's logger: JSON lines (what journald stores) or
// human-readable console output without colour or time, since journald adds
// its own timestamp.
func newLogger(c config.Log, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if c.Format == "console" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}})
	} else {
		log = zerolog.New(w).With().Timestamp().Logger()
	}
	return log.Level(level)
}
