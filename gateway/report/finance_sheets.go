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
		return []Cell{energy(g.ChargeWh), money(g.Revenue), energy(g.AllocWh), money(g.Allocation),
			money(g.TopUps), count(g.TopUpCount), money(g.Reversals), money(g.Adjustments)}
	}
	loss, lossOK := f.Energy.Total.LossBP()
	summary := Table{Name: "Summary", Columns: []string{"item", "value"}, Rows: [][]Cell{
		pair("site", text(f.Site)),
		pair("period", text(f.Period.Label)),
		pair("from", text(f.Period.From.Format(time.RFC3339))),
		pair("to", text(f.Period.To.Format(time.RFC3339))),
		pair("timezone", text(f.Timezone)),
		pair("charged kWh", energy(f.Total.ChargeWh)),
		pair("revenue (charges)", money(f.Total.Revenue)),
		pair("allocation kWh", energy(f.Total.AllocWh)),
		pair("allocation (public areas)", money(f.Total.Allocation)),
		pair("top-ups", money(f.Total.TopUps)),
		pair("top-up count", count(f.Total.TopUpCount)),
		pair("reversals", money(f.Total.Reversals)),
		pair("reversals of charges", money(f.Reversed[store.Charge])),
		pair("reversals of top-ups", money(f.Reversed[store.TopUp])),
		pair("reversals of allocations", money(f.Reversed[store.Allocation])),
		pair("reversals of adjustments", money(f.Reversed[store.Adjustment])),
		pair("net revenue (charges less their reversals)", money(f.NetRevenue())),
		pair("adjustments", money(f.Total.Adjustments)),
		pair("opening balances", money(f.Opening)),
		pair("closing balances", money(f.Closing)),
		pair("prepaid liability (positive balances)", money(f.Liability)),
		pair("receivables (negative balances owed)", money(f.Receivables)),
		pair("main meters kWh", energy(f.Energy.Total.MainWh)),
		pair("tenant meters kWh", energy(f.Energy.Total.TenantWh)),
		pair("public meters kWh", energy(f.Energy.Total.PublicWh)),
		pair("unmetered kWh (losses)", energy(f.Energy.Total.UnmeteredWh())),
		pair("unmetered %", percent(loss, lossOK)),
	}}

	days := Table{Name: "Days", Columns: append([]string{"date"}, figureCols...)}
	for _, d := range f.Days {
		days.Rows = append(days.Rows, append([]Cell{text(d.Name)}, figureCells(d.Figures)...))
	}
	days.Rows = append(days.Rows, append([]Cell{text("total")}, figureCells(f.Total)...))

	tenants := Table{Name: "Tenants", Columns: append([]string{"tenant", "name", "category"}, append(figureCols, "opening balance", "closing balance")...)}
	for _, t := range f.Tenants {
		r := append([]Cell{text(t.Tenant), text(t.Name), text(t.Category)}, figureCells(t.Figures)...)
		tenants.Rows = append(tenants.Rows, append(r, money(t.Opening), money(t.Closing)))
	}
	tenants.Rows = append(tenants.Rows, append(append([]Cell{text("total"), text(""), text("")}, figureCells(f.Total)...), money(f.Opening), money(f.Closing)))

	categories := Table{Name: "Categories", Columns: append([]string{"category", "tenants"}, figureCols...)}
	for _, c := range f.Categories {
		categories.Rows = append(categories.Rows, append([]Cell{text(c.Name), count(c.Tenants)}, figureCells(c.Figures)...))
	}
	categories.Rows = append(categories.Rows, append([]Cell{text("total"), count(len(f.Tenants))}, figureCells(f.Total)...))

	windows := Table{Name: "Windows", Columns: []string{"window", "charged kWh", "revenue"}}
	for _, w := range f.Windows {
		windows.Rows = append(windows.Rows, row(text(w.Window), energy(w.Wh), money(w.Revenue)))
	}
	windows.Rows = append(windows.Rows, row(text("total"), energy(f.Total.ChargeWh), money(f.Total.Revenue)))

	groups := func(name, col string, gs []TopUpGroup) Table {
		t := Table{Name: name, Columns: []string{col, "count", "amount"}}
		for _, g := range gs {
			t.Rows = append(t.Rows, row(text(g.Name), count(g.Count), money(g.Amount)))
		}
		t.Rows = append(t.Rows, row(text("total"), count(f.Total.TopUpCount), money(f.Total.TopUps)))
		return t
	}

	topups := Table{Name: "Top-ups", Columns: []string{"time", "entry", "tenant", "channel", "operator", "payment reference", "receipt", "amount", "note"}}
	for _, e := range f.TopUps {
		topups.Rows = append(topups.Rows, row(text(e.Time.In(loc).Format(entryTimeLayout)), ident(e.ID), text(e.Account),
			text(e.Channel), text(e.Actor), text(e.Ref), text(e.ReceiptNo()), money(e.Amount), text(e.Note)))
	}

	corrections := Table{Name: "Corrections", Columns: []string{"time", "entry", "tenant", "kind", "reverses", "reversed kind", "reference", "operator", "amount", "note"}}
	for _, e := range f.Corrections {
		rev, revKind := text(""), text("")
		if e.Kind == store.Reversal {
			rev, revKind = ident(e.Reverses), text(string(e.ReversedKind))
			if e.ReversedKind == "" {
				revKind = text(NotFound)
			}
		}
		corrections.Rows = append(corrections.Rows, row(text(e.Time.In(loc).Format(entryTimeLayout)), ident(e.ID), text(e.Account),
			text(string(e.Kind)), rev, revKind, text(e.Ref), text(e.Actor), money(e.Amount), text(e.Note)))
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
		t.Rows = append(t.Rows, row(text(b.Label), energy(b.MainWh), energy(b.TenantWh), energy(b.PublicWh),
			energy(b.MeteredWh()), energy(b.UnmeteredWh()), percent(bp, ok)))
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
