package config

import "time"

// humanTimeLayout shows a time to a person: to the minute, with the
// offset, so that "18:04 +08:00" cannot be read in another zone. Zone
// abbreviations are not used: China's "CST" is also the US's Central.
const humanTimeLayout = "2006-01-02 15:04 Z07:00"

// SiteTime returns t in the site's zone (site.timezone): every time shown to
// a person or sent as JSON is in it. A configuration not yet validated has
// no zone: t is returned in UTC then, never in the server's own zone. The
// zero time stays the zero time ("never"), not a moment in 0001 in the
// zone's local mean time.
func (c *Config) SiteTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	if c == nil || c.Location == nil {
		return t.UTC()
	}
	return t.In(c.Location)
}

// HumanTime formats t for event texts, messages and logs a person reads:
// in the site's zone, to the minute, with its offset.
func (c *Config) HumanTime(t time.Time) string {
	return c.SiteTime(t).Format(humanTimeLayout)
}
