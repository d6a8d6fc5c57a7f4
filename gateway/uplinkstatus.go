package gateway

import (
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/upfeed"
	"mallgrid/gateway/uplink"
	"mallgrid/gateway/web"
)

// uplinkState is what the status reads of the uplink (uplink.Service).
type uplinkState interface {
	Status() (uplink.Status, error)
	LastCommand() (uplink.LastCommand, bool)
}

// uplinkView gives the status's uplink: up's state, its times in the
// site's zone, the broker without its credentials. An outbox that cannot
// be read is said (Error), and logged at most once a minute: the status
// is read every second by each open dashboard.
func uplinkView(cfg *config.Config, up uplinkState, now func() time.Time, log zerolog.Logger) func() *web.UplinkView {
	var mu sync.Mutex
	var lastLog time.Time
	return func() *web.UplinkView {
		v := &web.UplinkView{Broker: brokerHost(cfg.Uplink.Broker), SiteID: cfg.Uplink.SiteID}
		at := now()
		st, err := up.Status()
		if err != nil {
			v.Error = err.Error()
			mu.Lock()
			if at.Sub(lastLog) >= time.Minute {
				log.Error().Err(err).Msg("uplink status")
				lastLog = at
			}
			mu.Unlock()
		}
		v.Connected, v.Since = st.Connected, cfg.SiteTime(st.Since)
		v.Depth, v.Bytes, v.Head, v.LastAck = st.Depth, st.Bytes, st.Head, cfg.SiteTime(st.LastAck)
		if st.Depth > 0 && !st.OldestTime.IsZero() {
			v.Oldest = cfg.SiteTime(st.OldestTime)
			age := max(at.Sub(st.OldestTime), 0)
			v.OldestAgeS = int64(age / time.Second)
			v.Backlog = age > upfeed.BacklogAge
		}
		if c, ok := up.LastCommand(); ok {
			v.LastCommand = &web.UplinkCommandView{ID: c.ID, Status: c.Status, Reason: c.Reason, Duplicate: c.Duplicate, Time: cfg.SiteTime(c.Time)}
		}
		return v
	}
}

// brokerHost is a broker's address for the control room: its scheme, host
// and port, never a user or password written into it; "" for an address
// that cannot be read (checked at load: not expected).
func brokerHost(broker string) string {
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
