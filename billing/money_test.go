package billing

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestParseMoney(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Money
	}{
		{"0", 0}, {"100", 100 * Yuan}, {"100.5", 100*Yuan + 50*Fen}, {"100.50", 100*Yuan + 50*Fen},
		{"0.8523", 852_300}, {"-0.01", -Fen}, {"0.000001", 1}, {"007.10", 7*Yuan + 10*Fen},
		{"1000000000", MaxMoney},
	} {
		got, err := ParseMoney(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-", ".5", "5.", "1e3", "1,000", " 1", "1 ", "+1", "--1", "1.0000001", "NaN", "1000000000.01", "99999999999"} {
		if got, err := ParseMoney(bad); !errors.Is(err, ErrMoneySyntax) {
			t.Errorf("ParseMoney(%q) = %d, %v; want ErrMoneySyntax", bad, got, err)
		}
	}
}

func TestMoney_StringRoundTrips(t *testing.T) {
	for _, tt := range []struct {
		m    Money
		want string
	}{{0, "0.00"}, {Yuan, "1.00"}, {50*Yuan + 71*Fen, "50.71"}, {852_300, "0.8523"}, {1, "0.000001"}, {-Fen, "-0.01"}, {math.MinInt64, "-9223372036854.775808"}} {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("Money(%d).String() = %q; want %q", int64(tt.m), got, tt.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10_000; i++ {
		m := Money(rng.Int64N(int64(2*MaxMoney))) - MaxMoney
		back, err := ParseMoney(m.String())
		if err != nil || back != m {
			t.Fatalf("ParseMoney(%q) = %d, %v; want %d", m.String(), back, err, m)
		}
	}
}

func TestMoney_Fen(t *testing.T) {
	for _, tt := range []struct{ m, fen, rest Money }{
		{123_456, 120_000, 3_456}, {-1, -Fen, Fen - 1}, {Fen, Fen, 0}, {0, 0, 0},
	} {
		if fen, rest := tt.m.Fen(); fen != tt.fen || rest != tt.rest {
			t.Errorf("Money(%d).Fen() = %d, %d; want %d, %d", tt.m, fen, rest, tt.fen, tt.rest)
		}
	}
}

func TestCharge_CarriesTheRemainder(t *testing.T) {
	// 1 Wh at 0.8523 yuan/kWh is 0.0008523 yuan: twelve such charges make
	// one fen (0.0102276), the rest carried.
	p, _ := ParsePrice("0.8523")
	var rem Remainder
	var posted Money
	for i := 0; i < 12; i++ {
		fen, r, err := Charge(rem, 1, p)
		if err != nil {
			t.Fatal(err)
		}
		posted, rem = posted+fen, r
	}
	if posted != Fen || rem != Remainder(12*852_300-10_000_000) {
		t.Errorf("12 × 1 Wh = %s posted, remainder %d; want 0.01 and %d", posted, rem, 12*852_300-10_000_000)
	}
	if _, _, err := Charge(0, -1, p); err == nil {
		t.Error("Charge of negative energy succeeded")
	}
}

// Over a million charges of random energy at random prices, the fen posted
// plus the remainder held equal the exact price of the energy: rounding
// neither creates nor loses money.
func TestCharge_MillionChargesLoseNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var (
		rem       Remainder
		posted    int64 // micro-yuan
		exactNano int64 // price × Wh, nano-yuan
	)
	for i := 0; i < 1_000_000; i++ {
		wh := rng.Int64N(5_000)                     // up to 5 kWh a cycle
		p := Price(300_000 + rng.Int64N(1_700_000)) // 0.30..2.00 yuan/kWh
		fen, r, err := Charge(rem, wh, p)
		if err != nil {
			t.Fatal(err)
		}
		if fen%Fen != 0 || r < 0 || int64(r) >= nanoPerFen {
			t.Fatalf("charge %d: posted %d, remainder %d", i, fen, r)
		}
		posted += int64(fen)
		rem = r
		exactNano += int64(p) * wh
	}
	if got := posted*1000 + int64(rem); got != exactNano {
		t.Errorf("posted %d µ¥ + remainder %d n¥ = %d n¥; want exactly %d", posted, rem, got, exactNano)
	}
}

func TestSettle(t *testing.T) {
	for _, tt := range []struct {
		posted Money
		rem    Remainder
		want   Money
	}{
		{50*Yuan + 70*Fen, 7_000_000, 50*Yuan + 71*Fen}, // 50.707 → 50.71
		{50*Yuan + 70*Fen, 5_000_000, 50*Yuan + 71*Fen}, // half a fen rounds up
		{50*Yuan + 70*Fen, 4_999_999, 50*Yuan + 70*Fen},
		{0, 0, 0},
	} {
		if got := Settle(tt.posted, tt.rem); got != tt.want {
			t.Errorf("Settle(%s, %d) = %s; want %s", tt.posted, tt.rem, got, tt.want)
		}
	}
}
