package allocation

import (
	"fmt"
	"math/big"
	"sort"

	"mallgrid/billing"
)

// Kind is what a tenant's part of the public cost is measured by.
type Kind string

// Kinds of basis.
const (
	Area        Kind = "area"        // floor area, Tenant.AreaCM2
	Consumption Kind = "consumption" // the tenant's own metered energy over the period, Tenant.Wh
	Fixed       Kind = "fixed"       // an agreed quota, Tenant.QuotaPPM
)

// Kinds returns the kinds of basis, in the order a rule's parts are shown.
func Kinds() []Kind { return []Kind{Area, Consumption, Fixed} }

// Whole is 100 % in parts per million, the unit of weights and quotas.
const Whole = 1_000_000

// Weight is the part of the cost shared by one kind of basis: a rule by
// area alone is one Weight{Area, Whole}; {area: 50%, consumption: 50%} is two.
type Weight struct {
	Kind Kind
	PPM  int64 // parts per million of the cost, 0 < PPM <= Whole
}

// Tenant is one tenant's basis over the period.
type Tenant struct {
	ID       string
	AreaCM2  int64 // floor area in hundredths of a square metre
	Wh       int64 // own metered energy over the period
	QuotaPPM int64 // fixed quota in parts per million
}

func (t Tenant) basis(k Kind) int64 {
	switch k {
	case Area:
		return t.AreaCM2
	case Consumption:
		return t.Wh
	case Fixed:
		return t.QuotaPPM
	}
	return 0
}

// Part is one kind's say in a tenant's share: the tenant's Value of the
// Total of all the rule's tenants, weighted by Weight (ppm).
type Part struct {
	Kind   Kind  `json:"kind"`
	Value  int64 `json:"value"`
	Total  int64 `json:"total"`
	Weight int64 `json:"weight_ppm"`
}

// Share is one tenant's part of the cost.
type Share struct {
	Tenant string        `json:"tenant"`
	Amount billing.Money `json:"amount"` // whole fen, never negative
	// PPM is the tenant's exact fraction of the cost in parts per million,
	// rounded down: what a statement shows as a percentage.
	PPM   int64  `json:"ppm"`
	Parts []Part `json:"parts"`
}

// Split shares cost (whole fen) among tenants by weights; see the package
// documentation for the rules. The shares are in tenant id order and add
// up to cost exactly. It returns ErrCost, ErrWeights, ErrTenants or
// ErrNoBasis, and no shares, when it cannot.
func Split(cost billing.Money, weights []Weight, tenants []Tenant) ([]Share, error) {
	if cost < 0 || cost > billing.MaxMoney || cost%billing.Fen != 0 {
		return nil, fmt.Errorf("%w: %s (want whole fen from 0 to %s)", ErrCost, cost, billing.Money(billing.MaxMoney))
	}
	if err := checkWeights(weights); err != nil {
		return nil, err
	}
	ts, err := sortedTenants(tenants)
	if err != nil {
		return nil, err
	}
	totals := make([]int64, len(weights))
	for k, w := range weights {
		for _, t := range ts {
			if totals[k] > maxBasis-t.basis(w.Kind) { // bases are bounded like money: far beyond any mall
				return nil, fmt.Errorf("%w: %s total beyond %d", ErrTenants, w.Kind, maxBasis)
			}
			totals[k] += t.basis(w.Kind)
		}
	}
	shares := make([]Share, len(ts))
	for i, t := range ts {
		shares[i].Tenant = t.ID
		for k, w := range weights {
			shares[i].Parts = append(shares[i].Parts, Part{Kind: w.Kind, Value: t.basis(w.Kind), Total: totals[k], Weight: w.PPM})
		}
	}
	for k, w := range weights {
		if totals[k] == 0 {
			if cost == 0 {
				return shares, nil // nothing to share, and no fraction to show
			}
			return nil, fmt.Errorf("%w: no tenant of the rule has any %s", ErrNoBasis, w.Kind)
		}
	}
	// D = Whole × Π total_k; tenant i's numerator N_i = Σ_k w_k × b_ik ×
	// Π_{j≠k} total_j, so that Σ N_i = D and N_i / D is its exact fraction.
	den := big.NewInt(Whole)
	for _, tot := range totals {
		den.Mul(den, big.NewInt(tot))
	}
	fen := big.NewInt(int64(cost / billing.Fen))
	type owed struct {
		i    int
		rest *big.Int
	}
	rests := make([]owed, len(ts))
	given := int64(0)
	for i, t := range ts {
		num := new(big.Int)
		for k, w := range weights {
			term := big.NewInt(w.PPM)
			term.Mul(term, big.NewInt(t.basis(w.Kind)))
			for j, tot := range totals {
				if j != k {
					term.Mul(term, big.NewInt(tot))
				}
			}
			num.Add(num, term)
		}
		ppm := new(big.Int).Mul(num, big.NewInt(Whole))
		shares[i].PPM = ppm.Quo(ppm, den).Int64()
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(fen, num), den, new(big.Int))
		shares[i].Amount = billing.Money(q.Int64()) * billing.Fen
		given += q.Int64()
		rests[i] = owed{i, r}
	}
	// The fen left over go to the largest remainders; ts is in id order,
	// so a stable sort puts the lower id first on a tie.
	sort.SliceStable(rests, func(a, b int) bool { return rests[a].rest.Cmp(rests[b].rest) > 0 })
	for n := int64(0); n < fen.Int64()-given; n++ {
		shares[rests[n].i].Amount += billing.Fen
	}
	return shares, nil
}

