//go:build !soak

package poll

// noWrongValuesTransactions keeps TestNoWrongValues short in make test;
// make test-soak runs it with 10,000 per bus (soak_long_test.go).
const noWrongValuesTransactions = 1_000
