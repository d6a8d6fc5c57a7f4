package meter

import (
	"fmt"
	"strings"
	"time"
)

// RelayState is what a meter's load-control relay reports.
type RelayState uint8

// Relay states. Open means the tenant's power is cut.
const (
	RelayUnknown RelayState = iota // not read, or the model has no relay
	RelayClosed                    // power on
	RelayOpen                      // power off
)

func (s RelayState) String() string {
	switch s {
	case RelayClosed:
		return "closed"
	case RelayOpen:
		return "open"
	}
	return "unknown"
}

// quantityIndex is q's position in Quantities(), or false.
func quantityIndex(q Quantity) (int, bool) {
	switch q {
	case VoltageA:
		return 0, true
	case VoltageB:
		return 1, true
	case VoltageC:
		return 2, true
	case CurrentA:
		return 3, true
	case CurrentB:
		return 4, true
	case CurrentC:
		return 5, true
	case PowerA:
		return 6, true
	case PowerB:
		return 7, true
	case PowerC:
		return 8, true
	case Power:
		return 9, true
	case PFA:
		return 10, true
	case PFB:
		return 11, true
	case PFC:
		return 12, true
	case PF:
		return 13, true
	case Frequency:
		return 14, true
	case Import:
		return 15, true
	case Export:
		return 16, true
	case Sharp:
		return 17, true
	case Peak:
		return 18, true
	case Flat:
		return 19, true
	case Valley:
		return 20, true
	case ResidualCurrent:
		return 21, true
	case TempA:
		return 22, true
	case TempB:
		return 23, true
	case TempC:
		return 24, true
	case TempN:
		return 25, true
	}
	return 0, false
}

const numQuantities = 26

// Reading is one decoded read of a meter. Energy counters are int64 Wh;
// everything else is the instantaneous value in the quantity's unit.
type Reading struct {
	Meter string    // configured meter id; set by the caller
	Time  time.Time // gateway time the read completed; set by the caller
	Relay RelayState

	values  [numQuantities]float64
	energy  [numQuantities]int64
	present uint32 // bit i set: Quantities()[i] was read
}

// Set stores v (in q's unit) in r; an energy quantity is also kept as Wh.
func (r *Reading) Set(q Quantity, v float64) {
	i, ok := quantityIndex(q)
	if !ok {
		return
	}
	r.values[i] = v
	if q.IsEnergy() {
		r.energy[i] = kWhToWh(v)
	}
	r.present |= 1 << i
}

// SetWh stores energy counter q as exact Wh, for a meter that sends its
// counters as decimal text (Compere MQTT): Set would pass them through a
// float. A quantity that is not an energy counter is ignored.
func (r *Reading) SetWh(q Quantity, wh int64) {
	i, ok := quantityIndex(q)
	if !ok || !q.IsEnergy() {
		return
	}
	r.energy[i] = wh
	r.values[i] = float64(wh) / 1000
	r.present |= 1 << i
}

// Value returns q's value and whether the reading holds it.
func (r *Reading) Value(q Quantity) (float64, bool) {
	i, ok := quantityIndex(q)
	if !ok || r.present&(1<<i) == 0 {
		return 0, false
	}
	return r.values[i], true
}

// EnergyWh returns energy counter q in Wh and whether the reading holds it.
func (r *Reading) EnergyWh(q Quantity) (int64, bool) {
	i, ok := quantityIndex(q)
	if !ok || r.present&(1<<i) == 0 || !q.IsEnergy() {
		return 0, false
	}
	return r.energy[i], true
}

// ImportWh returns the billing counter in Wh and whether it was read.
func (r *Reading) ImportWh() (int64, bool) { return r.EnergyWh(Import) }

// Quantities returns the quantities r holds, in display order.
func (r *Reading) Quantities() []Quantity { return r.AppendQuantities(nil) }

// AppendQuantities appends the quantities r holds to dst, in display
// order: with a [32]Quantity array's slice as dst, the pipeline walks a
// reading without allocating.
func (r *Reading) AppendQuantities(dst []Quantity) []Quantity {
	for i, q := range allQuantities {
		if r.present&(1<<i) != 0 {
			dst = append(dst, q)
		}
	}
	return dst
}

// allQuantities is Quantities() without the copy.
var allQuantities = [numQuantities]Quantity{
	VoltageA, VoltageB, VoltageC, CurrentA, CurrentB, CurrentC,
	PowerA, PowerB, PowerC, Power, PFA, PFB, PFC, PF, Frequency,
	Import, Export, Sharp, Peak, Flat, Valley,
	ResidualCurrent, TempA, TempB, TempC, TempN,
}

// kWhToWh rounds a counter in kWh to whole Wh. A float32 counter carries
// about 7 significant digits, so the Wh below its resolution are noise that
// rounding (not truncation) keeps from drifting downwards.
func kWhToWh(kwh float64) int64 {
	wh := kwh * 1000
	if wh < 0 {
		return -int64(-wh + 0.5)
	}
	return int64(wh + 0.5)
}

// ApplyRatios turns secondary-side values into primary ones for a metering
// point behind transformers of ratio ct (current) and pt (voltage):
// currents × ct, voltages × pt, power and energy × ct × pt. Energy stays
// integer Wh; a counter that would leave the plausible range fails with
// ErrBadValue and leaves rd unchanged.
func (rd *Reading) ApplyRatios(ct, pt int64) error {
	if ct < 1 || pt < 1 {
		return fmt.Errorf("%w: transformer ratios %d and %d", ErrBadValue, ct, pt)
	}
	k := ct * pt
	limit := int64(MaxCounterKWh * 1000)
	for i, q := range Quantities() {
		if rd.present&(1<<i) != 0 && q.IsEnergy() && rd.energy[i] > limit/k {
			return fmt.Errorf("%w: %s of %d Wh × %d leaves the plausible range", ErrBadValue, q, rd.energy[i], k)
		}
	}
	for i, q := range Quantities() {
		if rd.present&(1<<i) == 0 {
			continue
		}
		switch q.Unit() {
		case "A":
			rd.values[i] *= float64(ct)
		case "V":
			rd.values[i] *= float64(pt)
		case "W":
			rd.values[i] *= float64(k)
		case "kWh":
			rd.energy[i] *= k
			rd.values[i] = float64(rd.energy[i]) / 1000
		}
	}
	return nil
}

// FormatKWh writes a counter held in Wh as a decimal kWh string ("1234.567"),
// exactly: energy shown to people never passes through a float.
func FormatKWh(wh int64) string {
	sign := ""
	u := uint64(wh)
	if wh < 0 {
		sign, u = "-", uint64(-(wh+1))+1 // math.MinInt64 has no positive twin
	}
	return fmt.Sprintf("%s%d.%03d", sign, u/1000, u%1000)
}

// ParseKWh reads a counter written as decimal kWh ("1234.567", at most three
// decimals) into exact Wh, within 0..MaxCounterKWh.
func ParseKWh(s string) (int64, error) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 10 || (dot && (frac == "" || len(frac) > 3)) || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("%w: %q is not kWh like 1234.567", ErrBadValue, s)
	}
	var wh int64
	for _, c := range whole {
		wh = wh*10 + int64(c-'0')
	}
	for i := 0; i < 3; i++ {
		wh *= 10
		if i < len(frac) {
			wh += int64(frac[i] - '0')
		}
	}
	if wh > int64(MaxCounterKWh*1000) {
		return 0, fmt.Errorf("%w: %q is beyond any counter", ErrBadValue, s)
	}
	return wh, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
