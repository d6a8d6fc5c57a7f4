package main

import (
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/gateway/config"
	"mallgrid/gateway/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		file, db, listen string
		fast             bool
	)
	cmd := &cobra.Command{
		Use:   "demo [-c FILE] [--db FILE] [--listen :8080]",
		Short: "Run a simulated mall: simulated meters, a temporary database, the status page, and a story to watch",
		Long: "Runs the gateway on simulated meters. Every tenant is opened with a top-up; within two minutes one is\n" +
			"warned, one runs out and is cut off, and the demo tops it up through the API, which restores it.\n" +
			"The status page's URL and the API token are printed at the start.\n\n" +
			"-c FILE runs the mall of a configuration file instead of the built-in one (configs/demo.yaml): its\n" +
			"meters become simulated meters, its buses pseudo-terminals; its storage.path is never used.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(config.Log{Format: "console"}, cmd.ErrOrStderr(), false, time.Now)
			err := demo.Run(cmd.Context(), demo.Options{
				Config: file, Env: os.Environ(), DB: db, Listen: listen,
				Log: log, Version: version, Fast: fast, Out: cmd.OutOrStdout(),
			})
			var ps config.Problems
			if errors.As(err, &ps) {
				return &exitError{code: exitConfig, err: err}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file of the simulated mall (default: the built-in configs/demo.yaml)")
	cmd.Flags().StringVar(&db, "db", "", "database file, kept between runs (default: a temporary one); never a real gateway's")
	cmd.Flags().StringVar(&listen, "listen", "", "HTTP listen address (default: the configuration's http.listen, 127.0.0.1:8080 for the built-in mall)")
	cmd.Flags().BoolVar(&fast, "fast", false, "answer at pseudo-terminal speed instead of emulating 9600 baud")
	return cmd
}
