package counter

import "math/bits"

// RateParts lays o.Wh out over the meter's sharp, peak, flat and valley
// rates in the proportions of o.RatesWh, by largest remainder: each rate
// gets floor(Wh × its rise ÷ the rises' sum), and the Wh left over go one
// each to the rates with the largest remainders, the earlier rate on a tie.
// The parts add up to o.Wh exactly, so the billed energy is the billing
// counter's rise even where the rate counters rounded differently.
//
// ok is false when there is nothing to go by — RatesWh is nil or all its
// rises are zero while Wh is not — and the caller apportions linearly over
// [From, To) instead.
func (o Outcome) RateParts() (parts [4]int64, ok bool) { return rateShares(o.Wh, o.RatesWh) }

// RateParts is Outcome.RateParts for the span alone.
func (s Span) RateParts() (parts [4]int64, ok bool) { return rateShares(s.Wh(), s.RatesWh) }

func rateShares(wh int64, rates *[4]int64) (parts [4]int64, ok bool) {
	if wh <= 0 {
		return parts, wh == 0
	}
	if rates == nil {
		return parts, false
	}
	var sum uint64
	for _, r := range rates {
		if r < 0 {
			return parts, false
		}
		var carry uint64
		sum, carry = bits.Add64(sum, uint64(r), 0)
		if carry != 0 || sum > 1<<62 {
			return parts, false
		}
	}
	if sum == 0 {
		return parts, false
	}
	var rems [4]uint64
	left := wh
	for i, r := range rates {
		// Wh × r can pass 2^64; r ≤ sum keeps the quotient within Wh.
		hi, lo := bits.Mul64(uint64(wh), uint64(r))
		q, rem := bits.Div64(hi, lo, sum)
		parts[i], rems[i] = int64(q), rem
		left -= int64(q)
	}
	for ; left > 0; left-- {
		best := -1
		for i := range rems {
			if rates[i] > 0 && (best < 0 || rems[i] > rems[best]) {
				best = i
			}
		}
		parts[best]++
		rems[best] = 0
	}
	return parts, true
}
