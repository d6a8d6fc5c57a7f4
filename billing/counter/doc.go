// Package counter decides which part of a meter's import counter is billed:
// it validates each new reading against the meter's last accepted one and
// says how much energy the reading adds, over which span of time, and what
// an operator must be told. It is a pure state machine — no I/O, no clock
// reads, every time is passed in — so that the pipeline can keep its State
// per meter in the same bbolt transaction as the charges it leads to, and a
// crash keeps both or neither.
//
// # Use
//
// For each reading the pipeline calls Check(state, reading, limits), prices
// each of Outcome.Spans over its [From, To) with the tenant's tariff,
// charges it with billing.Charge and the state's Remainder, records
// Outcome.Break if there is one, and stores Outcome.Next (with the new
// remainder) — all in one transaction. Check never changes the State it is
// given: if the transaction fails, the old State is still the truth and the
// next reading's delta covers the lost cycle's energy. Exchange and Release
// are the two operator actions; they return an Outcome the same way.
//
// # Chains
//
// A meter's counter is followed in chains: chain 0 from its first reading,
// a new one at each reset and each exchange (State.Chain). Every Span lies
// on one chain and its energy is its counter rise, never negative: an
// exchange that bills the old meter's last energy and the new one's first
// gives two spans, one on each. The caller keeps a charge on one chain
// (it closes the open charge when the chain changes) and records each
// Break, so that a ledger check can follow every counter on its own: a
// chain's charges cover it from its start (Break.NewStartWh) to where the
// next break says it ended (Break.OldEndWh), or to the baseline. An
// exchange entered after its reset was accepted on evidence Amends the
// reset's break instead of starting a chain.
//
// # Operator actions
//
// Exchange applies the record of a meter exchange wherever it fits the
// readings (before the new meter's first reading, amid its pending lower
// readings, or after they were accepted as a reset); a record that does
// not fit — an old final reading below the last accepted one or more than
// the circuit could draw since, a new start above the new meter's first
// reading or too far below it — is ErrExchange, and the record last applied
// sent again is ErrRepeated: it is applied once. A record without a time
// is placed by ExchangeTime. Release bills a held jump, unless it goes back
// to the level of the meter an exchange said was taken out (ErrRelease):
// then the exchange was wrong, and a correcting exchange is the way out.
//
// # Times
//
// Reading.At is gateway time — when the gateway took the reading — and is
// what spans and limits are measured in. Reading.MeterTime is the meter's
// own clock and is used only to recognise the same reading delivered again:
// meter clocks are often wrong (KPM33B meters report 2005 after their clock
// loses power), but a redelivered message carries the stamp it was sent
// with, right or wrong. A meter whose clock stands still and whose counter
// does not move therefore sends duplicates: its baseline keeps its older
// At, and the next rise is spread over the longer span — the energy is the
// same, only its apportioning coarser.
//
// # Verdicts
//
// Check gives every reading exactly one verdict. The rules are applied in
// this order; the first that matches decides.
//
//	invalid       a negative counter or rate counter: refused, nothing changes.
//	zero_frame    every value of the message is zero (Reading.ZeroFrame):
//	              refused, nothing changes, never a reset. A meter that
//	              really stands at 0 kWh looks the same; its energy is billed
//	              from its first non-zero reading on.
//	baseline      the first reading of a meter without State: it becomes the
//	              baseline; no energy. It is trusted as it is: a garbage
//	              first value shows as the readings after it being lower
//	              (a reset after ResetAfter of them) or a jump (held).
//	duplicate     the same counters as the baseline, the last lower reading
//	              or the held jump, with the same At or the same non-zero
//	              MeterTime: the same reading delivered again. Refused,
//	              nothing changes.
//	clock_back    At is not after the latest reading the State holds (the
//	              baseline, the last lower reading, the held jump): the
//	              gateway's clock stepped back or stood still, or the
//	              reading is stale. Refused with an event; nothing changes.
//	              So every billed span [From, To) has From before To.
//	lower_pending below the baseline. Refused: a lower counter is a reset or
//	              an exchange only with evidence. The reading is kept in
//	              State.Lower; the first of an episode raises counter_lower.
//	reset         the Limits.ResetAfter-th consecutive lower reading (default
//	              3, zero frames and duplicates not counted) of a run that
//	              never falls and never rises faster than the circuit allows:
//	              the meter was reset or exchanged. The last reading becomes
//	              the baseline, the run's rise (last − first) is billed over
//	              the run's span, and a reset event is raised. What the meter
//	              drew between the old baseline and the first lower reading
//	              is not known and not billed; an Exchange entered later
//	              bills it from the operator's record. A lower reading that
//	              falls below the run's last one, or rises faster than the
//	              circuit allows from it, starts a new run.
//	quarantined   the rise from the baseline is above what the circuit can
//	              draw in the time (Limits.MaxRise), or the held jump is
//	              already held and the reading is at or above it. Not billed;
//	              the jump is held in State.Quarantine, its latest reading
//	              replacing the one before, and the first raises
//	              spike_quarantined. An operator's Release bills it.
//	accepted      at or above the baseline and within the limit: the rise is
//	              billed over [baseline At, At) and the reading becomes the
//	              baseline, even when the rise is 0, so that the next span
//	              starts at the latest reading. A pending lower run is
//	              dropped (lower_cleared) and a held jump is dropped
//	              (spike_dropped): the meter is back at its baseline's level,
//	              so those readings were glitches.
//
// Operator actions give two more: released (Release) and exchanged
// (Exchange).
//
// # The limit
//
// A rise is plausible when it is at most
//
//	MaxWhPerHour × max(elapsed, 1 min) / 1 h + SlackWh
//
// where elapsed runs from the baseline's At, and MaxWhPerHour is rated
// current × highest phase voltage × phases × margin (CircuitLimits). The
// minute's floor keeps two readings taken close together (or a gateway
// clock that stood still) from making every rise look impossible; SlackWh
// absorbs a counter's own rounding. MaxWhPerHour <= 0 turns the rule off.
//
// # Gaps
//
// An accepted rise belongs to [From, To): a meter that was offline for
// hours reports the whole gap's energy at once. The pipeline apportions it
// linearly over the gap (tariff.Split), or, when the configuration says to
// trust the meter's own rate counters, by Outcome.RatesWh: the rise of each
// of the meter's sharp/peak/flat/valley counters over the same span, set
// whenever both readings carry them and none went down. Those counters
// round on their own, so their sum may differ from Wh by a few Wh;
// Outcome.RateParts lays Wh itself out in their proportions so that the
// billed energy is always the billing counter's rise.
//
// # Events
//
// An Event is raised only when an operator must hear about something, and
// once per episode rather than once per reading: counter_lower,
// lower_cleared, reset, spike_quarantined, spike_dropped, spike_released,
// exchange. The exception is clock_back, raised for every reading refused
// for its time, since the State keeps no memory of refused readings; a
// caller that logs it should say so once per episode.
package counter
