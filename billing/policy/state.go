package policy

import "time"

// State is where an account stands, the worst last: normal, warning_1,
// warning_2, overdraft, exhausted (grace running, cut-off time known),
// cut_off. Being restored is an event, after which the account is in the
// state its balance gives.
type State string

// The states of an account, in order from best to worst.
const (
	StateNormal    State = "normal"
	StateWarning1  State = "warning_1"
	StateWarning2  State = "warning_2"
	StateOverdraft State = "overdraft"
	StateExhausted State = "exhausted"
	StateCutOff    State = "cut_off"
)

// rank orders states from best (0) to worst; -1 is not a state.
func (s State) rank() int {
	switch s {
	case StateNormal:
		return 0
	case StateWarning1:
		return 1
	case StateWarning2:
		return 2
	case StateOverdraft:
		return 3
	case StateExhausted:
		return 4
	case StateCutOff:
		return 5
	}
	return -1
}

// Hold says what keeps the relays of an account closed although its
// cut-off is due.
type Hold string

// Holds. The empty Hold is none.
const (
	// HoldFlag is an operator's protection flag (Input.Flag).
	HoldFlag Hold = "flag"
	// HoldHours is protected hours: the cut-off fell due, or a flag ended,
	// inside a protected window, and waits for the window's end.
	HoldHours Hold = "protected_hours"
)

// Status is what the policy remembers about an account between
// evaluations. The gateway stores it with the account (in the same bbolt
// transaction as the decision's relay state) and passes it back as prev;
// the policy keeps nothing itself. The zero Status is a new account in
// state normal.
type Status struct {
	// State is where the account stands.
	State State
	// ExhaustedAt is when the balance first went below −overdraft in this
	// episode; zero outside one. The grace time counts from it.
	ExhaustedAt time.Time
	// CutOffAt is when the cut-off is (or was) due: ExhaustedAt + grace,
	// moved out of protected hours, and later if a hold moved it. The
	// relays are never opened before it. Zero when no cut-off is pending.
	CutOffAt time.Time
	// CutSince is when the relays were last opened; zero unless cut off.
	CutSince time.Time
	// Hold is what keeps the relays closed although the cut-off is due;
	// it is remembered so that a hold is announced once.
	Hold Hold
}

// Closed reports the relay state s asks for: true (power on) unless the
// account is cut off and nothing holds it. After a restart the gateway
// can drive relays from stored Statuses before its first evaluation.
func (s Status) Closed() bool {
	return s.State != StateCutOff || s.Hold != ""
}
