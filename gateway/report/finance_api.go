package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// Reports answers the report endpoints: web.Reports over the store. Set
// its fields before it serves.
type Reports struct {
	DB     Source
	Config *config.Config
}

var _ web.Reports = (*Reports)(nil)

// Finance implements web.Reports: period is a month (2026-11) or a day
// (2026-11-27), format xlsx or csv; the build stops when ctx ends.
func (r *Reports) Finance(ctx context.Context, period, format string) ([]byte, error) {
	p, err := ParsePeriod(period, siteLocation(r.Config))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	f, err := BuildFinance(ctx, r.DB, r.Config, p)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := f.Write(&buf, format); err != nil {
		if errors.Is(err, ErrFormat) {
			return nil, fmt.Errorf("%w: %v", web.ErrInvalid, err)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// EnergyBalance implements web.Reports.
func (r *Reports) EnergyBalance(ctx context.Context, from, to time.Time) (web.BalanceView, error) {
	b, err := Balance(ctx, r.DB, r.Config, from, to)
	if errors.Is(err, ErrPeriod) {
		return web.BalanceView{}, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	if err != nil {
		return web.BalanceView{}, err
	}
	row := func(e EnergyBalance) web.BalanceRow {
		v := web.BalanceRow{Period: e.Label, From: e.From, To: e.To, MainKWh: kWh(e.MainWh), TenantKWh: kWh(e.TenantWh),
			PublicKWh: kWh(e.PublicWh), MeteredKWh: kWh(e.MeteredWh()), UnmeteredKWh: kWh(e.UnmeteredWh())}
		if bp, ok := e.LossBP(); ok {
			pct := decimal(bp, 2)
			v.UnmeteredPct = &pct
		}
		return v
	}
	v := web.BalanceView{From: b.From, To: b.To, MainMeters: nonNil(b.Mains), TenantMeters: nonNil(b.Tenants),
		PublicMeters: nonNil(b.Public), Days: []web.BalanceRow{}, Months: []web.BalanceRow{}, Total: row(b.Total)}
	for _, d := range b.Days {
		v.Days = append(v.Days, row(d))
	}
	for _, m := range b.Months {
		v.Months = append(v.Months, row(m))
	}
	return v, nil
}

// nonNil makes an empty list [] in JSON, not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
