package i18n

import (
	"fmt"
	"maps"
	"time"

	"mallgrid/billing"
)

// Localizer writes the pages' words, money, energy and times in one
// language, with times in one zone. The zero Localizer is English in UTC.
// It is a small value, safe to copy and to use from many goroutines.
type Localizer struct {
	lang Lang
	loc  *time.Location
}

// New returns the Localizer for lang, showing times in loc (the site's
// site.timezone). A lang without a catalog is English; a nil loc is UTC.
func New(lang Lang, loc *time.Location) Localizer {
	if _, ok := catalogs[lang]; !ok {
		lang = En
	}
	return Localizer{lang: lang, loc: loc}
}

// Lang returns the Localizer's language.
func (l Localizer) Lang() Lang {
	if l.lang == "" {
		return En
	}
	return l.lang
}

// Location returns the zone times are shown in.
func (l Localizer) Location() *time.Location {
	if l.loc == nil {
		return time.UTC
	}
	return l.loc
}

// T returns message id in the Localizer's language with its placeholders
// filled from args, a list of name, value pairs: T("login.too_many",
// "wait", 5*time.Minute). A value is written as the Localizer writes it:
// Money as money, time.Time as a time, time.Duration as a duration, an int
// with grouping, anything else by fmt.Sprint. An id the catalog lacks comes back as the id itself, so a
// page shows which message is missing instead of nothing; a placeholder
// without a value stays "{name}". Neither happens with ids the tests
// check.
func (l Localizer) T(id string, args ...any) string {
	text, ok := catalogs[l.Lang()][id]
	if !ok {
		if text, ok = catalogs[En][id]; !ok {
			return id
		}
	}
	if len(args) == 0 {
		return text
	}
	vals := make(map[string]string, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		name, ok := args[i].(string)
		if !ok {
			continue
		}
		vals[name] = l.value(args[i+1])
	}
	return fill(text, vals)
}

// value writes one placeholder's value.
func (l Localizer) value(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case billing.Money:
		return l.Money(v)
	case time.Time:
		return l.Time(v)
	case time.Duration:
		return l.Duration(v)
	case *time.Time:
		if v == nil {
			return l.Time(time.Time{})
		}
		return l.Time(*v)
	case int:
		return group(magnitude(int64(v)), v < 0)
	case int64:
		return group(magnitude(v), v < 0)
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

// Messages returns a copy of the whole catalog of the Localizer's
// language, for scripts that write words on the page (served as JSON
// next to it).
func (l Localizer) Messages() map[string]string {
	return maps.Clone(catalogs[l.Lang()])
}

// word returns the message prefix+code, or code itself when there is none:
// a state or kind added after the catalog still shows, as its code.
func (l Localizer) word(prefix, code string) string {
	if text, ok := catalogs[l.Lang()][prefix+code]; ok {
		return text
	}
	return code
}

// State returns the word for an account state ("cut_off" → "Cut off",
// "已断电"), as billing/policy names the states; "protected" is the word
// for an account an operator's flag protects.
func (l Localizer) State(state string) string { return l.word("state.", state) }

// Hold returns the word for what holds a due cut-off (billing/policy Hold).
func (l Localizer) Hold(hold string) string { return l.word("hold.", hold) }

// Relay returns the word for a relay state: "open", "closed" or "unknown".
func (l Localizer) Relay(state string) string { return l.word("relay.", state) }

// Online returns the word for a meter answering or not.
func (l Localizer) Online(online bool) string {
	if online {
		return l.T("meter.online")
	}
	return l.T("meter.offline")
}

// Role returns the word for a user's role: viewer, operator, finance,
// admin.
func (l Localizer) Role(role string) string { return l.word("role.", role) }

// MeterRole returns the word for a meter's role: tenant, public, main.
func (l Localizer) MeterRole(role string) string { return l.word("meter_role.", role) }

// Event returns the short label of an event kind the gateway stores
// ("meter_offline" → "Meter offline", "电表离线").
func (l Localizer) Event(kind string) string { return l.word("event.", kind) }

// Entry returns the word for a ledger entry kind (topup, charge, …).
func (l Localizer) Entry(kind string) string { return l.word("entry.", kind) }

// Channel returns the word for a top-up's channel (cash, wechat, alipay,
// bank).
func (l Localizer) Channel(channel string) string { return l.word("channel.", channel) }

// PollError returns the word for a kind of polling error (timeout, crc, …,
// as the meters' statistics count them).
func (l Localizer) PollError(kind string) string { return l.word("poll_error.", kind) }

// LangName returns a language's own name for the switch ("English",
// "简体中文"), the same in every language.
func (l Localizer) LangName(lang Lang) string { return l.word("lang.", string(lang)) }

// AlarmState returns the word for an alarm's state (active, acknowledged,
// cleared).
func (l Localizer) AlarmState(state string) string { return l.word("alarm.state.", state) }

// Severity returns the word for an alarm's severity (critical, warning).
func (l Localizer) Severity(severity string) string { return l.word("alarm.severity.", severity) }

// Quantity returns the name, with its unit, of a measured quantity as the
// meter views name it ("voltage_a" → "Voltage A (V)").
func (l Localizer) Quantity(q string) string { return l.word("quantity.", q) }

// Window returns the word for a tariff window (sharp, peak, flat,
// valley); another window's name (a tier of a tiered tariff) as it is.
func (l Localizer) Window(window string) string { return l.word("window.", window) }

// RelayWhy returns why a relay is wanted the way it is, by the enforcer's
// code (override, not_tenant, exhausted, may_draw).
func (l Localizer) RelayWhy(code string) string { return l.word("relay.why.", code) }
