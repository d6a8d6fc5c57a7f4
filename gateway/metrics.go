package gateway

import (
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/metrics"
)

// meterSamples is what a scrape reads of a generation's meters: every
// configured meter with its poller's state (online, last answer, counts),
// in metrics' own terms. It reads the pollers' states, not the picture's
// views: at 2,000 meters building the views again is most of a scrape's
// time when nothing else asked for them (BenchmarkScrape_Mall2000).
//
// A meter's last answer is the later of its poller's and its latest
// reading's, as its view's last_seen is: a start or a reload makes new
// pollers that have heard nothing yet, and a meter that has not answered
// since would lose its series — an alert on its silence would resolve then,
// and never fire again for a meter that died before.
func meterSamples(cfg *config.Config, lv *live.Picture) func() []metrics.Meter {
	return func() []metrics.Meter {
		ps := lv.PollStatus()
		read := lv.ReadingTimes()
		out := make([]metrics.Meter, len(cfg.Meters))
		for i, m := range cfg.Meters {
			st := ps[m.ID] // a meter whose bus has no poller: offline, never heard
			seen := st.Stats.LastSeen
			if at := read[m.ID]; at.After(seen) {
				seen = at
			}
			out[i] = metrics.Meter{ID: m.ID, Tenant: m.Tenant, Bus: m.Bus, Online: st.Online, LastSeen: seen,
				Requests: st.Stats.Requests, Errors: st.Stats.Errors}
		}
		return out
	}
}

// mqttBuses names cfg's buses of MQTT meters, whose error kinds differ
// from a Modbus bus's.
func mqttBuses(cfg *config.Config) map[string]bool {
	out := make(map[string]bool)
	for _, b := range cfg.Buses {
		if b.IsMQTT() {
			out[b.Name] = true
		}
	}
	return out
}
