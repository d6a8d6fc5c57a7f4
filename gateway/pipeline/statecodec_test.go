package pipeline

import (
	"reflect"
	"testing"
	"time"

	"mallgrid/billing/counter"
	"mallgrid/gateway/web"
)

func TestStateCodec_RoundTrip(t *testing.T) {
	t0 := time.Unix(1_790_000_000, 123)
	s := func(wh int64, rates bool) counter.Sample {
		x := counter.Sample{Wh: wh, At: t0.Add(time.Duration(wh)), MeterTime: t0}
		if rates {
			x.RatesWh, x.HasRates = [4]int64{1, 2, 3, wh}, true
		}
		return x
	}
	for _, mb := range []*MeterState{
		{},
		{Counter: counter.State{Known: true, Baseline: s(100, false), Remainder: 42}},
		{
			Counter: counter.State{Known: true, Baseline: s(100, true), Lower: []counter.Sample{s(5, true), s(7, false)},
				Quarantine: &counter.Quarantine{Held: s(9e9, false), Since: t0}, AutoReset: &counter.AutoReset{Old: s(1, false), First: s(2, true)}, Remainder: 9_999_999},
			Open:   &OpenCharge{Account: "T-1", Slot: t0, Window: "peak", Price: 1_200_000, FromWh: 100, ToWh: 250, From: t0, To: t0.Add(time.Minute), Amount: 180_000},
			Bypass: true,
		},
		{
			Counter: counter.State{Known: true, Baseline: s(7, false), Chain: 3,
				Exchange: &counter.ExchangeMark{At: t0, OldFinalWh: 5_000_000, NewStartWh: 7}},
			Open:      &OpenCharge{Account: "T-2", Chain: 3, Slot: t0, FromWh: 7, ToWh: 9, From: t0, To: t0.Add(time.Minute), Amount: 1},
			Exchanged: &web.OperatorResult{Meter: "M-1", Verdict: "exchanged", BilledKWh: "0.400", Event: "meter exchange applied"},
			Released:  &web.OperatorResult{Meter: "M-1", Verdict: "released", BilledKWh: "40.000", HeldKWh: "41.500"},
			Unbilled:  true,
		},
	} {
		got, err := DecodeState(EncodeState(mb))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, mb) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, mb)
		}
	}
	full := EncodeState(&MeterState{Counter: counter.State{Known: true, Baseline: s(100, true)}})
	for i := 0; i < len(full); i++ {
		if _, err := DecodeState(full[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes succeeded; want an error", i, len(full))
		}
	}
}
