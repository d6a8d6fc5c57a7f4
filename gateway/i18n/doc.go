// Package i18n holds the words of the control room's pages in English and
// Simplified Chinese, and writes money, energy and times for them.
//
// # Use
//
// A request's language is Negotiate(r.Header.Get("Accept-Language"),
// cookie): the user's remembered choice (the CookieName cookie, or a stored
// preference) wins over the browser's header; anything that is neither
// English nor simplified Chinese is English. New(lang, site) gives a
// Localizer for it, and l.Funcs() the template functions a page uses:
//
//	{{t "nav.meters"}}                 a message by id
//	{{t "login.too_many" "wait" .Wait}} with its {wait} placeholder
//	{{money .Balance}}                 ¥1,234.56
//	{{kwh .ImportKWh}}                 1,234.567
//	{{time .At}} {{date .At}}          in the site's time zone
//	{{ago .LastSeen $now}}             "5 min ago", "5 分钟前"
//	{{state .State}} {{relay .Relay.Actual}} {{event .Kind}} {{role .Role}}
//	{{eventText .Kind .Args .Text}}    an event's sentence (see Events)
//
// Scripts get the same catalog as JSON from Localizer.Messages.
//
// # Catalogs
//
// The catalogs are locales/en.json and locales/zh-CN.json, embedded: flat
// maps from a stable message id ("state.cut_off") to its text, with
// placeholders written {name}. Both hold the same ids, no text is empty,
// and the placeholders of an id are the same in both; the tests fail
// otherwise, and fail when the gateway stores an event kind, or declares an
// account state, hold, role or ledger entry kind, that has no word here.
// CheckTemplates lets a package with templates prove each {{t "id"}} names
// a message.
//
// # Events
//
// An event (store.Event) keeps its English sentence, Text, and the facts
// it tells by name, Args. EventText(kind, args, text) tells it in the
// Localizer's language from the message event_text.<kind>, or
// event_text.<kind>.<form> when args["form"] names one of the kind's
// other sentences (a protection set or lifted, an offline meter with or
// without its last error). Each placeholder is filled from the arg of its
// name, written by the name's convention:
//
//	at, *_at                 an RFC 3339 time → a time in the site's zone
//	amount, balance, *_yuan  a decimal amount ("-12.3") → "-¥12.30"
//	kwh, *_kwh               decimal kWh ("1234.5") → "1,234.500"
//	*_s                      whole seconds, signed → "3 min 20 s", "-1 h"
//	*_ms                     whole milliseconds → "1,234" (the sentence says ms)
//	state, hold, relay, channel, role, meter_role
//	                         a code → its word (state.…, hold.…, …)
//	why                      a relay's reason code → relay.why.…
//	kind                     an event kind → its label (event.…)
//	anything else            as it is: ids, names, counts, free text
//
// An event stored before its kind had args, an arg missing or not of its
// convention, or a kind or form without a sentence: EventText returns the
// stored Text instead, never a sentence with a hole. The pages' script
// (gateway/web/assets/static/app.js) fills the same messages by the same
// conventions. The tests fail when a stored kind has no event_text
// sentence in both languages, and the gateway's tests render every event
// they store in both.
//
// # Money, energy and times
//
// Money is shown to the fen, rounded half away from zero, with the yuan
// sign and comma grouping in both languages ("-¥1,234.56"); energy in kWh
// to the Wh ("1,234.567"). Both are exact integer arithmetic. Times are
// shown in the site's zone (site.timezone) as "2006-01-02 15:04:05", the
// form Chinese control rooms and the gateway's logs use; the zone's offset
// is written once by Zone ("UTC+08:00"), not on every time.
package i18n
