//go:build e2e

package main

import (
	"os"
	"os/exec"
	"testing"
)

// The sandbox's exposure gate, where it cannot be skipped: make test runs
// before .ci/run installs systemd, so there TestUnit_Exposure skips; make
// test-e2e runs after it, and under CI a missing systemd-analyze fails.
func TestE2E_UnitExposure(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze not installed (.ci/run installs systemd): %v", err)
		}
		t.Skip("systemd-analyze not installed")
	}
	checkExposure(t, tool)
}
