package uplink

import (
	"context"
	"sync"
	"time"
)

// LastCommand is the last command of the platform handled since the
// start, for the control room's status: its id (empty for a message too
// broken to name one), its result's status (ok | refused), the refusal's
// reason, whether it was a delivery again answered with its first result,
// and when it was handled.
type LastCommand struct {
	ID        string
	Status    string
	Reason    string
	Duplicate bool
	Time      time.Time
}

// lastCommand follows the results Commands makes: a result becomes the
// last command once Handle returns nil, its answer stored — a result
// whose write failed is delivered again, not handled.
type lastCommand struct {
	mu      sync.Mutex
	made    LastCommand
	last    LastCommand
	handled bool
}

// note keeps res, made at now, as the answer of the message in hand.
func (l *lastCommand) note(res Result, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.made = LastCommand{ID: res.ID, Status: res.Status, Reason: res.Reason, Duplicate: res.Duplicate, Time: now}
}

// stored makes the answer in hand the last command.
func (l *lastCommand) stored() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last, l.handled = l.made, true
}

func (l *lastCommand) get() (LastCommand, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, l.handled
}

// LastCommand returns the last command handled since the start; false:
// none yet.
func (c *Commands) LastCommand() (LastCommand, bool) { return c.last.get() }

// noting is the link's Handler: Commands, noting each command answered.
type noting struct{ c *Commands }

func (n noting) Handle(ctx context.Context, payload []byte) error {
	if err := n.c.Handle(ctx, payload); err != nil {
		return err
	}
	n.c.last.stored()
	return nil
}
