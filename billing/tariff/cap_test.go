package tariff

import (
	"slices"
	"testing"
	"time"

	"mallgrid/billing"
)

// foreign is a Tariff that New did not build.
type foreign struct{ max billing.Price }

func (foreign) Name() string { return "foreign" }
func (foreign) Split(time.Time, time.Time, int64, int64) ([]Part, error) {
	return nil, nil
}
func (f foreign) MaxPrice() billing.Price { return f.max }

func TestCheckCap(t *testing.T) {
	// Grid price 1.00 + 15%: the cap some provinces set on resale.
	gridPlus15 := mustPrice(t, "1.15")
	for _, tt := range []struct {
		name   string
		tariff Tariff
		cap    billing.Price
		want   []Problem
	}{
		{"flat under the cap", mustNew(t, flatSpec()), gridPlus15, nil},
		{"flat at the cap is allowed", mustNew(t, Spec{Name: "x", Kind: KindFlat, Price: "1.15"}), gridPlus15, nil},
		{"flat a micro-yuan above", mustNew(t, Spec{Name: "x", Kind: KindFlat, Price: "1.150001"}), gridPlus15, []Problem{
			{"price", "1.150001 yuan/kWh is above the resale price cap of 1.15 yuan/kWh"},
		}},
		{"tou: each rate above, dearest first", mustNew(t, shanghaiTOU()), gridPlus15, []Problem{
			{"rates.sharp", "1.50 yuan/kWh is above the resale price cap of 1.15 yuan/kWh"},
			{"rates.peak", "1.20 yuan/kWh is above the resale price cap of 1.15 yuan/kWh"},
		}},
		{"tiered: the block above", mustNew(t, tieredSpec()), mustPrice(t, "0.80"), []Problem{
			{"blocks[2].price", "0.90 yuan/kWh is above the resale price cap of 0.80 yuan/kWh"},
		}},
		{"a cap of zero has every price above it", mustNew(t, flatSpec()), 0, []Problem{
			{"price", "1.05 yuan/kWh is above the resale price cap of 0.00 yuan/kWh"},
		}},
		{"a tariff New did not build: its MaxPrice", foreign{mustPrice(t, "2")}, gridPlus15, []Problem{
			{"", "2.00 yuan/kWh is above the resale price cap of 1.15 yuan/kWh"},
		}},
		{"a tariff New did not build, under the cap", foreign{mustPrice(t, "1")}, gridPlus15, nil},
	} {
		if got := CheckCap(tt.tariff, tt.cap); !slices.Equal(got, tt.want) {
			t.Errorf("%s: CheckCap = %q; want %q", tt.name, got, tt.want)
		}
	}
}
