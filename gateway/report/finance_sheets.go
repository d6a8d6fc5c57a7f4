package report

import (
	"time"

	"mallgrid/store"
)

// entryTimeLayout shows a posting time in the site's zone, to the second:
// the reconciliation list is matched against payment providers' records.
const entryTimeLayout = "2006-01-02 15:04:05"

// Tables returns the report as tables, the summary first: the XLSX's
// sheets and the CSV's sections, in this order.
func (f *Finance) Tables() []Table {
	loc := f.Period.From.Location()
	figureCols := []string{"charged kWh", "revenue", "allocation kWh", "allocation", "top-ups", "top-up count", "reversals", "adjustments"}
	figureCells := func(g Figures) []Cell {
		return []Cell{cellEnergy(g.ChargeWh), cellMoney(g.Revenue), cellEnergy(g.AllocWh), cellMoney(g.Allocation),
			cellMoney(g.TopUps), cellCount(g.TopUpCount), cellMoney(g.Reversals), cellMoney(g.Adjustments)}
	}
	loss, lossOK := f.Energy.Total.LossBP()
	summary := Table{Name: "Summary", Columns: []string{"item", "value"}, Rows: [][]Cell{
		summaryRow("site", cellText(f.Site)),
		summaryRow("period", cellText(f.Period.Label)),
		summaryRow("from", cellText(f.Period.From.Format(time.RFC3339))),
		summaryRow("to", cellText(f.Period.To.Format(time.RFC3339))),
		summaryRow("timezone", cellText(f.Timezone)),
		summaryRow("charged kWh", cellEnergy(f.Total.ChargeWh)),
		summaryRow("revenue (charges)", cellMoney(f.Total.Revenue)),
		summaryRow("allocation kWh", cellEnergy(f.Total.AllocWh)),
		summaryRow("allocation (public areas)", cellMoney(f.Total.Allocation)),
		summaryRow("top-ups", cellMoney(f.Total.TopUps)),
		summaryRow("top-up count", cellCount(f.Total.TopUpCount)),
		summaryRow("reversals", cellMoney(f.Total.Reversals)),
		summaryRow("reversals of charges", cellMoney(f.Reversed[store.Charge])),
		summaryRow("reversals of top-ups", cellMoney(f.Reversed[store.TopUp])),
		summaryRow("reversals of allocations", cellMoney(f.Reversed[store.Allocation])),
		summaryRow("reversals of adjustments", cellMoney(f.Reversed[store.Adjustment])),
		summaryRow("net revenue (charges less their reversals)", cellMoney(f.NetRevenue())),
		summaryRow("adjustments", cellMoney(f.Total.Adjustments)),
		summaryRow("opening balances", cellMoney(f.Opening)),
		summaryRow("closing balances", cellMoney(f.Closing)),
		summaryRow("prepaid liability (positive balances)", cellMoney(f.Liability)),
		summaryRow("receivables (negative balances owed)", cellMoney(f.Receivables)),
		summaryRow("main meters kWh", cellEnergy(f.Energy.Total.MainWh)),
		summaryRow("tenant meters kWh", cellEnergy(f.Energy.Total.TenantWh)),
		summaryRow("public meters kWh", cellEnergy(f.Energy.Total.PublicWh)),
		summaryRow("unmetered kWh (losses)", cellEnergy(f.Energy.Total.UnmeteredWh())),
		summaryRow("unmetered %", cellPercent(loss, lossOK)),
	}}

	days := Table{Name: "Days", Columns: append([]string{"date"}, figureCols...)}
	for _, d := range f.Days {
		days.Rows = append(days.Rows, append([]Cell{cellText(d.Name)}, figureCells(d.Figures)...))
	}
	days.Rows = append(days.Rows, append([]Cell{cellText("total")}, figureCells(f.Total)...))

	tenants := Table{Name: "Tenants", Columns: append([]string{"tenant", "name", "category"}, append(figureCols, "opening balance", "closing balance")...)}
	for _, t := range f.Tenants {
		r := append([]Cell{cellText(t.Tenant), cellText(t.Name), cellText(t.Category)}, figureCells(t.Figures)...)
		tenants.Rows = append(tenants.Rows, append(r, cellMoney(t.Opening), cellMoney(t.Closing)))
	}
	tenants.Rows = append(tenants.Rows, append(append([]Cell{cellText("total"), cellText(""), cellText("")}, figureCells(f.Total)...), cellMoney(f.Opening), cellMoney(f.Closing)))

	categories := Table{Name: "Categories", Columns: append([]string{"category", "tenants"}, figureCols...)}
	for _, c := range f.Categories {
		categories.Rows = append(categories.Rows, append([]Cell{cellText(c.Name), cellCount(c.Tenants)}, figureCells(c.Figures)...))
	}
	categories.Rows = append(categories.Rows, append([]Cell{cellText("total"), cellCount(len(f.Tenants))}, figureCells(f.Total)...))

	windows := Table{Name: "Windows", Columns: []string{"window", "charged kWh", "revenue"}}
	for _, w := range f.Windows {
		windows.Rows = append(windows.Rows, tableRow(cellText(w.Window), cellEnergy(w.Wh), cellMoney(w.Revenue)))
	}
	windows.Rows = append(windows.Rows, tableRow(cellText("total"), cellEnergy(f.Total.ChargeWh), cellMoney(f.Total.Revenue)))

	groups := func(name, col string, gs []TopUpGroup) Table {
		t := Table{Name: name, Columns: []string{col, "count", "amount"}}
		for _, g := range gs {
			t.Rows = append(t.Rows, tableRow(cellText(g.Name), cellCount(g.Count), cellMoney(g.Amount)))
		}
		t.Rows = append(t.Rows, tableRow(cellText("total"), cellCount(f.Total.TopUpCount), cellMoney(f.Total.TopUps)))
		return t
	}

	topups := Table{Name: "Top-ups", Columns: []string{"time", "entry", "tenant", "channel", "operator", "payment reference", "receipt", "amount", "note"}}
	for _, e := range f.TopUps {
		topups.Rows = append(topups.Rows, tableRow(cellText(e.Time.In(loc).Format(entryTimeLayout)), cellID(e.ID), cellText(e.Account),
			cellText(e.Channel), cellText(e.Actor), cellText(e.Ref), cellText(e.ReceiptNo()), cellMoney(e.Amount), cellText(e.Note)))
	}

	corrections := Table{Name: "Corrections", Columns: []string{"time", "entry", "tenant", "kind", "reverses", "reversed kind", "reference", "operator", "amount", "note"}}
	for _, e := range f.Corrections {
		rev, revKind := cellText(""), cellText("")
		if e.Kind == store.Reversal {
			rev, revKind = cellID(e.Reverses), cellText(string(e.ReversedKind))
			if e.ReversedKind == "" {
				revKind = cellText(NotFound)
			}
		}
		corrections.Rows = append(corrections.Rows, tableRow(cellText(e.Time.In(loc).Format(entryTimeLayout)), cellID(e.ID), cellText(e.Account),
			cellText(string(e.Kind)), rev, revKind, cellText(e.Ref), cellText(e.Actor), cellMoney(e.Amount), cellText(e.Note)))
	}

	return []Table{summary, days, tenants, categories, windows,
		groups("Top-ups by channel", "channel", f.Channels), groups("Top-ups by operator", "operator", f.Operators),
		topups, corrections, f.Energy.table()}
}

// table is the balance as a report's sheet: a row per day, then per
// month (of a span longer than a day).
func (r BalanceReport) table() Table {
	t := Table{Name: "Energy balance", Columns: []string{"period", "main kWh", "tenant kWh", "public kWh", "metered kWh", "unmetered kWh", "unmetered %"}}
	add := func(b EnergyBalance) {
		bp, ok := b.LossBP()
		t.Rows = append(t.Rows, tableRow(cellText(b.Label), cellEnergy(b.MainWh), cellEnergy(b.TenantWh), cellEnergy(b.PublicWh),
			cellEnergy(b.MeteredWh()), cellEnergy(b.UnmeteredWh()), cellPercent(bp, ok)))
	}
	for _, d := range r.Days {
		add(d)
	}
	if len(r.Days) > 1 { // a day's month row would only repeat the day
		for _, m := range r.Months {
			add(m)
		}
	}
	return t
}
