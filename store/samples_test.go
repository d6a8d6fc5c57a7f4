package store

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"
)

func TestEncodeHour_RoundTrip(t *testing.T) {
	hour := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return hour.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name    string
		samples []Sample
	}{
		{"one", []Sample{{Minute: at(0), Readings: 6, AvgW: 3120, MinW: 3000, MaxW: 3300, ImportWh: 1_234_567}}},
		{"export and gaps", []Sample{
			{Minute: at(3), Readings: 5, AvgW: -1500, MinW: -2000, MaxW: -10, ImportWh: 5},
			{Minute: at(4), Readings: 0, ImportWh: 5}, // no power read
			{Minute: at(7), Readings: 1, AvgW: 7, MinW: 7, MaxW: 7, ImportWh: UnknownWh},
			{Minute: at(59), Readings: 6, AvgW: 0, MinW: 0, MaxW: 0, ImportWh: 3}, // a counter reset within the hour
		}},
		{"large", []Sample{{Minute: at(30), Readings: 60, AvgW: 4_000_000, MinW: -4_000_000, MaxW: 9_000_000, ImportWh: 99_999_999_999}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.samples {
				tt.samples[i].Meter = "M-1"
			}
			raw := encodeHour(nil, tt.samples)
			got, err := decodeHour("M-1", hour, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.samples) {
				t.Errorf("decodeHour(encodeHour(s)) = %+v; want %+v", got, tt.samples)
			}
		})
	}
}

func TestEncodeHour_Compact(t *testing.T) {
	hour := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var hs []Sample
	for m := 0; m < 60; m++ {
		hs = append(hs, Sample{Minute: hour.Add(time.Duration(m) * time.Minute), Readings: 6, AvgW: 3120, MinW: 3050, MaxW: 3190,
			ImportWh: 1_000_000 + int64(m)*52})
	}
	if n := len(encodeHour(nil, hs)); n > 60*10 {
		t.Errorf("an hour of a 3 kW shop takes %d bytes; want at most 10 a minute", n)
	}
}

func TestDecodeHour_DamageIsCorrupt(t *testing.T) {
	hour := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	good := encodeHour(nil, []Sample{
		{Minute: hour, Readings: 6, AvgW: 3120, MinW: 3000, MaxW: 3300, ImportWh: 1_234_567},
		{Minute: hour.Add(time.Minute), Readings: 6, AvgW: 3120, MinW: 3000, MaxW: 3300, ImportWh: 1_234_600},
	})
	cases := map[string][]byte{
		"empty":          {},
		"format":         append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"minute 60":      {sampleFormat, 60, 0, 0},
		"minutes repeat": {sampleFormat, 1, 0, 0, 1, 0, 0},
		"unknown bit":    {sampleFormat, 0x80, 0},
	}
	for name, raw := range cases {
		if _, err := decodeHour("M-1", hour, raw); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeHour = %v; want ErrCorrupt", name, err)
		}
	}
	// Every prefix of a good record decodes or is ErrCorrupt: never a panic.
	for i := range good {
		if _, err := decodeHour("M-1", hour, good[:i]); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("prefix %d: %v; want nil or ErrCorrupt", i, err)
		}
	}
}

