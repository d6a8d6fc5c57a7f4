package allocation

import "errors"

var (
	// ErrCost is returned for a cost that is negative, beyond
	// billing.MaxMoney or not a whole number of fen.
	ErrCost = errors.New("allocation: cost refused")
	// ErrWeights is returned for weights that are empty, name a kind twice
	// or an unknown kind, or do not add up to 100 %.
	ErrWeights = errors.New("allocation: weights refused")
	// ErrTenants is returned for no tenants, a tenant id given twice or
	// empty, or a negative basis.
	ErrTenants = errors.New("allocation: tenants refused")
	// ErrNoBasis is returned when a kind with weight has nothing to share
	// by: no tenant has area (or consumption, or a quota), so no share can
	// be worked out. A zero cost is shared as zeros whatever the basis.
	ErrNoBasis = errors.New("allocation: nothing to share by")
	// ErrPercent is returned by ParsePercent for text that is not a
	// percentage like "40%" or "33.3333%".
	ErrPercent = errors.New("allocation: not a percentage")
)
