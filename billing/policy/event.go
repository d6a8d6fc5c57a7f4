package policy

import (
	"time"

	"mallgrid/billing"
)

// EventKind names what happened to an account, for the people told of it.
type EventKind string

// Event kinds. Each is given once, on the evaluation at which it happens;
// evaluating again with the same input gives none.
const (
	// EventWarning1, EventWarning2 and EventOverdraft: the account entered
	// that state from a better one.
	EventWarning1  EventKind = "warning_1"
	EventWarning2  EventKind = "warning_2"
	EventOverdraft EventKind = "overdraft"
	// EventCutOffScheduled: the account is exhausted and will be cut off
	// at Event.At (Hold is HoldHours when protected hours moved that
	// time); given again when the time moves later.
	EventCutOffScheduled EventKind = "cutoff_scheduled"
	// EventCutOffCancelled: a top-up during grace cancelled the cut-off.
	EventCutOffCancelled EventKind = "cutoff_cancelled"
	// EventCutOff: the relays were opened.
	EventCutOff EventKind = "cut_off"
	// EventRestored: a cut-off account reached its restore level; its
	// relays are closed.
	EventRestored EventKind = "restored"
	// EventProtectedHold: a due cut-off is held by Event.Hold, until
	// Event.At (zero: a flag without expiry). A flag set on an account
	// already cut off closes its relays with this event.
	EventProtectedHold EventKind = "protected_hold"
)

// Event is one thing that happened at an evaluation.
type Event struct {
	Kind EventKind
	// At is when: the evaluation's time, except for cutoff_scheduled and
	// protected_hold, where it is when the cut-off is now due.
	At time.Time
	// Balance is the balance evaluated.
	Balance billing.Money
	// Hold is what holds or moved the cut-off (protected_hold,
	// cutoff_scheduled); empty otherwise.
	Hold Hold
	// Reason is the protection flag's reason when Hold is HoldFlag.
	Reason string
}
