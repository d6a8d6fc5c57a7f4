//go:build soak

package gateway

import (
	"fmt"
	"testing"
)

// TestSoakReload_Differential is TestReload_Differential's long form for
// make test-soak: 300 histories, each with about eight reloads.
func TestSoakReload_Differential(t *testing.T) {
	totals := map[string]int{}
	for seed := range 300 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			for k, v := range runReloadHistory(t, uint64(1000+seed)) {
				totals[k] += v
			}
		})
	}
	t.Logf("over 300 histories: %v", totals)
}
