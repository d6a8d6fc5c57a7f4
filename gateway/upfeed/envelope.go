package upfeed

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"mallgrid/store"
)

// EnvelopeVersion is the envelope's "v": a consumer refuses a version it
// does not know rather than misread it.
const EnvelopeVersion = 1

// envelope is the payload published for one outbox message; its field
// order is the wire's.
type envelope struct {
	V    int             `json:"v"`
	Site string          `json:"site"`
	Seq  uint64          `json:"seq"`
	Kind string          `json:"kind"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Topic is the topic m is published on: mallgrid/<site_id>/up/<kind>.
func Topic(siteID string, m store.UplinkMessage) string {
	return "mallgrid/" + siteID + "/up/" + m.Kind
}

// Envelope returns the payload published for m:
// {"v":1,"site":…,"seq":…,"kind":…,"time":…,"data":{…}}. It is
// deterministic — the same message gives the same bytes, also after it was
// read back from the database — so a message sent again after a lost
// acknowledgement is byte-identical, and a consumer deduplicates it by
// (site, seq). An error for a message without seq, kind or site, or whose
// data is not JSON.
func Envelope(siteID string, m store.UplinkMessage) ([]byte, error) {
	if siteID == "" || m.Seq == 0 || m.Kind == "" {
		return nil, errors.New("upfeed: envelope needs a site, a seq and a kind")
	}
	b, err := json.Marshal(envelope{V: EnvelopeVersion, Site: siteID, Seq: m.Seq, Kind: m.Kind, Time: m.Time, Data: m.Data})
	if err != nil {
		return nil, fmt.Errorf("upfeed: envelope of message %d: %w", m.Seq, err)
	}
	return b, nil
}
