package allocation

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"mallgrid/billing"
)

// randomRule draws tenants with random areas, consumptions and quotas
// (some zero), weights of one to three kinds, and a cost.
func randomRule(r *rand.Rand) (billing.Money, []Weight, []Tenant) {
	n := 1 + r.IntN(40)
	ts := make([]Tenant, n)
	quotaLeft := int64(Whole)
	for i := range ts {
		ts[i] = Tenant{ID: fmt.Sprintf("T-%03d", r.IntN(1000)*1000+i)}
		if r.IntN(5) > 0 {
			ts[i].AreaCM2 = r.Int64N(200_000_00)
		}
		if r.IntN(5) > 0 {
			ts[i].Wh = r.Int64N(50_000_000)
		}
		if i == n-1 {
			ts[i].QuotaPPM = quotaLeft
		} else if quotaLeft > 0 {
			q := r.Int64N(quotaLeft + 1)
			ts[i].QuotaPPM, quotaLeft = q, quotaLeft-q
		}
	}
	ts[r.IntN(n)].AreaCM2 += 1 // some basis of every kind
	ts[r.IntN(n)].Wh += 1
	kinds := Kinds()
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	kinds = kinds[:1+r.IntN(3)]
	var ws []Weight
	left := int64(Whole)
	for i, k := range kinds {
		w := left
		if i < len(kinds)-1 {
			w = 1 + r.Int64N(left-int64(len(kinds)-1-i))
		}
		ws = append(ws, Weight{k, w})
		left -= w
	}
	cost := billing.Money(r.Int64N(10_000_000)) * billing.Fen
	if r.IntN(10) == 0 {
		cost = billing.Money(r.IntN(n)) * billing.Fen // fewer fen than tenants
	}
	return cost, ws, ts
}

// exact is a tenant's exact share of cost in fen, as a rational.
func exact(cost billing.Money, ws []Weight, ts []Tenant, t Tenant) *big.Rat {
	f := new(big.Rat)
	for _, w := range ws {
		var total int64
		for _, o := range ts {
			total += o.basis(w.Kind)
		}
		f.Add(f, new(big.Rat).SetFrac(big.NewInt(w.PPM*t.basis(w.Kind)), new(big.Int).Mul(big.NewInt(Whole), big.NewInt(total))))
	}
	return f.Mul(f, new(big.Rat).SetInt64(int64(cost/billing.Fen)))
}

func TestSplit_Properties(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 2026))
	for run := 0; run < 2000; run++ {
		cost, ws, ts := randomRule(r)
		shares, err := Split(cost, ws, ts)
		if err != nil {
			t.Fatalf("run %d: Split(%s, %v, %d tenants): %v", run, cost, ws, len(ts), err)
		}
		if len(shares) != len(ts) {
			t.Fatalf("run %d: %d shares for %d tenants", run, len(shares), len(ts))
		}
		var sum billing.Money
		byID := make(map[string]Tenant)
		for _, tn := range ts {
			byID[tn.ID] = tn
		}
		for i, s := range shares {
			sum += s.Amount
			if s.Amount < 0 || s.Amount%billing.Fen != 0 {
				t.Fatalf("run %d: %s gets %s: want whole fen, not negative", run, s.Tenant, s.Amount)
			}
			if i > 0 && shares[i-1].Tenant >= s.Tenant {
				t.Fatalf("run %d: shares not in tenant id order: %s before %s", run, shares[i-1].Tenant, s.Tenant)
			}
			// Within one fen of the exact share, and never a fen up
			// unless the exact share has a fraction of one.
			want := exact(cost, ws, ts, byID[s.Tenant])
			got := new(big.Rat).SetInt64(int64(s.Amount / billing.Fen))
			diff := new(big.Rat).Sub(got, want)
			if diff.Cmp(big.NewRat(-1, 1)) <= 0 || diff.Cmp(big.NewRat(1, 1)) >= 0 {
				t.Fatalf("run %d: %s gets %s fen, exact %s", run, s.Tenant, got.FloatString(0), want.FloatString(6))
			}
		}
		if sum != cost {
			t.Fatalf("run %d: shares add up to %s, cost %s", run, sum, cost)
		}
		// Order independence: shuffled input, the same shares.
		shuffled := append([]Tenant(nil), ts...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := Split(cost, ws, shuffled)
		if err != nil {
			t.Fatal(err)
		}
		for i := range shares {
			if again[i].Tenant != shares[i].Tenant || again[i].Amount != shares[i].Amount || again[i].PPM != shares[i].PPM {
				t.Fatalf("run %d: shuffled input gives %s %s, first %s %s", run, again[i].Tenant, again[i].Amount, shares[i].Tenant, shares[i].Amount)
			}
		}
	}
}

