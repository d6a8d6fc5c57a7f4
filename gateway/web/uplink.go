package web

import (
	"strings"
	"time"

	"mallgrid/gateway/i18n"
)

// uplinkLine is the dashboard's line of the uplink, as app.js's
// uplinkLine writes it from the status event: "Uplink: connected · 0
// waiting", "Uplink: disconnected for 2 h · 12,345 waiting (oldest 2 h)",
// and the last command handled.
func uplinkLine(l i18n.Localizer, u *UplinkView, now time.Time) string {
	var parts []string
	switch {
	case u.Connected:
		parts = append(parts, l.T("uplink.connected"))
	case u.Since.IsZero():
		parts = append(parts, l.T("uplink.disconnected"))
	default:
		parts = append(parts, l.T("uplink.disconnected_for", "for", span(l, now.Sub(u.Since))))
	}
	switch {
	case u.Error != "":
		parts = append(parts, l.T("uplink.unreadable"))
	case u.Depth > 0 && !u.Oldest.IsZero():
		parts = append(parts, l.T("uplink.waiting_oldest", "n", l.Number(u.Depth), "age", span(l, time.Duration(u.OldestAgeS)*time.Second)))
	default:
		parts = append(parts, l.T("uplink.waiting", "n", l.Number(u.Depth)))
	}
	if c := u.LastCommand; c != nil {
		if c.Status == "ok" {
			parts = append(parts, l.T("uplink.last_ok", "id", c.ID))
		} else {
			parts = append(parts, l.T("uplink.last_refused", "id", c.ID, "reason", c.Reason))
		}
	}
	return l.T("uplink.line", "text", strings.Join(parts, " · "))
}

// span is a wait in its largest whole unit, seconds to hours ("2 h"): how
// long a link has been down is read at a glance, not to the second.
func span(l i18n.Localizer, d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s >= 3600:
		return l.T("duration.hours", "n", s/3600)
	case s >= 60:
		return l.T("duration.minutes", "n", s/60)
	}
	return l.T("duration.seconds", "n", s)
}
