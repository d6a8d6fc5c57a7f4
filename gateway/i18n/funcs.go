package i18n

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"mallgrid/billing"
)

// Funcs returns the template functions of a page in the Localizer's
// language:
//
//	t        message by id, with name, value pairs for its placeholders
//	money    billing.Money or a decimal string ("1234.5") → "¥1,234.50"
//	kwh      int64 Wh or a decimal kWh string ("1234.567") → "1,234.567"; "" → "—"
//	number   an integer with grouping
//	time, date, clock   time.Time or *time.Time (nil: "—") in the site's zone
//	zone     the zone and its offset at a time
//	ago      how long before now a time (or *time.Time) was: {{ago .LastSeen $now}}
//	state, hold, relay, role, meterRole, event, entry, channel, pollError,
//	alarmState, severity, quantity, langName, window, relayWhy
//	         the word for a code; online the word for a bool
//	eventText an event's sentence from its kind, args and stored text:
//	         {{eventText .Kind .Args .Text}}
//
// money and kwh fail the template on a string that is not a decimal: the
// API's views carry exact decimal strings, so that is a bug to see, not
// a value to guess.
func (l Localizer) Funcs() template.FuncMap {
	return template.FuncMap{
		"t":      l.T,
		"money":  l.moneyOf,
		"kwh":    l.kwhOf,
		"number": l.numberOf,
		"time":   func(t any) (string, error) { return l.timeOf(t, l.Time) },
		"date":   func(t any) (string, error) { return l.timeOf(t, l.Date) },
		"clock":  func(t any) (string, error) { return l.timeOf(t, l.Clock) },
		"zone":   l.Zone,
		"ago": func(t any, now time.Time) (string, error) {
			return l.timeOf(t, func(t time.Time) string { return l.Ago(t, now) })
		},
		"state":      l.State,
		"hold":       l.Hold,
		"relay":      l.Relay,
		"online":     l.Online,
		"role":       l.Role,
		"meterRole":  l.MeterRole,
		"event":      l.Event,
		"entry":      l.Entry,
		"channel":    l.Channel,
		"pollError":  l.PollError,
		"langName":   l.LangName,
		"alarmState": l.AlarmState,
		"severity":   l.Severity,
		"quantity":   l.Quantity,
		"window":     l.Window,
		"relayWhy":   l.RelayWhy,
		"eventText":  l.EventText,
	}
}

func (l Localizer) moneyOf(v any) (string, error) {
	switch v := v.(type) {
	case billing.Money:
		return l.Money(v), nil
	case string:
		m, err := billing.ParseMoney(v)
		if err != nil {
			return "", err
		}
		return l.Money(m), nil
	}
	return "", fmt.Errorf("money: %T is not an amount", v)
}

func (l Localizer) numberOf(v any) (string, error) {
	switch v := v.(type) {
	case int:
		return l.Number(int64(v)), nil
	case int64:
		return l.Number(v), nil
	case int32:
		return l.Number(int64(v)), nil
	case uint64:
		return group(v, false), nil
	}
	return "", fmt.Errorf("number: %T is not an integer", v)
}

func (l Localizer) kwhOf(v any) (string, error) {
	switch v := v.(type) {
	case int64:
		return l.KWh(v), nil
	case string:
		if v == "" {
			return "—", nil
		}
		wh, err := parseKWh(v)
		if err != nil {
			return "", err
		}
		return l.KWh(wh), nil
	}
	return "", fmt.Errorf("kwh: %T is not energy", v)
}

func (l Localizer) timeOf(v any, f func(time.Time) string) (string, error) {
	switch v := v.(type) {
	case time.Time:
		return f(v), nil
	case *time.Time:
		if v == nil {
			return f(time.Time{}), nil
		}
		return f(*v), nil
	}
	return "", fmt.Errorf("%T is not a time", v)
}

// parseKWh reads a decimal kWh string with at most three decimals, as the
// API writes energy, into Wh, exactly.
func parseKWh(s string) (int64, error) {
	bad := fmt.Errorf("kwh: %q is not a decimal kWh with at most three decimals", s)
	neg := strings.HasPrefix(s, "-")
	whole, frac, dot := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || len(whole) > 15 || (dot && frac == "") || len(frac) > 3 || !digits(whole) || !digits(frac) {
		return 0, bad
	}
	var wh int64
	for _, c := range whole + (frac + "000")[:3] {
		wh = wh*10 + int64(c-'0')
	}
	if neg {
		wh = -wh
	}
	return wh, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
