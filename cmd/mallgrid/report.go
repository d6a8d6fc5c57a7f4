package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"mallgrid/gateway/report"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The finance office's reports",
	}
	cmd.AddCommand(newReportFinanceCmd())
	return cmd
}

func newReportFinanceCmd() *cobra.Command {
	var file, month, day, format, out string
	cmd := &cobra.Command{
		Use:   "finance -c FILE --month YYYY-MM|--day YYYY-MM-DD [--format xlsx|csv] -o OUT",
		Short: "Write a month's or a day's finance report (XLSX or CSV)",
		Long: "finance writes the report of a month or a day of the site's calendar: consumption and revenue\n" +
			"by tenant, category and tariff window, allocations, top-ups by channel and operator with their\n" +
			"payment references, reversals and adjustments, prepaid liability and receivables, and the\n" +
			"building's energy balance. --format defaults to OUT's extension (.csv), else xlsx; -o - is\n" +
			"standard output.\n" +
			"It opens the database read-only, as verify does; the gateway holds it while it runs, so stop\n" +
			"it first, or ask the running gateway: GET /api/v1/reports/finance?month=YYYY-MM&format=xlsx.\n" +
			"Exit 2: configuration problems; 3: the database is damaged; 4: it is missing or not this\n" +
			"gateway's; 1: anything else (a bad month, the database locked).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("give -c FILE: the report needs the tenants, their categories and the site's timezone")
			}
			if out == "" {
				return errors.New("give -o OUT (a file, or - for standard output)")
			}
			period := month
			switch {
			case month != "" && day != "":
				return errors.New("give --month or --day, not both")
			case day != "":
				period = day
			case month == "":
				return errors.New("give --month YYYY-MM (or --day YYYY-MM-DD)")
			}
			if format == "" {
				format = "xlsx"
				if strings.EqualFold(filepath.Ext(out), ".csv") {
					format = "csv"
				}
			}
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			if out == "-" {
				return report.FinanceFile(cmd.Context(), cfg, period, format, cmd.OutOrStdout())
			}
			return writeFileAtomic(out, func(f *os.File) error { return report.FinanceFile(cmd.Context(), cfg, period, format, f) })
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "the gateway's configuration (its database, tenants and timezone)")
	cmd.Flags().StringVar(&month, "month", "", "the month, YYYY-MM")
	cmd.Flags().StringVar(&day, "day", "", "one day, YYYY-MM-DD")
	cmd.Flags().StringVar(&format, "format", "", "xlsx or csv (default: by OUT's extension, else xlsx)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the file to write, - for standard output")
	return cmd
}

// writeFileAtomic writes path through write into a temporary file beside
// it, synced to the disk and renamed over path only once complete: a
// failed report, or a power cut after the rename, leaves no half-written
// file that looks like one. The file is the owner's alone (0600, as
// os.CreateTemp makes it): it lists tenants' balances and payments.
func writeFileAtomic(path string, write func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
