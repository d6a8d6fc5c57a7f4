package gateway

import (
	"mallgrid/gateway/live"
	"mallgrid/gateway/metrics"
)

// meterSamples is what a scrape reads of a generation's meters: the live
// picture's views (the status page's online and last seen, the pollers'
// counts), in metrics' own terms.
func meterSamples(lv *live.Picture) func() []metrics.Meter {
	return func() []metrics.Meter {
		views := lv.Meters()
		out := make([]metrics.Meter, len(views))
		for i, v := range views {
			out[i] = metrics.Meter{ID: v.ID, Tenant: v.Tenant, Bus: v.Bus, Online: v.Online, Requests: v.Stats.Requests, Errors: v.Stats.Errors}
			if v.LastSeen != nil {
				out[i].LastSeen = *v.LastSeen
			}
		}
		return out
	}
}
