// Package enforce turns balances into relay states and carries them out:
// each tenant's account is evaluated by billing/policy (warnings, grace,
// cut-off, restore, protected hours and an operator's protection flag),
// the decision and the tenant's relays' desired state are stored durably
// before any relay moves, and the reconciler drives each relay to its
// desired state through its bus's priority lane, reads it back, retries
// with backoff and raises relay_fault. Operators' relay overrides live
// here too.
//
// It imports gateway/live (the relay states read, the events published),
// gateway/poll (the buses' priority lanes), gateway/web (the relay
// override's request and view), gateway/config, store, billing and
// drivers/meter.
package enforce
