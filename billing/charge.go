package billing

import "fmt"

// Remainder is what a meter's priced energy has come to beyond the whole
// fen already charged, in nano-yuan (1e-9): 0 <= Remainder < one fen. It is
// kept with the meter's baseline and carried into its next charge.
type Remainder int64

// nanoPerFen is one fen in nano-yuan: price (micro-yuan/kWh) × energy (Wh)
// is nano-yuan, so no division happens before the fen are counted.
const nanoPerFen = int64(Fen) * 1000

// Charge prices wh at p, adds what rem carried from earlier charges, and
// returns the whole fen to post and the new remainder. Energy and prices are
// never negative on the charge path; a negative input is an error, as is an
// overflow, which bounded inputs never reach.
func Charge(rem Remainder, wh int64, p Price) (Money, Remainder, error) {
	if wh < 0 || p < 0 || rem < 0 || int64(rem) >= nanoPerFen {
		return 0, rem, fmt.Errorf("billing: charge of %d Wh at %s/kWh with remainder %d", wh, p, rem)
	}
	cost, err := p.Cost(wh)
	if err != nil {
		return 0, rem, err
	}
	total := cost + int64(rem)
	fen := total / nanoPerFen
	return Money(fen) * Fen, Remainder(total - fen*nanoPerFen), nil
}

// String writes a remainder as the yuan it stands for, e.g. "0.0042987".
func (r Remainder) String() string {
	return fmt.Sprintf("0.%09d", int64(r))
}

// Settle is what energy whose charges posted posted (whole fen) and left
// rem below a fen comes to, to the nearest fen, half a fen and more
// rounding up: the amount a statement or a closing account shows, where
// the ledger itself keeps carrying the remainder.
func Settle(posted Money, rem Remainder) Money {
	if 2*int64(rem) >= nanoPerFen {
		return posted + Fen
	}
	return posted
}
