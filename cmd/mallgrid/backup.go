package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/gateway/backup"
	"mallgrid/store"
)

func newBackupCmd() *cobra.Command {
	var (
		file, dbPath string
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "backup -c FILE|--db FILE OUT",
		Short: "Write a consistent copy of the database to OUT, the gateway running or not",
		Long: "backup writes a copy of the database to OUT: from the running gateway, over its control socket\n" +
			"(the database's path with .ctl added), while it goes on working; or, where no gateway runs, from the\n" +
			"file itself. OUT is written to a temporary file beside it, synced and renamed, then opened and\n" +
			"checked: a database of a schema this gateway reads, with the identity of the one copied.\n" +
			"OUT may not be the database nor any file beside it named after it (PATH.id, PATH.ctl, …): exit 2.\n" +
			"It prints what was written: size, identity, schema, and the newest ledger entry.\n" +
			"Run it as the gateway's user (or root): the socket is 0600.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := databasePath(file, dbPath)
			if err != nil {
				return err
			}
			taken, err := backup.Take(cmd.Context(), path, args[0], timeout)
			if errors.Is(err, backup.ErrOutIsDatabase) {
				// A mistyped command line, like a bad configuration: nothing
				// was written, and nothing at the database changed.
				return &exitError{code: exitConfig, err: fmt.Errorf("mallgrid: %w", err)}
			}
			if err != nil {
				return err
			}
			from := "from the file (no gateway running)"
			if taken.FromDaemon {
				from = "from the running gateway"
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: backup of %s %s\n", args[0], path, from)
			describe(out, taken.Info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration whose database to back up")
	cmd.Flags().StringVar(&dbPath, "db", "", "database file to back up")
	cmd.Flags().DurationVar(&timeout, "timeout", backup.DefaultTimeout, "longest wait for each read from the running gateway")
	return cmd
}

// describe prints what a database file is: the lines backup and restore
// end with.
func describe(out io.Writer, info store.Info) {
	id := info.ID
	if id == "" {
		id = "(none: from before identities)"
	}
	fmt.Fprintf(out, "  %d bytes, database %s, schema %d\n", info.Size, id, info.Schema)
	if info.Newest == nil {
		fmt.Fprintln(out, "  ledger: no entries")
		return
	}
	e := info.Newest
	fmt.Fprintf(out, "  ledger: %d entries; newest #%d %s %s %s on %s\n", info.Entries, e.ID,
		e.Time.UTC().Format(time.RFC3339), e.Kind, e.Amount, e.Account)
}
