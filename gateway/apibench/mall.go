package apibench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// perBus is how many meters a generated bus carries: 2,000 meters are 20
// buses, as a mall wires them floor by floor.
const perBus = 100

// shops name the generated tenants, as a mall's directory lists them.
var shops = []string{
	"金牌面馆", "海底捞火锅", "星巴克咖啡", "优衣库", "屈臣氏", "喜茶", "名创优品", "周大福珠宝",
	"Golden Noodle House", "Lotus Tea", "Sichuan Hot Pot", "City Optics", "Jade Pharmacy",
	"小米之家", "太平鸟服饰", "肯德基", "麦当劳", "华为授权体验店", "Kids Fun Park", "Harbour Books",
}

// Mall returns the configuration of a mall of n KPM33B meters: buses of
// perBus meters, one public-area meter on each, every other meter a
// tenant's own, each tenant named like a shop with its unit number.
func Mall(n int) (*config.Config, error) {
	var b strings.Builder
	b.WriteString("site: {name: Benchmark Plaza, timezone: Asia/Shanghai, currency: CNY}\n")
	b.WriteString("tariffs: [{name: standard, kind: flat, price: \"1.05\"}]\nbuses:\n")
	buses := (n + perBus - 1) / perBus
	for i := range buses {
		fmt.Fprintf(&b, "  - {name: floor-%02d, port: /dev/ttyUSB%d}\n", i+1, i)
	}
	b.WriteString("meters:\n")
	var tenants strings.Builder
	for i := range n {
		bus, addr := i/perBus+1, i%perBus+1
		if addr == perBus {
			fmt.Fprintf(&b, "  - {id: P-%04d, bus: floor-%02d, address: %d, model: kpm33b, role: public}\n", i+1, bus, addr)
			continue
		}
		fmt.Fprintf(&b, "  - {id: M-%04d, bus: floor-%02d, address: %d, model: kpm33b, tenant: T-%04d}\n", i+1, bus, addr, i+1)
		fmt.Fprintf(&tenants, "  - {id: T-%04d, name: \"%s %dF-%03d\", tariff: standard}\n", i+1, shops[i%len(shops)], bus, addr)
	}
	b.WriteString("tenants:\n")
	b.WriteString(tenants.String())
	return config.Parse("mall.yaml", []byte(b.String()), nil)
}

// Fill gives every meter of cfg a reading at at, as a KPM33B reports it
// (float32 values), and polling statistics, through the real picture: a
// reading by Update, statistics as each bus's status.
func Fill(p *live.Picture, cfg *config.Config, at time.Time, rng *rand.Rand) {
	stats := make(map[string][]poll.MeterStatus)
	for i, m := range cfg.Meters {
		p.Update(Reading(m.ID, i, at, rng), at.Add(-300*time.Millisecond))
		stats[m.Bus] = append(stats[m.Bus], Status(m.ID, at, rng))
	}
	for bus, st := range stats {
		p.SetStatus(bus, func() []poll.MeterStatus { return copyStatus(st) })
	}
}

// copyStatus copies statuses as a scheduler's Status does: new error maps.
func copyStatus(in []poll.MeterStatus) []poll.MeterStatus {
	out := make([]poll.MeterStatus, len(in))
	for i, st := range in {
		out[i] = st
		out[i].Stats.Errors = make(map[string]int64, len(st.Stats.Errors))
		for k, v := range st.Stats.Errors {
			out[i].Stats.Errors[k] = v
		}
	}
	return out
}

// f32 is a value as a float32 register holds it, with the shortest
// decimal that reads back as the same float32 (what drivers/meter does).
func f32(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', -1, 32), 64)
	return f
}

// Reading is the i-th meter's reading at at: three phases of a shop's
// load (2–25 kW), its power factors and the grid's frequency, and energy
// counters of a few years' use split over the four rates.
func Reading(id string, i int, at time.Time, rng *rand.Rand) store.Reading {
	r := store.Reading{Meter: id, Time: at, Relay: "closed"}
	load := 2000 + rng.Float64()*23000
	total := 0.0
	for _, ph := range []string{"a", "b", "c"} {
		v := 226 + rng.Float64()*8
		pf := 0.85 + rng.Float64()*0.14
		w := load / 3 * (0.8 + rng.Float64()*0.4)
		total += w
		r.Values = append(r.Values,
			store.Value{Name: "voltage_" + ph, Value: f32(v)},
			store.Value{Name: "current_" + ph, Value: f32(w / v / pf)},
			store.Value{Name: "power_" + ph, Value: f32(w)},
			store.Value{Name: "pf_" + ph, Value: f32(pf)})
	}
	r.Values = append(r.Values,
		store.Value{Name: string(meter.Power), Value: f32(total)},
		store.Value{Name: string(meter.PF), Value: f32(0.85 + rng.Float64()*0.14)},
		store.Value{Name: string(meter.Frequency), Value: f32(49.95 + rng.Float64()*0.1)})
	// Years of use before the day, then the day's so far at this load.
	wh := 1_000_000 + int64(i)*7_919_003%200_000_000 + int64(load*float64(at.Unix()%86_400)/3600)
	r.ImportWh = wh
	sharp := wh / 10
	peak := wh * 3 / 10
	valley := wh / 4
	r.Counters = []store.Counter{
		{Name: string(meter.Export), Wh: 0},
		{Name: string(meter.Sharp), Wh: sharp},
		{Name: string(meter.Peak), Wh: peak},
		{Name: string(meter.Flat), Wh: wh - sharp - peak - valley},
		{Name: string(meter.Valley), Wh: valley},
	}
	if i%97 == 13 { // a few cut off
		r.Relay = "open"
	}
	return r
}

// Status is a meter's polling statistics after a day of 5-second cycles
// of three requests, a few errors, latencies of a 9600-baud line.
func Status(id string, at time.Time, rng *rand.Rand) poll.MeterStatus {
	st := poll.MeterStatus{ID: id, Online: true, Stats: poll.Stats{
		Requests: 51_840 + rng.Int64N(100), Errors: map[string]int64{},
		LastSeen: at.Add(-time.Duration(rng.Int64N(int64(5 * time.Second)))),
		P50:      time.Duration(120+rng.Int64N(30)) * time.Millisecond,
		P99:      time.Duration(150+rng.Int64N(60))*time.Millisecond + time.Duration(rng.Int64N(1000))*time.Microsecond,
	}}
	if n := rng.Int64N(10); n > 6 {
		st.Stats.Errors["timeout"] = n
		st.Stats.Errors["crc"] = n / 3
	}
	return st
}

// Change gives every meter of cfg a fresh reading at at: the load moves,
// the counters rise. It is what the picture sees when every bus has
// completed a cycle.
func Change(p *live.Picture, cfg *config.Config, at time.Time, rng *rand.Rand) {
	for i, m := range cfg.Meters {
		p.Update(Reading(m.ID, i, at, rng), at.Add(-300*time.Millisecond))
	}
}
