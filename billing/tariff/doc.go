// Package tariff turns a tenant's price plan into priced energy: given the
// Wh a meter counted over a reading interval, Split says how much of it was
// used at which price. It is pure — no I/O, no clock reads; every time is
// passed in — and money in it is integer (billing.Price, micro-yuan/kWh).
//
// # Kinds
//
// A Spec is a tariff as plain data, filled from the YAML config; New checks
// it and builds a Tariff.
//
//   - flat: one price for all energy.
//   - tou (time of use): rates named sharp, peak, flat and valley, each used
//     in windows of the day ("08:00" to "11:00"). A day plan is chosen per
//     calendar day: "weekday" (Monday to Friday), "weekend" (Saturday and
//     Sunday), "holiday" (the dates in Holidays), or "all". A season (a set
//     of months, e.g. July and August) has day plans of its own that replace
//     the base plans on its months, e.g. to add a sharp window in summer.
//   - tiered: monthly blocks ("the first 200 kWh of the month at 0.60, the
//     next 200 at 0.70, the rest at 0.90").
//
// # Splitting an interval
//
// Split(from, to, wh, monthWh) apportions wh over [from, to) by these rules:
//
//   - Linear over the gap: a meter read at from and at to says how much it
//     counted, not when, so energy is taken to flow evenly in absolute time
//     (a DST day of 23 hours has 23 hours of energy, not 24).
//   - Site wall time: windows, days, months and seasons are read in the
//     location of from (to is converted to it), so callers pass times in the
//     site's *time.Location. The rate of an instant is the window that
//     contains its wall-clock time on its wall-clock date: where clocks go
//     forward, the skipped wall hour has no energy; where they go back, the
//     repeated hour is priced twice by the same window, once per pass.
//     Asia/Shanghai has no DST; the rule matters only for other zones.
//   - Integer apportioning by largest remainder: the interval is cut into
//     stretches at one rate (tiered: one month) each, and each gets
//     floor(wh × its duration ÷ the interval's duration) Wh; the Wh left
//     over (fewer than the stretches) go one each to the stretches with the
//     largest remainders, the earlier on a tie. So the parts' Wh add up to
//     wh exactly, each stretch is within 1 Wh of its exact linear share,
//     and the result depends only on the arguments. Products are taken in
//     128 bits: nothing is rounded before the division.
//   - Parts are in time order and tile [from, to): each part's From is the
//     previous part's To. Adjacent stretches at one price and window are one
//     part (a valley window from 22:00 to 07:00 across midnight is one part),
//     but a part never crosses the start of a month in site time, so a
//     monthly statement can take whole parts. A part may carry 0 Wh (a
//     short window when wh is small); it is kept so that the parts still
//     cover the interval.
//   - Tiered: monthWh is the tenant's energy already charged in the month of
//     from before from. Each month's share of wh is laid on that month's
//     counter in order; where it crosses a block limit the part is split
//     there, its Wh exact and the instant between the two parts placed
//     linearly (rounded down to the nanosecond). The counter starts again at
//     0 at every month start inside the interval.
//   - wh == 0 gives no parts and no error, whatever from and to are.
//     Otherwise wh < 0, monthWh < 0, and from not before to are errors
//     (ErrEnergy, ErrInterval).
//
// Charging each part with billing.Charge, carrying the remainder, posts
// exactly Σ part.Price × part.Wh over any number of splits: no money is
// created or lost by rounding.
//
// # Checking a spec
//
// New reports every problem, not just the first, each with the path of the
// spec field it is about (like "days[1].windows[2].to"), named by the yaml
// keys of Spec, so that the config loader can prefix it ("tariffs[3].") and
// point at the line. A spec is refused when:
//
//   - name is missing or kind is not flat, tou or tiered, or it sets fields
//     that belong to another kind;
//   - a price does not parse with billing.ParsePrice or is not above zero;
//   - tou: a rate is not one of sharp, peak, flat, valley, or no window uses
//     it, or a window names a rate without a price; a set of day plans
//     (the base plans, or one season's) has neither one "all" plan nor both
//     "weekday" and "weekend", names a kind of day twice, or has "all"
//     beside "weekday" or "weekend"; a day plan's windows do not cover
//     00:00 to 24:00 exactly once ("HH:MM", from before to; a window
//     across midnight is written as two, ending at "24:00" and starting at
//     "00:00"); a season has no months, a month outside 1..12, or a month
//     that another season has; a holiday is not a "YYYY-MM-DD" date or is
//     listed twice;
//   - tiered: there are no blocks, a block limit is not above the one
//     before, or the last block has a limit (up_to_kwh: 0 means no limit
//     and is only for the last block).
//
// On a holiday, the holiday plan of the day's season (or of the base plans
// outside seasons) is used; with none, its weekend plan, or its "all" plan.
//
// CheckCap enforces a resale price cap separately, since the cap is the
// site's, not the tariff's: a rate above it is a config error.
package tariff
