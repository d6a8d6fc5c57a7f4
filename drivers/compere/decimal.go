package compere

import (
	"fmt"
	"strconv"
	"strings"
)

// maxCounterWh bounds a counter: beyond a TWh is no mall's (the Modbus
// decoder's meter.MaxCounterKWh refuses them too).
const maxCounterWh = 1_000_000_000_000

// counterWh reads a kWh counter as whole Wh from its decimal text, exactly:
// "31.057" is 31057 Wh. Digits below a Wh (which these meters do not send)
// are dropped — flooring keeps readings in order, so rises still add up to
// the last reading less the first.
func counterWh(s string) (int64, error) {
	mant, exp, ok := splitDecimal(s)
	if !ok {
		return 0, fmt.Errorf("counter %q: not a decimal", s)
	}
	if strings.HasPrefix(s, "-") && strings.Trim(mant, "0") != "" {
		return 0, fmt.Errorf("counter %q: negative", s)
	}
	mant = strings.TrimLeft(mant, "0")
	shift := exp + 3 // Wh = mant × 10^shift
	switch {
	case mant == "":
		return 0, nil
	case shift < 0 && -shift >= len(mant):
		return 0, nil
	case shift < 0:
		mant = mant[:len(mant)+shift]
	case len(mant)+shift > 13:
		return 0, fmt.Errorf("counter %q: beyond a TWh", s)
	default:
		mant += strings.Repeat("0", shift)
	}
	wh, err := strconv.ParseInt(mant, 10, 64)
	if err != nil || wh > maxCounterWh {
		return 0, fmt.Errorf("counter %q: beyond a TWh", s)
	}
	return wh, nil
}

// instant reads an instantaneous value. The text must be a plain decimal
// first: strconv.ParseFloat also takes "NaN", "Inf" and hex floats, none of
// which is a measurement.
func instant(s string) (float64, bool) {
	if _, _, ok := splitDecimal(s); !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil { // beyond float64's range
		return 0, false
	}
	return v, true
}

// isZero reports whether s is a decimal whose value is zero.
func isZero(s string) (zero, ok bool) {
	mant, _, ok := splitDecimal(s)
	if !ok {
		return false, false
	}
	return strings.Trim(mant, "0") == "", true
}

// splitDecimal splits a JSON number's text ("-12.5e3") into its digits
// without the point ("125") and the power of ten they are scaled by (2).
// Exponents beyond ±10000 are refused: no counter needs them, and their
// digits would be unbounded.
func splitDecimal(s string) (mant string, exp int, ok bool) {
	s = strings.TrimPrefix(s, "-")
	num, e, hasE := strings.Cut(strings.ToLower(s), "e")
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" || !allDigits(whole) || !allDigits(frac) || (hasDot && frac == "") {
		return "", 0, false
	}
	if hasE {
		e = strings.TrimPrefix(e, "+")
		n, err := strconv.Atoi(e)
		if err != nil || e == "" || e[0] == '+' || n < -10000 || n > 10000 {
			return "", 0, false
		}
		exp = n
	}
	return whole + frac, exp - len(frac), true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
