package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"mallgrid/gateway/config"
	"mallgrid/gateway/pipeline"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the technician's YAML"}
	var file, dbPath string
	check := &cobra.Command{
		Use:   "check -c FILE [--db FILE]",
		Short: "Check a configuration: exit 0, or exit 2 with FILE:LINE: key: problem for every problem",
		Long: "check reads the configuration and lists every problem in it.\n" +
			"With --db it also compares it with a database (read-only; stop the gateway first) and lists the drift:\n" +
			"meters and tenants the database knows that the configuration no longer names.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: ok (%d buses, %d meters, %d tenants)\n", file, len(cfg.Buses), len(cfg.Meters), len(cfg.Tenants))
			if dbPath == "" {
				return nil
			}
			drift, err := pipeline.FindDriftFile(dbPath, cfg)
			if err != nil {
				return err
			}
			for _, d := range drift {
				fmt.Fprintf(out, "%s: drift: %s\n", dbPath, d)
			}
			if len(drift) == 0 {
				fmt.Fprintf(out, "%s: no drift: every meter and account it knows is in the configuration\n", dbPath)
			}
			return nil
		},
	}
	check.Flags().StringVarP(&file, "config", "c", "", "configuration file (required)")
	check.Flags().StringVar(&dbPath, "db", "", "database to compare the configuration with")
	_ = check.MarkFlagRequired("config")
	cmd.AddCommand(check)
	return cmd
}

// loadConfig loads file with the environment's overrides; any problem is an
// exit-2 error listing every problem.
func loadConfig(file string) (*config.Config, error) {
	cfg, err := config.Load(file, os.Environ())
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			return nil, &exitError{code: exitConfig, err: err}
		}
		return nil, &exitError{code: exitConfig, err: fmt.Errorf("%s: %w", file, err)}
	}
	return cfg, nil
}
