package report

import (
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// Column widths, in characters.
const (
	minColWidth = 8
	maxColWidth = 60
)

// WriteXLSX writes the tables as a workbook, one sheet per table in their
// order (the summary first). Each sheet's first row is its header, bold and
// frozen; money has the number format 0.00, energy (kWh) 0.000, a per cent
// 0.00; columns are as wide as their widest text. Numbers are written as
// numbers, so that the spreadsheet sums them: a cell holds an IEEE double,
// which keeps every amount up to billing.MaxMoney to the fen and every
// energy below 10¹² kWh to the Wh. The figures are integers until here.
func WriteXLSX(w io.Writer, tables []Table) error {
	f := excelize.NewFile()
	defer f.Close()
	st, err := newStyles(f)
	if err != nil {
		return err
	}
	for i, t := range tables {
		if i == 0 {
			if err := f.SetSheetName(f.GetSheetName(0), t.Name); err != nil {
				return fmt.Errorf("report: xlsx sheet %q: %w", t.Name, err)
			}
		} else if _, err := f.NewSheet(t.Name); err != nil {
			return fmt.Errorf("report: xlsx sheet %q: %w", t.Name, err)
		}
		if err := writeSheet(f, st, t); err != nil {
			return fmt.Errorf("report: xlsx sheet %q: %w", t.Name, err)
		}
	}
	f.SetActiveSheet(0)
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	return nil
}

type styles struct{ header, money, energy, percent, count int }

func newStyles(f *excelize.File) (styles, error) {
	var s styles
	three := "0.000"
	for _, x := range []struct {
		id    *int
		style excelize.Style
	}{
		{&s.header, excelize.Style{Font: &excelize.Font{Bold: true}}},
		{&s.money, excelize.Style{NumFmt: 2}}, // 0.00
		{&s.energy, excelize.Style{CustomNumFmt: &three}},
		{&s.percent, excelize.Style{NumFmt: 2}},
		{&s.count, excelize.Style{NumFmt: 1}}, // 0
	} {
		id, err := f.NewStyle(&x.style)
		if err != nil {
			return s, fmt.Errorf("report: xlsx style: %w", err)
		}
		*x.id = id
	}
	return s, nil
}

func writeSheet(f *excelize.File, st styles, t Table) error {
	sw, err := f.NewStreamWriter(t.Name)
	if err != nil {
		return err
	}
	// The stream writer takes widths and panes before the first row.
	widths := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		widths[i] = textWidth(c)
	}
	for _, r := range t.Rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], textWidth(c.String()))
			}
		}
	}
	for i, w := range widths {
		if err := sw.SetColWidth(i+1, i+1, float64(min(max(w+2, minColWidth), maxColWidth))); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	header := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = excelize.Cell{StyleID: st.header, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	for n, r := range t.Rows {
		values := make([]any, len(r))
		for i, c := range r {
			values[i] = st.cell(c)
		}
		cell, err := excelize.CoordinatesToCellName(1, n+2)
		if err != nil {
			return err
		}
		if err := sw.SetRow(cell, values); err != nil {
			return err
		}
	}
	return sw.Flush()
}

// cell is c as the workbook holds it: the one place figures become
// floating point, for the spreadsheet's arithmetic.
func (st styles) cell(c Cell) excelize.Cell {
	if c.Null {
		return excelize.Cell{}
	}
	switch c.Kind {
	case Amount:
		return excelize.Cell{StyleID: st.money, Value: float64(c.N) / 1e6}
	case Energy:
		return excelize.Cell{StyleID: st.energy, Value: float64(c.N) / 1e3}
	case Percent:
		return excelize.Cell{StyleID: st.percent, Value: float64(c.N) / 1e2}
	case Count:
		return excelize.Cell{StyleID: st.count, Value: c.N}
	}
	return excelize.Cell{Value: c.Text}
}

// textWidth is s's width in a spreadsheet's columns: a CJK character (a
// tenant's name in Chinese) is two.
func textWidth(s string) int {
	w := 0
	for _, r := range s {
		if r >= 0x1100 && utf8.RuneLen(r) >= 3 {
			w += 2
		} else {
			w++
		}
	}
	return w
}
