package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"mallgrid/gateway/verify"
	"mallgrid/store"
)

func newVerifyCmd() *cobra.Command {
	var file, dbPath string
	cmd := &cobra.Command{
		Use:   "verify -c FILE|--db FILE",
		Short: "Check the ledger's invariants; exit 1 on any violation",
		Long: "verify recomputes every balance from the ledger's entries and checks each entry's rules,\n" +
			"every alarm against its events, and the audit log's hash chain; it prints the newest audit\n" +
			"hash to keep elsewhere.\n" +
			"It opens the database read-only; the gateway holds it while it runs, so stop it first.\n" +
			"A file of an older schema (a backup, a snapshot from before an upgrade) is checked on a copy\n" +
			"upgraded in the temporary directory ($TMPDIR, room for one copy), removed afterwards.\n" +
			"Exit 1: ledger violations; 3: the file is damaged; 4: it is missing, empty, or not the\n" +
			"database this gateway ran with (its marker names another).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := databasePath(file, dbPath)
			if err != nil {
				return err
			}
			report, err := verify.File(path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if report.UpgradedFrom > 0 {
				fmt.Fprintf(out, "%s: schema %d, older than this gateway's %d: checked on a temporary copy upgraded to %d (the file was only read)\n",
					path, report.UpgradedFrom, store.SchemaVersion, store.SchemaVersion)
			}
			for _, v := range report.Violations {
				fmt.Fprintln(out, v)
			}
			if len(report.Violations) > 0 {
				return &exitError{code: exitFailure, err: fmt.Errorf("%s: %d violation(s)", path, len(report.Violations))}
			}
			fmt.Fprintf(out, "%s: ledger ok (%d accounts, %d entries)\n", path, report.Accounts, report.Entries)
			// The newest hash, written down elsewhere, is what later shows
			// the log was not rewritten up to it.
			if report.Alarms > 0 {
				fmt.Fprintf(out, "%s: alarms follow their events (%d alarms, %d open)\n", path, report.Alarms, report.OpenAlarms)
			}
			if report.AuditRecords > 0 {
				fmt.Fprintf(out, "%s: audit log whole (%d records; newest hash %s)\n", path, report.AuditRecords, report.AuditLast)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration whose database to check")
	cmd.Flags().StringVar(&dbPath, "db", "", "database file to check")
	return cmd
}
