package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/store"
)

func newDBCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "The gateway's database: start a new one on purpose"}
	var (
		file, dbPath string
		force        bool
	)
	initCmd := &cobra.Command{
		Use:   "init -c FILE|--db FILE [--force]",
		Short: "Start a new, empty database (a new ledger) on purpose",
		Long: "init creates a new, empty database at the configuration's storage path and writes its marker\n" +
			"(the path with .id added), so that `mallgrid run` takes it. The gateway never does this by itself:\n" +
			"once it has run, it refuses to start on a missing, empty or different database.\n\n" +
			"A valid database already there is refused unless --force is given; with --force, or for a damaged\n" +
			"or empty file, the old file is renamed aside (PATH.replaced-TIME), never deleted.\n" +
			"Stop the gateway first: a database in use is refused.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := databasePath(file, dbPath)
			if err != nil {
				return err
			}
			done, err := store.Init(path, store.InitOptions{Force: force, Now: time.Now()})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if done.KeptAs != "" {
				fmt.Fprintf(out, "%s: the file that was there is kept as %s\n", path, done.KeptAs)
			}
			fmt.Fprintf(out, "%s: new, empty database %s; marker %s written\n", path, done.ID, store.MarkerPath(path))
			return nil
		},
	}
	initCmd.Flags().StringVarP(&file, "config", "c", "", "configuration whose database to start")
	initCmd.Flags().StringVar(&dbPath, "db", "", "database file to start")
	initCmd.Flags().BoolVar(&force, "force", false, "start a new database even where a valid one is (the old one is kept aside)")
	cmd.AddCommand(initCmd)
	return cmd
}

// databasePath is the database file a command works on: --db FILE, or the
// storage path of the configuration -c FILE (one of them, not both).
func databasePath(configFile, dbPath string) (string, error) {
	switch {
	case (configFile == "") == (dbPath == ""):
		return "", errors.New("give -c FILE or --db FILE")
	case configFile != "":
		cfg, err := loadConfig(configFile)
		if err != nil {
			return "", err
		}
		return cfg.Storage.Path, nil
	}
	return dbPath, nil
}
