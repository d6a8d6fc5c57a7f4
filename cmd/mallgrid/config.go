package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"mallgrid/gateway/config"
	"mallgrid/gateway/pipeline"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the technician's YAML"}
	var file, dbPath, envFile string
	check := &cobra.Command{
		Use:   "check -c FILE [--env-file FILE] [--db FILE]",
		Short: "Check a configuration: exit 0, or exit 2 with FILE:LINE: key: problem for every problem",
		Long: "check reads the configuration and lists every problem in it (exit 2), and every warning:\n" +
			"what is legal but unwise, printed as FILE:LINE: key: warning: … (exit 0 if there is nothing else).\n" +
			"A file over 1 MiB is refused unread.\n" +
			"With --env-file it reads the unit's EnvironmentFile= (/etc/mallgrid/environment) as systemd does\n" +
			"and checks the configuration with those variables, as the service will see it.\n" +
			"With --db it also compares it with a database (read-only; stop the gateway first) and lists the drift:\n" +
			"meters and tenants the database knows that the configuration no longer names.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigEnvFile(file, envFile)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			// Warnings go where problems go; they do not change the exit
			// status: the file is legal and the daemon would start.
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w.Error())
			}
			warned := ""
			switch n := len(cfg.Warnings); n {
			case 0:
			case 1:
				warned = ", 1 warning"
			default:
				warned = fmt.Sprintf(", %d warnings", n)
			}
			fmt.Fprintf(out, "%s: ok (%d buses, %d meters, %d tenants%s)\n", file, len(cfg.Buses), len(cfg.Meters), len(cfg.Tenants), warned)
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
	check.Flags().StringVar(&envFile, "env-file", "", envFileUsage)
	_ = check.MarkFlagRequired("config")
	cmd.AddCommand(check, newConfigPathsCmd())
	return cmd
}

// newConfigPathsCmd is `config paths`: where a configuration keeps its
// database and snapshots, with the environment's overrides. The package's
// prerm records them, so that a purge — after dpkg has deleted the
// configuration — can still say where the ledger was left.
func newConfigPathsCmd() *cobra.Command {
	var file, envFile string
	cmd := &cobra.Command{
		Use:   "paths -c FILE [--env-file FILE]",
		Short: "Print where a configuration keeps its database and its snapshots",
		Long: "paths prints two lines, \"database PATH\" (storage.path) and \"snapshots DIR\" (storage.snapshots.dir),\n" +
			"as the gateway would use them with this environment. A file with problems is refused (exit 2), as by check.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigEnvFile(file, envFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database %s\nsnapshots %s\n", cfg.Storage.Path, cfg.Storage.SnapshotDir())
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (required)")
	cmd.Flags().StringVar(&envFile, "env-file", "", envFileUsage)
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// envFileUsage is the --env-file flag's help: the package's maintainer
// scripts and the README's check use it rather than a shell's `. FILE`,
// which reads the file otherwise than systemd and runs as root whatever
// it holds.
const envFileUsage = "the service's environment file (KEY=VALUE lines, read as systemd reads EnvironmentFile=), its variables over the environment's"

// logWarnings logs each of cfg's warnings once, at warn level: the daemon
// starts with them, as config check passes with them.
func logWarnings(log zerolog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn().Msg("configuration warning: " + w.Error())
	}
}

// loadConfig loads file with the environment's overrides; any problem is an
// exit-2 error listing every problem, warnings too. A file with warnings
// only loads; the caller prints or logs cfg.Warnings.
func loadConfig(file string) (*config.Config, error) {
	return loadConfigEnvFile(file, "")
}

// loadConfigEnvFile is loadConfig with envFile's variables (the unit's
// EnvironmentFile=, read as systemd reads it) over the environment's, if
// envFile is not "". An environment file that cannot be read is an exit-2
// error: the service would not start on it either.
func loadConfigEnvFile(file, envFile string) (*config.Config, error) {
	env := os.Environ()
	if envFile != "" {
		vars, err := config.ReadEnvFile(envFile)
		if err != nil {
			return nil, &exitError{code: exitConfig, err: fmt.Errorf("environment file: %w", err)}
		}
		env = append(env, vars...)
	}
	cfg, err := config.Load(file, env)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			return nil, &exitError{code: exitConfig, err: err}
		}
		return nil, &exitError{code: exitConfig, err: fmt.Errorf("%s: %w", file, err)}
	}
	return cfg, nil
}
