package live

import "time"

// ReadingTimes returns the time of every meter's latest reading by meter
// id: restored from the database when the picture was made (New's caller
// feeds it the stored readings), then each committed one. A meter not yet
// polled since a start or a reload has its stored reading's time here,
// and none in PollStatus: its view's last_seen is this time ("restored
// from the database, not yet polled"), and so is /metrics' last seen.
func (lv *Picture) ReadingTimes() map[string]time.Time {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	out := make(map[string]time.Time, len(lv.latest))
	for id, r := range lv.latest {
		out[id] = r.Time
	}
	return out
}
