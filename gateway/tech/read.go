package tech

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
)

// Read reads every register of model from the meter at addr, and its relay
// if the model has one.
func Read(ctx context.Context, t *modbus.Transport, addr byte, model *meter.Model) (meter.Reading, error) {
	c := t.Client(addr)
	rd, err := meter.Read(ctx, c, meter.NewPlan(model))
	if err != nil {
		return meter.Reading{}, err
	}
	if model.Relay != nil {
		if rd.Relay, err = meter.ReadRelay(ctx, c, model); err != nil {
			return meter.Reading{}, err
		}
	}
	rd.Time = time.Now()
	return rd, nil
}

// Relay switches the relay of the meter at addr (closed = power on), having
// set remote-control mode if the model needs it, and returns the state read
// back afterwards.
func Relay(ctx context.Context, t *modbus.Transport, addr byte, model *meter.Model, closed bool) (meter.RelayState, error) {
	return meter.SwitchRelay(ctx, t.Client(addr), model, closed)
}

// WriteReading prints every value of rd with its unit, one per line, in the
// model's display order; energy counters are exact kWh from integer Wh.
func WriteReading(w io.Writer, model *meter.Model, addr byte, rd meter.Reading) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "meter\t%s (%s), address %d\n", model.Title, model.Name, addr)
	for _, q := range rd.Quantities() {
		unit := q.Unit()
		if q.IsEnergy() {
			wh, _ := rd.EnergyWh(q)
			fmt.Fprintf(tw, "%s\t%s\t%s\n", q, meter.FormatKWh(wh), unit)
			continue
		}
		v, _ := rd.Value(q)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", q, trimFloat(v), unit)
	}
	if model.Relay != nil {
		fmt.Fprintf(tw, "relay\t%s\t\n", rd.Relay)
	}
	return tw.Flush()
}

// ReadingJSON is the --json form of a reading: values as numbers with units,
// energy as exact decimal kWh strings.
type ReadingJSON struct {
	Model   string            `json:"model"`
	Address int               `json:"address"`
	Time    time.Time         `json:"time"`
	Values  map[string]Value  `json:"values"`
	Energy  map[string]string `json:"energy_kwh"`
	Relay   string            `json:"relay,omitempty"`
}

// Value is a measurement with its unit.
type Value struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// WriteReadingJSON prints rd as one JSON object.
func WriteReadingJSON(w io.Writer, model *meter.Model, addr byte, rd meter.Reading) error {
	out := ReadingJSON{Model: model.Name, Address: int(addr), Time: rd.Time, Values: map[string]Value{}, Energy: map[string]string{}}
	for _, q := range rd.Quantities() {
		if q.IsEnergy() {
			wh, _ := rd.EnergyWh(q)
			out.Energy[string(q)] = meter.FormatKWh(wh)
			continue
		}
		v, _ := rd.Value(q)
		out.Values[string(q)] = Value{Value: v, Unit: q.Unit()}
	}
	if model.Relay != nil {
		out.Relay = rd.Relay.String()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
