package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/gateway/backup"
	"mallgrid/gateway/verify"
	"mallgrid/store"
)

// stopHint is what to do about a database the running gateway holds.
const stopHint = "stop the gateway: systemctl stop mallgrid"

func newRestoreCmd() *cobra.Command {
	var (
		file, dbPath string
		force        bool
	)
	cmd := &cobra.Command{
		Use:   "restore -c FILE|--db FILE BACKUP [--force]",
		Short: "Install a backup as the database, the gateway stopped",
		Long: "restore checks BACKUP (a database, not damaged, of a schema this gateway knows; an older one is\n" +
			"upgraded), copies it beside the database, runs verify's ledger rules on the copy, then keeps the\n" +
			"current file aside (PATH.replaced-TIME, never deleted), puts the copy in its place and writes the\n" +
			"marker naming it. BACKUP itself is only read. Nothing changes if a check fails.\n" +
			"A backup of another database than the marker names (or, with no marker, than the current file\n" +
			"is: from before `db init --force`, or another gateway's) is refused unless --force is given.\n" +
			"The gateway must be stopped: restore refuses while it holds the database or answers on its\n" +
			"control socket (exit 1), and holds the database's lock itself until the marker is written.\n" +
			"Exit 1: refused (gateway running, ledger violations); 3: BACKUP is damaged; 4: BACKUP is another\n" +
			"database (without --force), missing, empty, or of a newer schema than this gateway's.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := databasePath(file, dbPath)
			if err != nil {
				return err
			}
			bak := args[0]
			done, err := store.Restore(path, bak, store.RestoreOptions{Force: force, Now: time.Now(), Check: checkLedger, Socket: backup.SocketPath(path)})
			switch {
			case errors.Is(err, store.ErrLocked):
				return &exitError{code: exitFailure, err: fmt.Errorf("mallgrid: %s is in use by the running gateway; %s, run the restore again, then systemctl start mallgrid (nothing was changed)", path, stopHint)}
			case errors.Is(err, store.ErrCorrupt):
				return &exitError{code: exitDamaged, err: fmt.Errorf("mallgrid: %w\nthe backup is damaged; nothing was changed: try an older backup or snapshot", err)}
			case errors.Is(err, store.ErrReplaced), errors.Is(err, store.ErrMissing), errors.Is(err, store.ErrEmpty):
				return &exitError{code: exitRefused, err: fmt.Errorf("mallgrid: %w\nnothing was changed", err)}
			case err != nil:
				return err
			}
			out := cmd.OutOrStdout()
			if done.KeptAs != "" {
				fmt.Fprintf(out, "%s: the database that was there is kept as %s\n", path, done.KeptAs)
			}
			upgraded := ""
			if done.Upgraded {
				upgraded = fmt.Sprintf(", upgraded from schema %d to %d", done.Schema, store.SchemaVersion)
			}
			fmt.Fprintf(out, "%s: restored from %s%s; marker %s names database %s\n", path, bak, upgraded, store.MarkerPath(path), done.ID)
			info, err := store.Inspect(path)
			if err != nil {
				return err
			}
			describe(out, info)
			fmt.Fprintln(out, "Start the gateway: systemctl start mallgrid")
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration whose database to restore")
	cmd.Flags().StringVar(&dbPath, "db", "", "database file to restore")
	cmd.Flags().BoolVar(&force, "force", false, "restore a backup of another database than the marker names (the marker is rewritten)")
	return cmd
}

// checkLedger runs verify's rules on the copy restore is about to install.
func checkLedger(path string) error {
	report, err := verify.File(path)
	if err != nil {
		return err
	}
	if n := len(report.Violations); n > 0 {
		return fmt.Errorf("verify found %d ledger violation(s), the first: %v; run `mallgrid verify --db BACKUP` to see them all", n, report.Violations[0])
	}
	return nil
}
