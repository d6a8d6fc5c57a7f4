// Package allocation shares the cost of public-area energy (corridors,
// chillers, lifts) out to tenants by a rule they can check: by floor area,
// by their own consumption, by fixed quotas, or by a weighted mix of these.
// It is pure — no I/O, no clock reads — and money in it is integer.
//
// # Use
//
// The caller prices the public energy (billing/tariff), reads each tenant's
// basis for the period (area in hundredths of a square metre, its own
// metered Wh, its quota) and calls Split with the cost and the rule's
// Weights. Split returns one Share per tenant, in tenant id order.
//
// # Exactness
//
// The cost is shared in whole fen. Each tenant's exact share is
// cost × Σ_k weight_k × basis_k(tenant) ÷ total_k, computed as one fraction
// over a common denominator in arbitrary precision, so nothing is rounded
// before the last step. Each tenant gets the whole fen below its exact
// share; the fen left over (fewer than the tenants) go one each to the
// largest remainders, the lower tenant id first on a tie (the basis itself
// says who is owed the most, so the order of the input never does). So:
//
//   - Σ shares = cost, to the fen, always;
//   - no share is negative, and each is within one fen of its exact value;
//   - the result depends only on the set of tenants and their bases, not on
//     the order they are given in.
//
// A cost that is not whole fen is refused (ErrCost): the caller settles it
// to the fen first (Settle), so that what is shared is what is posted.
//
// # Basis
//
// Each Share carries its Parts — per kind, the tenant's value, the total it
// is a part of, and the kind's weight — and Explain turns them into the
// sentence a statement prints ("area 120.50 m² of 480.00 m²"), so that a
// tenant can redo the sum.
package allocation
