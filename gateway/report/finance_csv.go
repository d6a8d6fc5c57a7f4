package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
)

// WriteCSV writes the tables as one CSV file of sections: each starts with
// a row holding the table's name alone, then its header row and its rows,
// and ends with an empty row. One file rather than a zip of one per table:
// it opens as it is in a spreadsheet or an editor, travels as one
// attachment, and the summary stays beside the figures it sums. A program
// splits it at the rows of one field (every table has two columns or
// more; encoding/csv's reader skips the empty rows). A text cell that a
// spreadsheet would read as a formula starts with an apostrophe (csvText);
// numbers are written as they are. Fields are RFC 4180 (quoted where needed),
// UTF-8 without a byte-order mark, lines end in CRLF as RFC 4180 says.
func WriteCSV(w io.Writer, tables []Table) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	for _, t := range tables {
		if err := cw.Write([]string{t.Name}); err != nil {
			return fmt.Errorf("report: csv: %w", err)
		}
		if err := cw.Write(t.Columns); err != nil {
			return fmt.Errorf("report: csv: %w", err)
		}
		for _, r := range t.Rows {
			rec := make([]string, len(r))
			for i, c := range r {
				rec[i] = c.String()
				if c.Kind == Text {
					rec[i] = csvText(rec[i])
				}
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("report: csv: %w", err)
			}
		}
		// encoding/csv writes an empty record as an empty line: the
		// sections' separator.
		if err := cw.Write(nil); err != nil {
			return fmt.Errorf("report: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: csv: %w", err)
	}
	return nil
}

// csvText is a text cell as the CSV holds it: one starting with = + - @,
// a tab or a carriage return gets an apostrophe in front, so a spreadsheet
// opening the file shows it as text instead of running it as a formula — a
// payment reference, a note, an operator's or a tenant's name comes from
// outside (=HYPERLINK(...) would open a link, @SUM(...) compute). The
// apostrophe stays visible in an editor; the XLSX needs none (its text
// cells are strings, never formulas).
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
