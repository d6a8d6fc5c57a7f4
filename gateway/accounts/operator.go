package accounts

import (
	"context"
	"fmt"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/web"
)

// Operator is web.Operator over the pipeline: an operator's release of a
// held jump and record of a meter exchange.
type Operator struct {
	Pipeline *pipeline.Pipeline
	Now      func() time.Time
}

// Release implements web.Operator: the held jump is billed, once.
func (o *Operator) Release(_ context.Context, meterID string, req web.ReleaseRequest, actor string) (web.OperatorResult, error) {
	var held *int64
	if req.HeldKWh != "" {
		wh, err := meter.ParseKWh(req.HeldKWh)
		if err != nil {
			return web.OperatorResult{}, fmt.Errorf("%w: held_kwh: %v", web.ErrInvalid, err)
		}
		held = &wh
	}
	return o.Pipeline.Release(meterID, held, actor, req.Reason, o.Now())
}

// Exchange implements web.Operator: the exchange record is applied, once.
func (o *Operator) Exchange(_ context.Context, meterID string, req web.ExchangeRequest, actor string) (web.OperatorResult, error) {
	oldFinal, err := meter.ParseKWh(req.OldFinalKWh)
	if err != nil {
		return web.OperatorResult{}, fmt.Errorf("%w: old_final_kwh: %v", web.ErrInvalid, err)
	}
	newStart, err := meter.ParseKWh(req.NewStartKWh)
	if err != nil {
		return web.OperatorResult{}, fmt.Errorf("%w: new_start_kwh: %v", web.ErrInvalid, err)
	}
	now := o.Now()
	var at time.Time // not given: Exchange places it
	if req.At != "" {
		when, err := time.Parse(time.RFC3339, req.At)
		if err != nil || when.After(now) {
			return web.OperatorResult{}, fmt.Errorf("%w: at %q: want the RFC 3339 time the meter was exchanged, not in the future", web.ErrInvalid, req.At)
		}
		at = when.In(now.Location()) // the gateway's zone, the site's: texts and the stored break name it so
	}
	return o.Pipeline.Exchange(meterID, oldFinal, newStart, actor, req.Reason, at, now)
}
