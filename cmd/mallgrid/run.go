package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/gateway"
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
			out := cmd.OutOrStdout()
			journal := false
			if f, ok := out.(*os.File); ok {
				journal = underJournal(f, os.Getenv("JOURNAL_STREAM"))
			}
			log := newLogger(cfg.Log, out, journal, func() time.Time { return cfg.SiteTime(time.Now()) })
			logWarnings(log, cfg)
			return gateway.Run(cmd.Context(), gateway.Options{Config: cfg, Log: log, Version: version})
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "/etc/mallgrid/mallgrid.yaml", "configuration file")
	return cmd
}
