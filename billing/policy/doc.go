// Package policy is the prepaid account policy: it turns a tenant's
// balance into the state of the account (normal, warning 1, warning 2,
// overdraft, exhausted, cut off), the events people are told of, and the
// desired state of the tenant's relays. It is pure — no I/O, no clock
// reads; the time is passed in — and it remembers nothing itself: the
// gateway stores each account's Status and passes it back.
//
// # Configuration
//
// A RatingSpec (per credit rating, under ratings: in the YAML) and a
// ProtectedSpec (under protected_hours:) are plain data; NewRating and
// NewProtected check them and report every problem, each with the path of
// its field named by yaml keys ("warning_2", "daily[0].to",
// "holidays[3]"), so that the config loader can prefix it and point at
// the line.
//
// # Levels
//
// With the rating's warning levels W1 > W2 >= 0, overdraft limit O >= 0
// and restore level R >= 0, a balance b is, at face value:
//
//	normal     b > W1
//	warning_1  W2 < b <= W1      ("at or below" a warning level)
//	warning_2  0 <= b <= W2
//	overdraft  −O <= b < 0       (never, when O is 0)
//	exhausted  b < −O            ("below" the overdraft limit)
//
// # Rules
//
//   - Worse at once, better with a margin. An account moves to a worse
//     state as soon as its balance is in that state's band, and to a better
//     one only when the balance less Hysteresis (1 yuan) is in the better
//     state's band, and then to the best such state: with W1 = 100, a
//     balance that dips to 100.00 gives warning 1, and only a balance above
//     101.00 clears it; overdraft clears at 1.00. A balance that wobbles
//     at a level therefore gives one warning, not one per wobble.
//   - One event per step, for the state entered. Events are given only on
//     entering a worse state, and only for the state entered: a balance
//     that falls from normal to overdraft in one evaluation gives
//     "overdraft", not warning 1 and 2 as well. Clearing a warning gives no
//     event.
//   - Exhaustion starts the grace clock. When the balance goes below −O
//     the account is exhausted: ExhaustedAt is now and the cut-off is due
//     at ExhaustedAt + grace, moved to the end of any protected time it
//     falls in (event cutoff_scheduled with that time). The due time is
//     computed again from the stored ExhaustedAt at every evaluation and
//     only ever moves later (a holiday added, a longer grace), never
//     earlier: the tenant was told a time, and a clock stepped back or a
//     config reloaded must not bring it forward.
//   - Protected hours. Daily windows (may cross midnight), all of Saturday
//     and Sunday if weekends are protected, and listed holidays, on the
//     site's wall clock, [start, end). A cut-off due inside protected time
//     moves to its end, following windows that chain: Friday 22:00 runs
//     into the weekend and on to Monday 08:00. A cut-off found due inside
//     protected time (the gateway was down at the due time, or a flag
//     ended there) is held to the window's end (protected_hold). Protected
//     hours stop a cut-off from happening; they do not restore an account
//     already cut off before the window began — only money or a flag does.
//   - Protection flags. While an operator's flag is active (Until zero =
//     no expiry; at Until it has expired) the relays are closed: a due
//     cut-off is held (protected_hold, once), and an account already cut
//     off is powered again but stays cut_off in its books. When the flag
//     ends, a due cut-off happens at once, outside protected hours, or at
//     the end of the protected time it ends in. Warnings and the grace
//     clock run under a flag as without.
//   - Top-up during grace. A balance that climbs back to −O + Hysteresis,
//     or to R if that is lower, cancels the pending cut-off
//     (cutoff_cancelled); the account goes to the best state its balance
//     clears by Hysteresis, and a later exhaustion starts a new grace.
//   - Restore. Once cut off, the relays close again only when the balance
//     reaches R (b >= R), not merely −O: an account restored just above
//     the limit would be cut again at its next charge. The account gets
//     "restored" and goes to the state its balance is in at face value.
//   - Never early. The relays are never opened before Status.CutOffAt,
//     so never before ExhaustedAt + grace; every comparison is with the
//     stored times, so a clock that steps back does not cut early (a clock
//     that steps forward cannot be told from time passing).
//   - Idempotent. Evaluating the Decision's Next again with the same Input
//     gives the same Status and relay state and no events, so an
//     evaluation repeated after a crash tells nobody twice.
//
// Decision.Closed is the desired state of every relay of the tenant's
// meters: one account, one answer. Public and main meters are not
// accounts; the gateway never opens them on the policy's word.
// NextChange tells the gateway when to evaluate again if no balance
// changes.
package policy
