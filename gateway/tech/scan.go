package tech

import (
	"context"
	"errors"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
)

// Found is an address that answered a scan.
type Found struct {
	Address int    `json:"address"`
	Model   string `json:"model,omitempty"` // the first catalogued model whose map reads back sensibly
	Import  string `json:"import_kwh,omitempty"`
	Note    string `json:"note,omitempty"` // why no model fits, when none does
}

// Scan probes each address from..to and reports those that answer. For each
// it tries the catalogue's models in order and names the first whose whole
// read plan succeeds with a plausible billing counter. An address that times
// out on the first model's read is absent and costs one timeout.
func Scan(ctx context.Context, t *modbus.Transport, from, to int, models []*meter.Model, progress func(addr int)) ([]Found, error) {
	var found []Found
	for a := from; a <= to; a++ {
		if err := ctx.Err(); err != nil {
			return found, err
		}
		if progress != nil {
			progress(a)
		}
		c := t.Client(byte(a))
		var f *Found
		for i, m := range models {
			rd, err := meter.Read(ctx, c, meter.NewPlan(m))
			if err == nil {
				if wh, ok := rd.ImportWh(); ok && wh >= 0 {
					f = &Found{Address: a, Model: m.Name, Import: kWh(wh)}
					break
				}
			}
			if i == 0 && errors.Is(err, modbus.ErrTimeout) {
				break // nothing at this address
			}
			if f == nil {
				f = &Found{Address: a, Note: "answers, but matches no catalogued model: " + modbus.ErrorKind(err)}
			}
		}
		if f != nil {
			found = append(found, *f)
		}
	}
	return found, nil
}
