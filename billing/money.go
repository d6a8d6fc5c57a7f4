package billing

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Money is an amount in micro-yuan (1e-6 of the currency unit).
type Money int64

// Units of Money.
const (
	MicroYuan Money = 1
	Fen       Money = 10_000    // 0.01 yuan, the smallest amount the ledger posts
	Yuan      Money = 1_000_000 // one currency unit
)

// MaxMoney bounds every amount the gateway accepts or computes: a billion
// yuan, far above any mall's balance, far below int64's reach, so that sums
// of millions of entries cannot overflow.
const MaxMoney = 1_000_000_000 * Yuan

// ErrMoneySyntax is returned by ParseMoney for text that is not a plain
// decimal amount.
var ErrMoneySyntax = errors.New("billing: not a decimal amount")

// ParseMoney reads a decimal amount such as "100", "100.5" or "-0.8523" with
// at most six decimals. It refuses exponents, signs written twice, spaces,
// thousands separators and amounts beyond ±MaxMoney: money from an API or
// a file is never guessed at.
func ParseMoney(s string) (Money, error) {
	orig := s
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > 6 || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w: %q (want digits with at most six decimals, like 100.50)", ErrMoneySyntax, orig)
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 10 { // beyond MaxMoney for sure
		return 0, fmt.Errorf("%w: %q is too large", ErrMoneySyntax, orig)
	}
	var w, f int64
	for _, c := range whole {
		w = w*10 + int64(c-'0')
	}
	for i := 0; i < 6; i++ {
		f *= 10
		if i < len(frac) {
			f += int64(frac[i] - '0')
		}
	}
	m := Money(w)*Yuan + Money(f)
	if m > MaxMoney {
		return 0, fmt.Errorf("%w: %q is too large", ErrMoneySyntax, orig)
	}
	if neg {
		m = -m
	}
	return m, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String writes m as a decimal with at least two and at most six decimals,
// trailing zeros beyond the fen dropped: "100.00", "-0.8523", "0.000001".
// It is exact: String and ParseMoney round-trip every Money.
func (m Money) String() string {
	sign := ""
	u := uint64(m)
	if m < 0 {
		sign, u = "-", uint64(-(m+1))+1 // math.MinInt64 has no positive twin
	}
	frac := fmt.Sprintf("%06d", u%uint64(Yuan))
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return fmt.Sprintf("%s%d.%s", sign, u/uint64(Yuan), frac)
}

// Fen returns m rounded down to a whole fen (toward minus infinity) and
// what is left, 0 <= rest < Fen.
func (m Money) Fen() (fen, rest Money) {
	fen = m / Fen * Fen
	if m < 0 && fen != m {
		fen -= Fen
	}
	return fen, m - fen
}

// Price is a unit price in micro-yuan per kWh.
type Price Money

// ParsePrice reads a price per kWh such as "0.8523".
func ParsePrice(s string) (Price, error) {
	m, err := ParseMoney(s)
	return Price(m), err
}

func (p Price) String() string { return Money(p).String() }

// Cost is the exact cost of wh at p in micro-yuan times 1000 (so no
// division happens here): cost of wh Wh at p micro-yuan/kWh = p × wh / 1000
// micro-yuan. It fails on overflow, which bounded inputs never reach.
func (p Price) Cost(wh int64) (milliMicroYuan int64, err error) {
	if wh != 0 && (int64(p) > math.MaxInt64/abs(wh) || int64(p) < -math.MaxInt64/abs(wh)) {
		return 0, fmt.Errorf("billing: %s/kWh × %d Wh overflows", p, wh)
	}
	return int64(p) * wh, nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
