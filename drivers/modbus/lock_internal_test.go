package modbus

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Many takers of one stale lock at once: exactly one gets it. Without the
// takeover's flock two could both remove and relink (one removing the
// other's fresh lock).
func TestLockPort_StaleTakeoverHasOneWinner(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		dir := t.TempDir()
		device := fmt.Sprintf("/dev/ttyTEST%d", round)
		if err := os.WriteFile(LockFile(dir, device), fmt.Appendf(nil, "%10d\n", dead.Process.Pid), 0o644); err != nil {
			t.Fatal(err)
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := lockPort(dir, device); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d takers got the stale lock; want exactly 1", round, wins)
		}
	}
}
