//go:build soak

package poll

// noWrongValuesTransactions is what the field-grade issue asks of the
// fault test: at least 10,000 transactions on a shared bus.
const noWrongValuesTransactions = 10_000
