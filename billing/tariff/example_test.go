package tariff_test

import (
	"fmt"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/tariff"
)

func ExampleNew() {
	t, problems := tariff.New(tariff.Spec{
		Name:  "commercial",
		Kind:  "tou",
		Rates: map[string]string{"peak": "1.20", "flat": "0.80", "valley": "0.35"},
		Days: []tariff.DaySpec{{Days: "all", Windows: []tariff.WindowSpec{
			{From: "00:00", To: "08:00", Rate: "valley"},
			{From: "08:00", To: "18:00", Rate: "peak"},
			{From: "18:00", To: "22:00", Rate: "flat"},
			{From: "22:00", To: "24:00", Rate: "valley"},
		}}},
	})
	if problems != nil {
		fmt.Println(problems)
		return
	}
	site, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		fmt.Println(err)
		return
	}
	// 10 kWh read at 17:00 and again at 23:00 on the last day of June.
	from := time.Date(2026, 6, 30, 17, 0, 0, 0, site)
	parts, err := t.Split(from, from.Add(6*time.Hour), 10_000, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	var rem billing.Remainder
	for _, p := range parts {
		var fen billing.Money
		fen, rem, _ = billing.Charge(rem, p.Wh, p.Price)
		fmt.Printf("%s–%s %-6s %5d Wh × %s = %s\n", p.From.Format("15:04"), p.To.Format("15:04"), p.Window, p.Wh, p.Price, fen)
	}
	fmt.Println("carried:", rem)
	// Output:
	// 17:00–18:00 peak    1667 Wh × 1.20 = 2.00
	// 18:00–22:00 flat    6667 Wh × 0.80 = 5.33
	// 22:00–23:00 valley  1666 Wh × 0.35 = 0.58
	// carried: 0.007100000
}

func ExampleCheckCap() {
	t, _ := tariff.New(tariff.Spec{Name: "standard", Kind: "flat", Price: "1.25"})
	gridPrice, _ := billing.ParsePrice("1.00")
	for _, p := range tariff.CheckCap(t, gridPrice*115/100) {
		fmt.Println(p)
	}
	// Output:
	// price: 1.25 yuan/kWh is above the resale price cap of 1.15 yuan/kWh
}
