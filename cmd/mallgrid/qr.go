package main

import (
	"archive/zip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"mallgrid/gateway/paycode"
)

func newQRCmd() *cobra.Command {
	var file, format, out string
	var tenants []string
	cmd := &cobra.Command{
		Use:   "qr -c FILE [--tenant ID]... [--format pdf|svg|png] -o OUT",
		Short: "Print the tenants' QR payment stickers (reads the configuration only, no database)",
		Long: "qr draws each tenant's sticker: a QR code of the mall's payment page for that tenant, signed with\n" +
			"uplink.qr's secret (docs/QR.md). pdf and svg write an A4 sheet of stickers (3 × 4 a page) to OUT;\n" +
			"png writes the code alone, one file a tenant (qr-<tenant>.png), into the directory OUT, or into\n" +
			"a zip file when OUT ends in .zip. --tenant (repeatable) picks tenants, in that order; default all.\n" +
			"The secret comes from MALLGRID_UPLINK_QR_SECRET (or uplink.qr.secret). Exit 2 on a configuration problem.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "pdf" && format != "svg" && format != "png" {
				return &exitError{code: exitConfig, err: fmt.Errorf("--format %q: want pdf, svg or png", format)}
			}
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w.Error())
			}
			svc, err := paycode.NewService(cfg.Site.Name, cfg.Uplink.SiteID, cfg.Uplink.QR, cfg.Tenants)
			if errors.Is(err, paycode.ErrNotConfigured) {
				return &exitError{code: exitConfig, err: fmt.Errorf("%s: uplink.qr.url is not set: there are no stickers to print "+
					"(set uplink.site_id, uplink.qr.url and %s; see docs/QR.md)", file, "MALLGRID_UPLINK_QR_SECRET")}
			}
			if err != nil {
				return err
			}
			for _, id := range tenants {
				if _, ok := cfg.Tenant(id); !ok {
					return fmt.Errorf("--tenant %q: no such tenant in %s", id, file)
				}
			}
			if len(tenants) == 0 {
				for _, t := range cfg.Tenants {
					tenants = append(tenants, t.ID)
				}
			}
			if format == "png" {
				n, err := writePNGs(svc, tenants, out)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d codes\n", out, n)
				return nil
			}
			doc, err := svc.Sheet(tenants, format)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(out, func(f *os.File) error { _, err := f.Write(doc.Body); return err }); err != nil {
				return err
			}
			sheets := (len(tenants) + paycode.Cols*paycode.Rows - 1) / (paycode.Cols * paycode.Rows)
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d stickers on %d pages\n", out, len(tenants), max(1, sheets))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (required)")
	cmd.Flags().StringArrayVar(&tenants, "tenant", nil, "a tenant's id (repeatable); default every tenant")
	cmd.Flags().StringVar(&format, "format", "pdf", "pdf, svg (a sheet) or png (a code a tenant)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the file to write (a directory or .zip for png) (required)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// writePNGs writes each tenant's code to dir, or to a zip file when dir
// ends in .zip, and returns how many it wrote.
func writePNGs(svc *paycode.Service, tenants []string, dir string) (int, error) {
	files := make(map[string][]byte, len(tenants))
	var names []string
	for _, id := range tenants {
		doc, err := svc.Code(id, "png")
		if err != nil {
			return 0, err
		}
		if _, dup := files[doc.Filename]; dup {
			return 0, fmt.Errorf("tenants' file names clash at %s: give the tenants one at a time", doc.Filename)
		}
		files[doc.Filename] = doc.Body
		names = append(names, doc.Filename)
	}
	if strings.HasSuffix(dir, ".zip") {
		err := writeFileAtomic(dir, func(f *os.File) error {
			z := zip.NewWriter(f)
			for _, name := range names {
				w, err := z.Create(name)
				if err != nil {
					return err
				}
				if _, err := w.Write(files[name]); err != nil {
					return err
				}
			}
			return z.Close()
		})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", dir, err)
		}
		return len(names), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	for _, name := range names {
		body := files[name]
		if err := writeFileAtomic(filepath.Join(dir, name), func(f *os.File) error { _, err := f.Write(body); return err }); err != nil {
			return 0, err
		}
	}
	return len(names), nil
}
