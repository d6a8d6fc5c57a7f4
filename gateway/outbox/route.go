package outbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// Route returns the store's router for cfg's notify routes: for an event
// of a kind a route names, one delivery per channel of the route and
// recipient with an address on it — each contact of the event's tenant
// (to: tenant) or each member of staff (to: staff). A webhook is one
// recipient however many people the route names, none included: the
// receiving system (the mall's app) fans out. The same channel and recipient named by two routes get one
// delivery, the first route's.
//
// The router runs inside the store's write transactions: it reads only
// cfg, which does not change while the gateway runs.
func Route(cfg *config.Config) store.Router {
	byKind := make(map[string][]int)
	for i, rt := range cfg.Notify.Routes {
		for _, k := range rt.Events {
			byKind[k] = append(byKind[k], i)
		}
	}
	return func(dbID string, e store.Event) []store.Delivery {
		routes := byKind[e.Kind]
		if len(routes) == 0 || selfNotice(e) {
			return nil
		}
		token := eventToken()
		var out []store.Delivery
		seen := make(map[string]bool)
		for _, ri := range routes {
			rt := cfg.Notify.Routes[ri]
			people, ok := recipients(cfg, rt.To, e)
			if !ok {
				continue
			}
			for _, name := range rt.Channels {
				ch, ok := cfg.Notify.Channel(name)
				if !ok || (strings.HasPrefix(e.Kind, "notify_") && e.Args["via"] == name) {
					// A channel's own trouble is not sent over it.
					continue
				}
				targets := people
				if ch.Kind == config.ChannelWebhook {
					// One notice for the receiving system, in the first
					// person's language: it fans out to them itself.
					lang := "zh-CN"
					if len(people) > 0 {
						lang = people[0].r.Lang
					}
					targets = []recipient{{key: "hook-" + rt.To, r: store.Recipient{Name: webhookName(rt.To, e), Lang: lang}}}
				}
				for _, p := range targets {
					if !reaches(ch, p.r) {
						continue
					}
					if seen[name+"\x00"+p.key] {
						continue
					}
					seen[name+"\x00"+p.key] = true
					out = append(out, store.Delivery{ID: DeliveryID(dbID, e.ID, token, ri, name, p.key), Route: ri, To: rt.To, Tenant: e.Tenant,
						Channel: name, Recipient: p.r})
				}
			}
		}
		return out
	}
}

// DeliveryID is the id of the delivery of event id by route over channel
// to recipient key: "t0" (the tenant's first contact), "s1" (the second
// member of staff) or "hook", after the first 12 characters of the
// database's identity (dbID) and with the event's token (eventToken):
// event ids begin again at 1 in a database started afresh, and again at a
// backup's last one in a restored database, and a receiver that drops ids
// it has seen must not drop their notices. It holds only letters, digits,
// "-" and "_", as headers and the providers' id fields take them.
func DeliveryID(dbID string, event uint64, token string, route int, channel, key string) string {
	id := strconv.FormatUint(event, 10) + "-" + token + "-" + strconv.Itoa(route) + "-" + channel + "-" + key
	if dbID == "" {
		return id
	}
	return dbID[:min(len(dbID), idPrefix)] + "-" + id
}

// idPrefix is how much of the database's identity a delivery id carries.
const idPrefix = 12

// eventToken is 8 random hex digits, one draw per event: stored with its
// deliveries in the event's transaction, so every attempt and every
// restart sends the same id, while an event of the same number in a
// restored database gets another.
func eventToken() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails: it crashes the program instead
	return hex.EncodeToString(b[:])
}

// selfNotice reports whether e is the dead letter of a notice that was
// itself about the outbox: sending it would be news of news, and two
// broken channels would feed each other's alarms for ever.
func selfNotice(e store.Event) bool {
	return e.Kind == store.KindNotifyDeadLetter && strings.HasPrefix(e.Args["kind"], "notify_")
}

type recipient struct {
	key string
	r   store.Recipient
}

// recipients are the people a route names for e, and false when it names
// no one: a tenant route for an event of no configured tenant.
func recipients(cfg *config.Config, to string, e store.Event) ([]recipient, bool) {
	var out []recipient
	switch to {
	case config.RouteTenant:
		t, ok := cfg.Tenant(e.Tenant)
		if !ok {
			return nil, false
		}
		for j, c := range t.Contacts {
			out = append(out, recipient{key: fmt.Sprintf("t%d", j), r: store.Recipient{Name: c.Name, Phone: c.Phone, Email: c.Email,
				OpenID: c.WeChatOpenID, Lang: c.Language}})
		}
	case config.RouteStaff:
		for j, s := range cfg.Notify.Staff {
			out = append(out, recipient{key: fmt.Sprintf("s%d", j), r: store.Recipient{Name: s.Name, Phone: s.Phone, Email: s.Email,
				OpenID: s.WeChatOpenID, Lang: s.Language}})
		}
	}
	return out, true
}

// reaches reports whether r has the address channel ch delivers to.
func reaches(ch config.NotifyChannel, r store.Recipient) bool {
	switch ch.Kind {
	case config.ChannelWeChat:
		return r.OpenID != ""
	case config.ChannelSMS:
		return r.Phone != ""
	case config.ChannelEmail:
		return r.Email != ""
	}
	return true
}

func webhookName(to string, e store.Event) string {
	if to == config.RouteTenant {
		return "tenant " + e.Tenant
	}
	return "staff"
}