// TestSplit_LargestRemainder: 1.00 among three equal areas is 0.34, 0.33,
// 0.33 — the extra fen to the lowest id, not to the first given.
func TestSplit_LargestRemainder(t *testing.T) {
	ts := []Tenant{{ID: "T-3", AreaCM2: 100}, {ID: "T-1", AreaCM2: 100}, {ID: "T-2", AreaCM2: 100}}
	shares, err := Split(billing.Yuan, []Weight{{Area, Whole}}, ts)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %s %s %s %s %s", shares[0].Tenant, shares[0].Amount, shares[1].Tenant, shares[1].Amount, shares[2].Tenant, shares[2].Amount)
	if want := "T-1 0.34 T-2 0.33 T-3 0.33"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	// 1.00 by 2:1 areas is 0.67 (remainder 2/3) and 0.33 (1/3): the
	// larger remainder wins over the lower id.
	shares, err = Split(billing.Yuan, []Weight{{Area, Whole}}, []Tenant{{ID: "A", AreaCM2: 100}, {ID: "B", AreaCM2: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if shares[0].Amount != 33*billing.Fen || shares[1].Amount != 67*billing.Fen {
		t.Errorf("got A %s B %s; want A 0.33 B 0.67", shares[0].Amount, shares[1].Amount)
	}
}

func TestSplit_Mixed(t *testing.T) {
	// 50% by area (1:3) and 50% by consumption (3:1) of 100.00: 50.00 each.
	ts := []Tenant{{ID: "A", AreaCM2: 100, Wh: 3000}, {ID: "B", AreaCM2: 300, Wh: 1000}}
	shares, err := Split(100*billing.Yuan, []Weight{{Area, Whole / 2}, {Consumption, Whole / 2}}, ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		if s.Amount != 50*billing.Yuan || s.PPM != Whole/2 {
			t.Errorf("%s: got %s (%d ppm); want 50.00 (500000 ppm)", s.Tenant, s.Amount, s.PPM)
		}
	}
	if got, want := Explain(shares[0]), "50% by area 1.00 m² of 4.00 m²; 50% by consumption 3.000 kWh of 4.000 kWh = 50% of the cost"; got != want {
		t.Errorf("Explain: got %q; want %q", got, want)
	}
}

func TestSplit_Refused(t *testing.T) {
	one := []Tenant{{ID: "A", AreaCM2: 100}}
	for _, c := range []struct {
		name    string
		cost    billing.Money
		weights []Weight
		tenants []Tenant
		want    error
	}{
		{"cost below a fen", billing.Fen + 1, []Weight{{Area, Whole}}, one, ErrCost},
		{"negative cost", -billing.Fen, []Weight{{Area, Whole}}, one, ErrCost},
		{"weights short of 100%", billing.Fen, []Weight{{Area, Whole / 2}}, one, ErrWeights},
		{"kind twice", billing.Fen, []Weight{{Area, Whole / 2}, {Area, Whole / 2}}, one, ErrWeights},
		{"unknown kind", billing.Fen, []Weight{{"volume", Whole}}, one, ErrWeights},
		{"no tenants", billing.Fen, []Weight{{Area, Whole}}, nil, ErrTenants},
		{"tenant twice", billing.Fen, []Weight{{Area, Whole}}, []Tenant{{ID: "A", AreaCM2: 1}, {ID: "A", AreaCM2: 1}}, ErrTenants},
		{"negative energy", billing.Fen, []Weight{{Consumption, Whole}}, []Tenant{{ID: "A", Wh: -1}}, ErrTenants},
		{"no consumption", billing.Fen, []Weight{{Consumption, Whole}}, one, ErrNoBasis},
	} {
		if _, err := Split(c.cost, c.weights, c.tenants); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v; want %v", c.name, err, c.want)
		}
	}
	// A zero cost is shared as zeros even with nothing to share by.
	shares, err := Split(0, []Weight{{Consumption, Whole}}, one)
	if err != nil || len(shares) != 1 || shares[0].Amount != 0 {
		t.Errorf("zero cost: got %v, %v; want one zero share", shares, err)
	}
}

func TestRoundFen(t *testing.T) {
	for _, c := range []struct {
		nano int64
		want billing.Money
	}{{0, 0}, {4_999_999, 0}, {5_000_000, billing.Fen}, {10_000_000, billing.Fen}, {14_999_999, billing.Fen}} {
		if got, err := RoundFen(c.nano); err != nil || got != c.want {
			t.Errorf("RoundFen(%d) = %s, %v; want %s", c.nano, got, err, c.want)
		}
	}
	if _, err := RoundFen(-1); !errors.Is(err, ErrCost) {
		t.Errorf("RoundFen(-1): got %v; want ErrCost", err)
	}
}

func TestParsePercent(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"40%", 400_000}, {"100%", Whole}, {"0%", 0}, {"33.3333%", 333_333}, {"0.5%", 5000}} {
		got, err := ParsePercent(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if back := FormatPercent(got); back != c.in {
			t.Errorf("FormatPercent(%d) = %q; want %q", got, back, c.in)
		}
	}
	for _, bad := range []string{"40", "40.%", "101%", "-5%", "1.23456%", "", "%", "4 0%", "1e2%"} {
		if _, err := ParsePercent(bad); !errors.Is(err, ErrPercent) {
			t.Errorf("ParsePercent(%q): got %v; want ErrPercent", bad, err)
		}
	}
}
