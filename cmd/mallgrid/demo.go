package main

import (
	"fmt"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"mallgrid/gateway/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		listen string
		fast   bool
	)
	cmd := &cobra.Command{
		Use:   "demo [--listen :8080]",
		Short: "Run a simulated mall: simulated meters, a temporary database, the status page",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zerolog.New(zerolog.ConsoleWriter{Out: cmd.ErrOrStderr(), NoColor: true, TimeFormat: "15:04:05"}).
				With().Timestamp().Logger().Level(zerolog.InfoLevel)
			return demo.Run(cmd.Context(), demo.Options{
				Listen: listen, Log: log, Version: version, Fast: fast,
				Ready: func(url string) {
					fmt.Fprintf(cmd.OutOrStdout(), "mallgrid demo: status page on %s (Ctrl-C to stop)\n", url)
				},
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	cmd.Flags().BoolVar(&fast, "fast", false, "answer at pseudo-terminal speed instead of emulating 9600 baud")
	return cmd
}
