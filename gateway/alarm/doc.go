// Package alarm watches meters' instantaneous values for dangerous loads
// and bad supply, by the rules of the configuration's alarms: section, and
// says when an alarm is raised and when it clears.
//
// # Rules
//
// Each rule has a threshold, a minimum duration (for) and a way back
// (hysteresis, or a clear factor) so that a value hovering at the
// threshold raises one alarm per episode, not one per reading:
//
//	overload          the highest phase current above rated_current × factor
//	appliance         active power stepping up by at least step_kw between two
//	                  readings (an induction cooker, a heater switched on)
//	fluctuation       active power swinging: the spread of its changes between
//	                  readings over a window
//	voltage           a phase voltage outside nominal ± its percentages
//	phase_loss        a phase below half its nominal while another is live
//	power_factor      the total power factor below a level under load
//	residual_current  residual (leakage) current above a level, in mA
//	temperature       a terminal temperature above a level, in °C
//
// The rules come from alarms.defaults, overridden field by field by
// alarms.categories[tenant category] and then alarms.meters[id]; a rule is
// off when its threshold is 0 (appliance and fluctuation are off by
// default: only a category or a meter that needs them turns them on).
// Residual current and temperatures are watched on meters whose model
// reads them (drivers/meter's residual_current and temp_a … temp_n).
//
// # Use
//
// Compile checks a Spec against the meters it applies to and returns the
// Rules, with every problem at its key. An Evaluator keeps each meter's
// episodes in memory; Observe gives it a reading's values and time and
// returns the alarms raised and cleared by it, as Changes the pipeline
// stores as events (kind, kind_cleared) in the same transaction as the
// reading. The store keeps the alarm itself (store/alarms.go); after a
// restart Resume tells the Evaluator which alarms are still open, so that
// a condition that ended meanwhile clears them.
//
// Nothing here reads a clock or does I/O: time is the reading's.
package alarm
