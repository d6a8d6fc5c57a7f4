package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"mallgrid/gateway"
)

func newVerifyCmd() *cobra.Command {
	var file, dbPath string
	cmd := &cobra.Command{
		Use:   "verify -c FILE|--db FILE",
		Short: "Check the ledger's invariants; exit 1 on any violation",
		Long: "verify recomputes every balance from the ledger's entries and checks each entry's rules.\n" +
			"It opens the database read-only; the gateway holds it while it runs, so stop it first.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case (file == "") == (dbPath == ""):
				return errors.New("give -c FILE or --db FILE")
			case file != "":
				cfg, err := loadConfig(file)
				if err != nil {
					return err
				}
				dbPath = cfg.Storage.Path
			}
			report, err := gateway.VerifyFile(dbPath)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, v := range report.Violations {
				fmt.Fprintln(out, v)
			}
			if len(report.Violations) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%s: %d violation(s)", dbPath, len(report.Violations))}
			}
			fmt.Fprintf(out, "%s: ledger ok (%d accounts, %d entries)\n", dbPath, report.Accounts, report.Entries)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration whose database to check")
	cmd.Flags().StringVar(&dbPath, "db", "", "database file to check")
	return cmd
}
