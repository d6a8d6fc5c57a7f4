package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"mallgrid/billing"
)

// A read-only Open (verify) of a file a gateway is writing waits for the
// lock and says the file is in use — it does not read pages being
// rewritten and call the file damaged.
func TestOpen_ReadOnlyWhileInUse(t *testing.T) {
	db, path := openTemp(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if _, _, err := db.PostTopUp(topUp("T-1", fmt.Sprintf("PAY-%d", i), billing.Yuan)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 5 {
		start := time.Now()
		_, err := Open(path, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("read-only Open of a file in use = %v; want ErrLocked", err)
		}
		if waited := time.Since(start); waited > 2*time.Second {
			t.Errorf("waited %v for a 100ms lock timeout", waited)
		}
	}
	<-done
}
