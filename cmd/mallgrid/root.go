package main

import (
	"fmt"
	"github.com/spf13/cobra"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "mallgrid",
		Short:         "Prepaid electricity gateway for shopping malls",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newRunCmd(),
		newDemoCmd(),
		newConfigCmd(),
		newMeterCmd(),
		newSimCmd(),
		newBillingCmd(),
		newVerifyCmd(),
		newReportCmd(),
		newDBCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newQRCmd(),
		newVersionCmd(),
		newManCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "mallgrid", version)
			return nil
		},
	}
}