func checkWeights(weights []Weight) error {
	if len(weights) == 0 {
		return fmt.Errorf("%w: none", ErrWeights)
	}
	var sum int64
	seen := make(map[Kind]bool)
	for _, w := range weights {
		switch {
		case w.Kind != Area && w.Kind != Consumption && w.Kind != Fixed:
			return fmt.Errorf("%w: unknown kind %q", ErrWeights, w.Kind)
		case seen[w.Kind]:
			return fmt.Errorf("%w: %s twice", ErrWeights, w.Kind)
		case w.PPM <= 0 || w.PPM > Whole:
			return fmt.Errorf("%w: %s at %s", ErrWeights, w.Kind, FormatPercent(w.PPM))
		}
		seen[w.Kind] = true
		sum += w.PPM
	}
	if sum != Whole {
		return fmt.Errorf("%w: they add up to %s, not 100%%", ErrWeights, FormatPercent(sum))
	}
	return nil
}

func sortedTenants(tenants []Tenant) ([]Tenant, error) {
	if len(tenants) == 0 {
		return nil, fmt.Errorf("%w: none", ErrTenants)
	}
	ts := append([]Tenant(nil), tenants...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	for i, t := range ts {
		switch {
		case t.ID == "":
			return nil, fmt.Errorf("%w: a tenant without an id", ErrTenants)
		case i > 0 && ts[i-1].ID == t.ID:
			return nil, fmt.Errorf("%w: %s twice", ErrTenants, t.ID)
		case t.AreaCM2 < 0 || t.Wh < 0 || t.QuotaPPM < 0:
			return nil, fmt.Errorf("%w: %s has a negative basis", ErrTenants, t.ID)
		case t.AreaCM2 > maxBasis || t.Wh > maxBasis || t.QuotaPPM > Whole:
			return nil, fmt.Errorf("%w: %s has a basis beyond any mall's", ErrTenants, t.ID)
		}
	}
	return ts, nil
}

// maxBasis bounds a basis and its total (10^15: a trillion kWh, a
// billion hectares), so that sums never overflow.
const maxBasis = int64(billing.MaxMoney)

// nanoPerFen is one fen in nano-yuan, the unit of price (micro-yuan/kWh)
// × energy (Wh).
const nanoPerFen = int64(billing.Fen) * 1000

// RoundFen returns a cost in nano-yuan (Σ price × Wh, as billing.Price.Cost
// gives it) to the nearest fen, half a fen rounding up: the whole-fen
// cost Split shares. A negative cost is ErrCost.
func RoundFen(nano int64) (billing.Money, error) {
	if nano < 0 {
		return 0, fmt.Errorf("%w: %d nano-yuan", ErrCost, nano)
	}
	fen := nano / nanoPerFen
	if 2*(nano-fen*nanoPerFen) >= nanoPerFen {
		fen++
	}
	return billing.Money(fen) * billing.Fen, nil
}