func TestCommitCycle_SamplesAcrossReopen(t *testing.T) {
	db, path := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 58, 0, 0, time.UTC)
	s := func(meter string, m int, w int64) Sample {
		return Sample{Meter: meter, Minute: t0.Add(time.Duration(m) * time.Minute), Readings: 6, AvgW: w, MinW: w - 10, MaxW: w + 10,
			ImportWh: 1000 + int64(m)}
	}
	// Minutes on both sides of an hour, two meters, one cycle at a time.
	for m := 0; m < 4; m++ {
		if _, err := db.CommitCycle(Cycle{Samples: []Sample{s("M-1", m, 100+int64(m)), s("M-2", m, 200)}}); err != nil {
			t.Fatal(err)
		}
	}
	// A minute sent again (a cycle retried) replaces the stored one.
	if _, err := db.CommitCycle(Cycle{Samples: []Sample{s("M-1", 1, 999)}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Samples("M-1", t0.Add(time.Minute), t0.Add(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Minute = got[i].Minute.UTC() // stored as Unix seconds; read back in the local zone
	}
	want := []Sample{s("M-1", 1, 999), s("M-1", 2, 102), s("M-1", 3, 103)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Samples = %+v\nwant %+v", got, want)
	}
	if got, _ := db.Samples("M-9", t0, t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("Samples of a meter with none = %v; want none", got)
	}
	if ok, err := db.HasSamples("M-2"); err != nil || !ok {
		t.Errorf("HasSamples(M-2) = %v, %v; want true", ok, err)
	}
	if ok, err := db.HasSamples("M-9"); err != nil || ok {
		t.Errorf("HasSamples(M-9) = %v, %v; want false", ok, err)
	}
}

func TestCommitCycle_BadSampleCommitsNothing(t *testing.T) {
	db, _ := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	_, err := db.CommitCycle(Cycle{
		Readings: []Reading{{Meter: "M-1", Time: t0, ImportWh: 5}},
		Samples:  []Sample{{Meter: "M-1", Minute: t0, Readings: 2, AvgW: 10, MinW: 20, MaxW: 30}},
	})
	if !errors.Is(err, ErrBadEntry) {
		t.Fatalf("CommitCycle with min above mean = %v; want ErrBadEntry", err)
	}
	if latest, _ := db.LatestReadings(); len(latest) != 0 {
		t.Errorf("after a refused cycle latest = %v; want nothing", latest)
	}
}

func TestPruneSamples_Batches(t *testing.T) {
	db, _ := openTemp(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Three meters, 10 hours each, a sample at minute 5 of every hour.
	var all []Sample
	for h := 0; h < 10; h++ {
		for _, m := range []string{"M-1", "M-2", "M-3"} {
			all = append(all, Sample{Meter: m, Minute: t0.Add(time.Duration(h)*time.Hour + 5*time.Minute), ImportWh: int64(h)})
		}
	}
	// M-3 has only old hours: it goes altogether.
	if _, err := db.CommitCycle(Cycle{Samples: all}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CommitCycle(Cycle{Samples: []Sample{{Meter: "M-1", Minute: t0.Add(30 * time.Hour), ImportWh: 1}}}); err != nil {
		t.Fatal(err)
	}
	// Hours 0..5 end by 06:00 and go; hour 6 (06:00–07:00) ends after 06:30 and stays.
	cut := t0.Add(6*time.Hour + 30*time.Minute)
	var batches []int
	for {
		n, err := db.PruneSamples(cut, 4)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		if n < 4 {
			break
		}
	}
	if want := []int{4, 4, 4, 4, 2}; !reflect.DeepEqual(batches, want) { // 3 meters × 6 hours = 18
		t.Errorf("batches deleted %v; want %v", batches, want)
	}
	for _, m := range []string{"M-1", "M-2", "M-3"} {
		got, err := db.Samples(m, t0, t0.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || !got[0].Minute.Equal(t0.Add(6*time.Hour+5*time.Minute)) {
			t.Errorf("%s after pruning starts %v; want the 06:05 sample first", m, got)
		}
	}
	// Everything older than the newest sample: M-2 and M-3 lose their buckets.
	for {
		n, err := db.PruneSamples(t0.Add(24*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if n < 100 {
			break
		}
	}
	for m, want := range map[string]bool{"M-1": true, "M-2": false, "M-3": false} {
		if ok, _ := db.HasSamples(m); ok != want {
			t.Errorf("HasSamples(%s) after pruning = %v; want %v", m, ok, want)
		}
	}
}

// TestSamplesDiskPerMeterDay measures what a day of one-minute samples
// adds to a real file, per meter: 20 meters, a cycle a minute (the
// pipeline hands over finished minutes), power wandering around 3 kW. The
// second day is measured: the first pays for each meter's sub-bucket and
// branch pages once. Run with MALLGRID_DISK_DAY=1 (make bench does).
func TestSamplesDiskPerMeterDay(t *testing.T) {
	if os.Getenv("MALLGRID_DISK_DAY") == "" {
		t.Skip("set MALLGRID_DISK_DAY=1 to measure (make bench)")
	}
	const meters = 20
	db, path := openTemp(t)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var usedBefore, fileBefore int64
	for m := 0; m < 2*24*60; m++ {
		if m == 24*60 {
			var err error
			if usedBefore, err = db.UsedBytes(); err != nil {
				t.Fatal(err)
			}
			fileBefore = statSize(t, path)
		}
		var c Cycle
		for i := 0; i < meters; i++ {
			w := int64(2500 + (m*37+i*101)%1500) // a load that changes from minute to minute
			c.Samples = append(c.Samples, Sample{Meter: fmt.Sprintf("M-%03d", i), Minute: t0.Add(time.Duration(m) * time.Minute), Readings: 6,
				AvgW: w, MinW: w - 120, MaxW: w + 95, ImportWh: 1_000_000 + int64(m)*52})
		}
		if _, err := db.CommitCycle(c); err != nil {
			t.Fatal(err)
		}
	}
	used, err := db.UsedBytes()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("samples: bytes per meter per day: %d in use, file %d", (used-usedBefore)/meters, (statSize(t, path)-fileBefore)/meters)
}

func statSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// BenchmarkCommitCycle_Samples commits a minute's samples of 100 meters
// (a bus's finished minutes) in one transaction.
func BenchmarkCommitCycle_Samples(b *testing.B) {
	db, err := Open(b.TempDir()+"/bench.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	n := 0
	for b.Loop() {
		var c Cycle
		for i := 0; i < 100; i++ {
			c.Samples = append(c.Samples, Sample{Meter: fmt.Sprintf("M-%03d", i), Minute: t0.Add(time.Duration(n) * time.Minute), Readings: 6,
				AvgW: 3000, MinW: 2900, MaxW: 3100, ImportWh: 1_000_000 + int64(n)*50})
		}
		if _, err := db.CommitCycle(c); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func TestMeanW(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{7, 2, 4}, {5, 2, 3}, {4, 3, 1}, {5, 3, 2}, {-7, 2, -4}, {-4, 3, -1}, {-5, 3, -2}, {0, 5, 0}, {16601, 6, 2767},
	} {
		if got := MeanW(c.a, c.b); got != c.want {
			t.Errorf("MeanW(%d, %d) = %d; want %d", c.a, c.b, got, c.want)
		}
	}
}
