package pipeline

import (
	"context"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// feedPower commits one cycle with M-1 read at f.t0+at: its counter at wh
// and its total active power at w.
func (f *pipeFixture) feedPower(at time.Duration, wh int64, w float64) {
	var rd meter.Reading
	rd.Set(meter.Import, float64(wh)/1000)
	rd.Set(meter.Power, w)
	rd.Set(meter.VoltageA, 230)
	rd.Meter, rd.Time = "M-1", f.t0.Add(at)
	f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: rd}}})
}

func (f *pipeFixture) samples() []store.Sample {
	f.t.Helper()
	got, err := f.db.Samples("M-1", f.t0.Add(-time.Hour), f.t0.Add(24*time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

// A cycle every 10 s for 3 minutes stores 3 samples, each with its
// minute's mean, least and greatest power and the counter at its end —
// the third once a reading of the fourth minute shows it finished.
func TestPipeline_SamplesAMinute(t *testing.T) {
	f := newPipeFixture(t)
	powers := [3][6]float64{
		{1000, 1100, 1200, 1300, 1400, 1500},   // mean 1250
		{3000, 2999.6, 3001.4, 500, 7000, 100}, // rounded 3000+3000+3001+500+7000+100 = 16601 → 2766.8 → 2767
		{-200, -200, -201, -200, -200, -199},   // exporting: mean −200
	}
	wh := int64(100_000)
	for m := 0; m < 3; m++ {
		for i := 0; i < 6; i++ {
			wh += 3
			f.feedPower(time.Duration(m)*time.Minute+time.Duration(i)*10*time.Second, wh, powers[m][i])
		}
		if got := len(f.samples()); got != m {
			t.Fatalf("after minute %d: %d samples stored; want %d (a minute is stored once finished)", m, got, m)
		}
	}
	f.feedPower(3*time.Minute, wh+3, 50)
	got := f.samples()
	want := []struct {
		avg, min, max, wh int64
	}{
		{1250, 1000, 1500, 100_018},
		{2767, 100, 7000, 100_036},
		{-200, -201, -199, 100_054},
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples; want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		s := got[i]
		if !s.Minute.Equal(f.t0.Add(time.Duration(i)*time.Minute)) || s.Readings != 6 || s.AvgW != w.avg || s.MinW != w.min || s.MaxW != w.max || s.ImportWh != w.wh {
			t.Errorf("minute %d: %+v; want 6 readings, mean %d, min %d, max %d W, counter %d Wh", i, s, w.avg, w.min, w.max, w.wh)
		}
	}
}

// A minute half read before a restart is not stored (it is in memory
// only), and the next minutes are stored as usual.
func TestPipeline_SamplesAfterRestart(t *testing.T) {
	f := newPipeFixture(t)
	f.feedPower(0, 1000, 100)
	f.feedPower(time.Minute, 1001, 200) // stores minute 0
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.open()
	f.feedPower(2*time.Minute, 1002, 300)
	f.feedPower(3*time.Minute, 1003, 400) // stores minute 2
	got := f.samples()
	if len(got) != 2 || got[0].AvgW != 100 || got[1].AvgW != 300 || !got[1].Minute.Equal(f.t0.Add(2*time.Minute)) {
		t.Errorf("samples across a restart = %+v; want minutes 0 (100 W) and 2 (300 W)", got)
	}
}

// A cycle that fails to commit leaves the minute under way as it was: the
// finished minute it would have stored is stored by the next cycle.
func TestPipeline_SamplesFailedCommit(t *testing.T) {
	f := newPipeFixture(t)
	f.feedPower(0, 1000, 100)
	f.feedPower(10*time.Second, 1001, 300)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.feedPower(time.Minute, 1002, 500) // fails: minute 0 is not stored
	db, err := store.Open(f.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.pipe.db = db, db
	f.feedPower(time.Minute+10*time.Second, 1003, 700)
	got := f.samples()
	if len(got) != 1 || got[0].AvgW != 200 || got[0].Readings != 2 {
		t.Errorf("samples after a failed commit = %+v; want minute 0 with 2 readings, mean 200 W", got)
	}
}
