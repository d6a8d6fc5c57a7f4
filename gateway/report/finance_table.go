package report

import (
	"strconv"

	"mallgrid/billing"
)

// Table is one table of a finance report: a sheet of the XLSX, a section
// of the CSV. Its cells hold integers (money, Wh, basis points) until a
// writer formats them, so that both formats show the same figures.
type Table struct {
	Name    string // the sheet's name: at most 31 characters, none of []:*?/\
	Columns []string
	Rows    [][]Cell
}

// CellKind is what a cell holds and how it is shown.
type CellKind int

// The kinds of cell.
const (
	Text    CellKind = iota // Cell.Text as it is
	Amount                  // Cell.N micro-yuan (billing.Money); 0.00 in the XLSX
	Energy                  // Cell.N Wh, shown as kWh with three decimals
	Percent                 // Cell.N hundredths of a per cent; empty when Cell.Null
	Count                   // Cell.N as a whole number
)

// Cell is one value of a Table.
type Cell struct {
	Kind CellKind
	Text string
	N    int64
	Null bool // no value (a loss % of a period without main meter energy)
}

func cellText(s string) Cell                    { return Cell{Kind: Text, Text: s} }
func cellMoney(m billing.Money) Cell            { return Cell{Kind: Amount, N: int64(m)} }
func cellEnergy(wh int64) Cell                  { return Cell{Kind: Energy, N: wh} }
func cellCount(n int) Cell                      { return Cell{Kind: Count, N: int64(n)} }
func cellPercent(bp int64, ok bool) Cell        { return Cell{Kind: Percent, N: bp, Null: !ok} }
func cellID(id uint64) Cell                     { return Cell{Kind: Text, Text: strconv.FormatUint(id, 10)} }
func tableRow(cells ...Cell) []Cell             { return cells }
func summaryRow(name string, value Cell) []Cell { return []Cell{cellText(name), value} }

// String is the cell as the CSV writes it: money as exact decimal yuan
// (billing.Money.String: at least two decimals), energy as kWh to the Wh,
// a per cent with two decimals.
func (c Cell) String() string {
	if c.Null {
		return ""
	}
	switch c.Kind {
	case Amount:
		return billing.Money(c.N).String()
	case Energy:
		return kWh(c.N)
	case Percent:
		return decimal(c.N, 2)
	case Count:
		return strconv.FormatInt(c.N, 10)
	}
	return c.Text
}

// kWh writes wh as kWh with three decimals: "12.345", "-0.004".
func kWh(wh int64) string { return decimal(wh, 3) }

// decimal writes n / 10^dec with dec decimals, exactly.
func decimal(n int64, dec int) string {
	sign := ""
	u := uint64(n)
	if n < 0 {
		sign, u = "-", uint64(-(n+1))+1
	}
	s := strconv.FormatUint(u, 10)
	for len(s) <= dec {
		s = "0" + s
	}
	return sign + s[:len(s)-dec] + "." + s[len(s)-dec:]
}

// ratio returns part/whole in hundredths of a per cent, rounded half away
// from zero; ok is false when whole is 0 (no per cent of nothing).
func ratio(part, whole int64) (bp int64, ok bool) {
	if whole == 0 {
		return 0, false
	}
	num := part * 10_000
	q, r := num/whole, num%whole
	if r < 0 {
		r = -r
	}
	w := whole
	if w < 0 {
		w = -w
	}
	if 2*r >= w {
		if (num < 0) != (whole < 0) {
			q--
		} else {
			q++
		}
	}
	return q, true
}
