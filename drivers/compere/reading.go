package compere

import (
	"time"

	"mallgrid/drivers/meter"
)

// Reading is a meter.Reading made of Compere messages, with what the
// caller needs beside it to judge the counter.
type Reading struct {
	// Reading holds the same quantities, in the same units, as a Modbus
	// meter's. Meter and Time are the caller's to set.
	meter.Reading
	// MeterTime and ClockErr are the energy message's clock (the
	// real-time one's if there is none): see Header.
	MeterTime time.Time
	ClockErr  error
	// ZeroFrame is set when a message given was a zero frame: the
	// reading must never be billed (billing/counter.Reading.ZeroFrame).
	ZeroFrame bool
}

// NewReading turns an MQTT_RT_DATA and/or an MQTT_ENY_NOW message (either
// may be nil) into a Reading. Counters go in as exact Wh (meter.SetWh);
// reactive and apparent power, which meter.Reading has no quantity for,
// are left out.
func NewReading(rt *RTData, e *Energy) Reading {
	var r Reading
	if rt != nil {
		r.MeterTime, r.ClockErr = rt.Clock, rt.ClockErr
		r.ZeroFrame = rt.ZeroFrame
		set := func(q meter.Quantity, v Value) {
			if v.OK {
				r.Set(q, v.X)
			}
		}
		for i, q := range [3]meter.Quantity{meter.VoltageA, meter.VoltageB, meter.VoltageC} {
			set(q, rt.Voltage[i])
		}
		for i, q := range [3]meter.Quantity{meter.CurrentA, meter.CurrentB, meter.CurrentC} {
			set(q, rt.Current[i])
		}
		for i, q := range [4]meter.Quantity{meter.PowerA, meter.PowerB, meter.PowerC, meter.Power} {
			set(q, rt.Power[i])
		}
		for i, q := range [4]meter.Quantity{meter.PFA, meter.PFB, meter.PFC, meter.PF} {
			set(q, rt.PF[i])
		}
		for i, q := range [4]meter.Quantity{meter.TempA, meter.TempB, meter.TempC, meter.TempN} {
			set(q, rt.Temp[i])
		}
		set(meter.Frequency, rt.Frequency)
		set(meter.ResidualCurrent, rt.Residual)
	}
	if e != nil {
		r.MeterTime, r.ClockErr = e.Clock, e.ClockErr
		r.ZeroFrame = r.ZeroFrame || e.ZeroFrame
		set := func(q meter.Quantity, c Counter) {
			if c.OK {
				r.SetWh(q, c.Wh)
			}
		}
		set(meter.Import, e.Import)
		set(meter.Export, e.Export)
		for i, q := range [4]meter.Quantity{meter.Sharp, meter.Peak, meter.Flat, meter.Valley} {
			set(q, e.Rates[i])
		}
	}
	return r
}
