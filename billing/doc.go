// Package billing is the money domain of the gateway: amounts, prices,
// tariffs, the validation of meter counters, and the rules that turn
// accepted energy into ledger charges. It is pure: no I/O, no clock reads —
// every time it needs is passed in — and it imports nothing of the
// gateway's own.
//
// Money is integer. Amounts are micro-yuan (Money, 1e-6 yuan) so that unit
// prices such as 0.8523 yuan/kWh are exact; energy is int64 Wh. Ledger
// amounts are whole fen (0.01 yuan): what a priced delta comes to below a
// fen is carried to the meter's next charge (Remainder), never dropped,
// so over any number of charges the fen posted plus the remainder held equal
// the exact price of the energy.
package billing
