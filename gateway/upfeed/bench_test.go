package upfeed

import (
	"testing"
	"time"
)

// BenchmarkFeed_CatchUpDay: a 2,000-meter site's gateway back after a day
// down sends 96 quarter hours (384 interval messages), each meter's latest
// reading read for each — one op is the whole catch-up, on a real file.
func BenchmarkFeed_CatchUpDay(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		r := newRig(b, 2000)
		var ids []string
		for _, m := range r.cfg.Meters {
			ids = append(ids, m.ID)
		}
		r.cycle(40, ids...) // every meter read, with its latest reading stored
		r.round()
		r.clock = r.clock.Add(24 * time.Hour)
		b.StartTimer()
		r.round()
		b.StopTimer()
		if s, _ := r.db.UplinkStats(); s.Head < 384 {
			b.Fatalf("head %d; want 384 interval messages and more", s.Head)
		}
		b.StartTimer()
	}
}
