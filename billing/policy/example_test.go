package policy_test

import (
	"fmt"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/policy"
)

func ExampleEvaluate() {
	site, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		fmt.Println(err)
		return
	}
	rating, problems := policy.NewRating(policy.RatingSpec{
		Name: "A", Warning1: "100", Warning2: "50", Overdraft: "50", Grace: "2h", Restore: "20",
	})
	if problems != nil {
		fmt.Println(problems)
		return
	}
	hours, problems := policy.NewProtected(policy.ProtectedSpec{
		Nightly:  []policy.Window{{From: "22:00", To: "08:00"}},
		Weekends: true,
	}, site)
	if problems != nil {
		fmt.Println(problems)
		return
	}
	// A noodle shop runs its credit down on a Friday evening and tops up
	// on Monday.
	var status policy.Status // stored by the gateway between evaluations
	for _, ev := range []struct {
		at      string
		balance string
	}{
		{"2026-06-05 18:00", "95.00"},
		{"2026-06-05 19:00", "-20.00"},
		{"2026-06-05 20:30", "-50.40"},
		{"2026-06-08 08:00", "-90.10"},
		{"2026-06-08 09:15", "209.90"},
	} {
		now, _ := time.ParseInLocation("2006-01-02 15:04", ev.at, site)
		balance, _ := billing.ParseMoney(ev.balance)
		d := policy.Evaluate(status, policy.Input{Balance: balance, Rating: rating, Protected: hours, Now: now})
		status = d.Next
		fmt.Printf("%s %8s %-9s power on: %-5v", now.Format("Mon 15:04"), balance, d.Next.State, d.Closed)
		for _, e := range d.Events {
			fmt.Printf(" %s", e.Kind)
			if e.Kind == policy.EventCutOffScheduled {
				fmt.Printf(" for %s", e.At.Format("Mon 15:04"))
			}
		}
		fmt.Println()
	}
	// Output:
	// Fri 18:00    95.00 warning_1 power on: true  warning_1
	// Fri 19:00   -20.00 overdraft power on: true  overdraft
	// Fri 20:30   -50.40 exhausted power on: true  cutoff_scheduled for Mon 08:00
	// Mon 08:00   -90.10 cut_off   power on: false cut_off
	// Mon 09:15   209.90 normal    power on: true  restored
}
