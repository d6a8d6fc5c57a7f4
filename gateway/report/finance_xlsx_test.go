package report

import (
	"bytes"
	"slices"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestFinance_XLSXMatchesCSV reads the workbook back with excelize and
// compares every sheet, cell by cell as the spreadsheet shows it (number
// formats applied), with the CSV's section of the same name; then checks
// that figures are numbers with their formats, headers frozen and columns
// sized.
func TestFinance_XLSXMatchesCSV(t *testing.T) {
	db, cfg := newMall(t)
	f := buildReport(t, db, cfg, "2026-11")
	var csvBuf, xlsxBuf bytes.Buffer
	if err := f.Write(&csvBuf, "csv"); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(&xlsxBuf, "xlsx"); err != nil {
		t.Fatal(err)
	}
	want, order := sections(t, csvBuf.Bytes())
	wb, err := excelize.OpenReader(&xlsxBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	if got := wb.GetSheetList(); !slices.Equal(got, order) {
		t.Fatalf("sheets %q; want %q (the summary first)", got, order)
	}
	for _, name := range order {
		rows, err := wb.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want[name]) {
			t.Errorf("sheet %q: %d rows; the CSV has %d", name, len(rows), len(want[name]))
			continue
		}
		for i := range rows {
			w := want[name][i]
			// GetRows drops a row's empty cells at its end.
			for len(w) > 0 && w[len(w)-1] == "" {
				w = w[:len(w)-1]
			}
			if !slices.Equal(rows[i], w) {
				t.Errorf("sheet %q row %d: %q; the CSV has %q", name, i+1, rows[i], w)
			}
		}
		panes, err := wb.GetPanes(name)
		if err != nil {
			t.Fatal(err)
		}
		if !panes.Freeze || panes.YSplit != 1 {
			t.Errorf("sheet %q: panes %+v; want the header row frozen", name, panes)
		}
	}

	// The figures are numbers with their formats, not text.
	for _, c := range []struct {
		sheet, cell, value, format string
	}{
		{"Summary", "B8", "94.52", "0.00"},         // revenue
		{"Summary", "B7", "126.846", "0.000"},      // charged kWh
		{"Summary", "B28", "-3.3", "0.00"},         // unmetered %
		{"Tenants", "M5", "-30.9", "0.00"},         // T-301's closing balance
		{"Windows", "B3", "86.345", "0.000"},       // peak kWh
		{"Top-ups", "H3", "1000", "0.00"},          // the bank transfer
		{"Energy balance", "F2", "0.984", "0.000"}, // the 1st's unmetered kWh
	} {
		typ, err := wb.GetCellType(c.sheet, c.cell)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := wb.GetCellValue(c.sheet, c.cell, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber || raw != c.value {
			t.Errorf("%s!%s: %q of type %v; want the number %s", c.sheet, c.cell, raw, typ, c.value)
		}
		style, err := wb.GetCellStyle(c.sheet, c.cell)
		if err != nil {
			t.Fatal(err)
		}
		st, err := wb.GetStyle(style)
		if err != nil {
			t.Fatal(err)
		}
		format := ""
		switch {
		case st.CustomNumFmt != nil:
			format = *st.CustomNumFmt
		case st.NumFmt == 2:
			format = "0.00"
		}
		if format != c.format {
			t.Errorf("%s!%s: number format %q (built-in %d); want %q", c.sheet, c.cell, format, st.NumFmt, c.format)
		}
	}
	// A tenant's name in Chinese widens its column by two a character.
	w, err := wb.GetColWidth("Tenants", "B")
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(textWidth("书店 Books, Ltd") + 2); w != want {
		t.Errorf("Tenants column B width %v; want %v", w, want)
	}
	if got := textWidth("书店 Books, Ltd"); got != 15 {
		t.Errorf("textWidth(书店 Books, Ltd) = %d; want 15 (two a CJK character)", got)
	}
}
