package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"mallgrid/gateway/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the technician's YAML"}
	var file string
	check := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Check a configuration: exit 0, or exit 2 with FILE:LINE: key: problem for every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d buses, %d meters, %d tenants)\n", file, len(cfg.Buses), len(cfg.Meters), len(cfg.Tenants))
			return nil
		},
	}
	check.Flags().StringVarP(&file, "config", "c", "", "configuration file (required)")
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
			return nil, &exitError{code: 2, err: err}
		}
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", file, err)}
	}
	return cfg, nil
}
