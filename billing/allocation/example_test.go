package allocation_test

import (
	"fmt"

	"mallgrid/billing"
	"mallgrid/billing/allocation"
)

// A corridor's 100.00 of energy shared by floor area among three shops.
func ExampleSplit() {
	shares, err := allocation.Split(100*billing.Yuan, []allocation.Weight{{Kind: allocation.Area, PPM: allocation.Whole}}, []allocation.Tenant{
		{ID: "T-102", AreaCM2: 8000},
		{ID: "T-101", AreaCM2: 12050},
		{ID: "T-103", AreaCM2: 4000},
	})
	if err != nil {
		panic(err)
	}
	for _, s := range shares {
		fmt.Println(s.Tenant, s.Amount, allocation.Explain(s))
	}
	// Output:
	// T-101 50.10 area 120.50 m² of 240.50 m² = 50.1039% of the cost
	// T-102 33.27 area 80.00 m² of 240.50 m² = 33.264% of the cost
	// T-103 16.63 area 40.00 m² of 240.50 m² = 16.632% of the cost
}
