package allocation

import (
	"fmt"
	"strings"
)

// ParsePercent reads a percentage like "40%" or "33.3333%" (at most four
// decimals, 0 to 100) and returns it in parts per million.
func ParsePercent(s string) (int64, error) {
	num, ok := strings.CutSuffix(s, "%")
	whole, frac, dot := strings.Cut(num, ".")
	if !ok || whole == "" || len(whole) > 3 || (dot && (frac == "" || len(frac) > 4)) || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w: %q (want a percentage like 40%% or 33.3333%%)", ErrPercent, s)
	}
	var ppm int64
	for _, c := range whole {
		ppm = ppm*10 + int64(c-'0')
	}
	for i := 0; i < 4; i++ {
		ppm *= 10
		if i < len(frac) {
			ppm += int64(frac[i] - '0')
		}
	}
	if ppm > Whole {
		return 0, fmt.Errorf("%w: %q is above 100%%", ErrPercent, s)
	}
	return ppm, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FormatPercent writes ppm parts per million as a percentage with up to
// four decimals: "40%", "33.3333%". ParsePercent reads it back.
func FormatPercent(ppm int64) string {
	sign := ""
	if ppm < 0 {
		sign, ppm = "-", -ppm
	}
	frac := strings.TrimRight(fmt.Sprintf("%04d", ppm%10_000), "0")
	if frac != "" {
		frac = "." + frac
	}
	return fmt.Sprintf("%s%d%s%%", sign, ppm/10_000, frac)
}

// FormatKWh writes wh as kWh with three decimals: "1234.567".
func FormatKWh(wh int64) string {
	sign := ""
	if wh < 0 {
		sign, wh = "-", -wh
	}
	return fmt.Sprintf("%s%d.%03d", sign, wh/1000, wh%1000)
}

// FormatArea writes an area in hundredths of a square metre as m² with
// two decimals: "120.50".
func FormatArea(cm2 int64) string {
	return fmt.Sprintf("%d.%02d", cm2/100, cm2%100)
}

// Explain says how a share was worked out, for a statement and the
// ledger's note: "area 120.50 m² of 480.00 m²", or for a mixed rule
// "50% by area 120.50 m² of 480.00 m²; 50% by consumption 12.000 kWh of
// 40.000 kWh", followed by the tenant's fraction of the cost.
func Explain(s Share) string {
	var parts []string
	for _, p := range s.Parts {
		var what string
		switch p.Kind {
		case Area:
			what = fmt.Sprintf("area %s m² of %s m²", FormatArea(p.Value), FormatArea(p.Total))
		case Consumption:
			what = fmt.Sprintf("consumption %s kWh of %s kWh", FormatKWh(p.Value), FormatKWh(p.Total))
		case Fixed:
			what = fmt.Sprintf("fixed quota %s", FormatPercent(p.Value))
		default:
			what = string(p.Kind)
		}
		if len(s.Parts) > 1 {
			what = FormatPercent(p.Weight) + " by " + what
		}
		parts = append(parts, what)
	}
	return fmt.Sprintf("%s = %s of the cost", strings.Join(parts, "; "), FormatPercent(s.PPM))
}
