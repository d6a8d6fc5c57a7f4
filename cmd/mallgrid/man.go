package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd writes the manual pages of every command (mallgrid.1,
// mallgrid-run.1, …) from the commands themselves, so the pages the package
// installs never disagree with --help. Hidden: it serves the build
// (make deb), not the technician.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the manual pages of every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			date, err := manDate(os.Getenv("SOURCE_DATE_EPOCH"), time.Now)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			header := &doc.GenManHeader{
				Title:   "MALLGRID",
				Section: "1",
				Date:    &date,
				Source:  "mallgrid " + version,
				Manual:  "mallgrid manual",
			}
			root := cmd.Root()
			// The pages describe the tool, not the completion scripts cobra
			// adds while executing (already added by now).
			for _, c := range root.Commands() {
				if c.Name() == "completion" {
					root.RemoveCommand(c)
				}
			}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			return nil
		},
	}
}

// manDate is the date printed in the pages' footer: SOURCE_DATE_EPOCH when
// the build sets it (reproducible builds: the same commit gives the same
// package), otherwise today.
func manDate(epoch string, now func() time.Time) (time.Time, error) {
	if epoch == "" {
		return now().UTC(), nil
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("man: SOURCE_DATE_EPOCH %q: not a number of seconds", epoch)
	}
	return time.Unix(sec, 0).UTC(), nil
}
