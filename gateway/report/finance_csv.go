package report

import (
	"encoding/csv"
	"fmt"
	"io"
)

// WriteCSV writes the tables as one CSV file of sections: each starts with
// a row holding the table's name alone, then its header row and its rows,
// and ends with an empty row. One file rather than a zip of one per table:
// it opens as it is in a spreadsheet or an editor, travels as one
// attachment, and the summary stays beside the figures it sums. A program
// splits it at the rows of one field (every table has two columns or
// more; encoding/csv's reader skips the empty rows). Fields are RFC 4180 (quoted where needed),
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
