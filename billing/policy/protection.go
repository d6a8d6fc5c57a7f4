package policy

import "time"

// Protection is an operator's flag on an account: while it is active the
// account's relays stay closed whatever its balance ("保电"), e.g. for a
// pharmacy's fridges or during a billing dispute. Warnings and the grace
// clock still run, so that the tenant and the clerk see where the account
// stands.
type Protection struct {
	// Reason says why, for the control room and the audit log.
	Reason string
	// Until is when the flag ends (exclusive: at Until it no longer
	// protects). Zero means no expiry: the flag stands until an operator
	// lifts it, as a permanent protection must not lapse by itself.
	Until time.Time
}

// Active reports whether p protects at now. A nil p does not; nor does a
// flag whose Until is at or before now.
func (p *Protection) Active(now time.Time) bool {
	return p != nil && (p.Until.IsZero() || now.Before(p.Until))
}
