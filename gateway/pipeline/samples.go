package pipeline

import (
	"math"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/store"
)

// minuteAcc adds up a meter's readings of one minute into a power sample.
// The pipeline keeps one per meter in memory and hands the minute to the
// store only once a reading of a later minute shows it finished: a meter
// read every 10 s writes one sample a minute, not six. The minute under
// way when the gateway stops is not stored.
type minuteAcc struct {
	minute   time.Time // zero: nothing added yet
	n        int       // readings with active power
	sumW     int64
	minW     int64
	maxW     int64
	importWh int64 // the last counter seen, or store.UnknownWh
}

// add counts a reading into the minute.
func (a *minuteAcc) add(rd meter.Reading) {
	if a.minute.IsZero() {
		a.minute, a.importWh = rd.Time.Truncate(store.SampleLength), store.UnknownWh
	}
	if wh, ok := rd.ImportWh(); ok {
		a.importWh = wh
	}
	p, ok := rd.Value(meter.Power)
	if !ok || math.IsNaN(p) || math.Abs(p) > maxPowerW {
		return
	}
	w := int64(math.Round(p))
	if a.n == 0 || w < a.minW {
		a.minW = w
	}
	if a.n == 0 || w > a.maxW {
		a.maxW = w
	}
	a.sumW += w
	a.n++
}

// maxPowerW bounds a power value that is taken: far above any mall's main
// incomer (a 2,000 A three-phase feeder is about 1.4 MW), so only a garbled
// value is left out, and the minute's sum cannot overflow.
const maxPowerW = 1e9

// sample is the finished minute of meter id.
func (a *minuteAcc) sample(id string) store.Sample {
	s := store.Sample{Meter: id, Minute: a.minute, Readings: a.n, ImportWh: a.importWh}
	if a.n > 0 {
		s.AvgW, s.MinW, s.MaxW = store.MeanW(a.sumW, int64(a.n)), a.minW, a.maxW
	}
	return s
}

// sample counts a committed-to-be reading into its meter's minute, and
// puts the meter's previous minute into the cycle once the reading shows
// it finished. A reading whose every value is zero (a meter's glitch) is
// left out: it would show a power cut that never was.
func (p *Pipeline) sample(w *cycleWork, rd meter.Reading) {
	if allZero(rd) {
		return
	}
	acc, ok := w.minutes[rd.Meter]
	if !ok {
		acc = p.minutes[rd.Meter]
	}
	if m := rd.Time.Truncate(store.SampleLength); !acc.minute.IsZero() && !m.Equal(acc.minute) {
		w.sc.Samples = append(w.sc.Samples, acc.sample(rd.Meter))
		acc = minuteAcc{}
	}
	acc.add(rd)
	w.minutes[rd.Meter] = acc
}
