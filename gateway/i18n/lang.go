package i18n

import (
	"strings"

	"golang.org/x/text/language"
)

// Lang is a language the pages are written in. Its value is the BCP 47 tag
// the page's lang attribute and the language cookie carry.
type Lang string

// The languages of the catalogs. En is the fallback: a browser that asks
// for neither gets English.
const (
	En   Lang = "en"
	ZhCN Lang = "zh-CN"
)

// CookieName is the cookie that remembers a browser's choice of language.
const CookieName = "lang"

// Langs returns the languages there are catalogs for, English first.
func Langs() []Lang { return []Lang{En, ZhCN} }

// String returns the tag, "en" or "zh-CN".
func (l Lang) String() string { return string(l) }

// ParseLang reads a language tag as a cookie, a form or a user's stored
// preference gives it: any English is En; Chinese in simplified script
// (zh, zh-CN, zh-SG, zh-Hans, zh_CN, any case) is ZhCN. It reports false
// for anything else, including traditional Chinese (zh-TW, zh-HK,
// zh-Hant), which the catalogs do not have, and the empty string.
func ParseLang(s string) (Lang, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return "", false
	}
	t, err := language.Parse(s)
	if err != nil {
		return "", false
	}
	return fromTag(t)
}

// fromTag maps a parsed tag to a catalog's language.
func fromTag(t language.Tag) (Lang, bool) {
	base, _ := t.Base()
	switch base.String() {
	case "en":
		return En, true
	case "zh":
		// Script infers the script from the region when the tag names
		// none: zh-CN and zh-SG are Hans, zh-TW and zh-HK Hant, bare zh
		// Hans.
		if script, _ := t.Script(); script.String() == "Hans" {
			return ZhCN, true
		}
	}
	return "", false
}

// Negotiate picks the language of a response. A cookie naming a language
// wins, since it is what the user chose; otherwise the Accept-Language
// header's most preferred language there is a catalog for, by q-value (a
// language given q=0 is refused, not chosen); otherwise En. Entries of
// the header that do not parse are skipped, not allowed to spoil the rest.
// A "*" stands for any language and so gives En at its q-value.
func Negotiate(acceptLanguage, cookie string) Lang {
	if l, ok := ParseLang(cookie); ok {
		return l
	}
	// A browser sends a handful of entries; a header far beyond that is
	// not a browser's and is not worth parsing.
	if len(acceptLanguage) > 1024 {
		return En
	}
	best, bestQ := En, float32(0)
	for entry := range strings.SplitSeq(acceptLanguage, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		// Parsed one entry at a time: x/text refuses the whole header for
		// one bad entry.
		tags, qs, err := language.ParseAcceptLanguage(entry)
		if err != nil || len(tags) != 1 {
			continue
		}
		l, ok := fromTag(tags[0])
		if tags[0] == language.Make("mul") { // "*"
			l, ok = En, true
		}
		// Strictly greater: of equal q-values the first listed wins, as
		// the header's order is the user's order.
		if ok && qs[0] > bestQ {
			best, bestQ = l, qs[0]
		}
	}
	return best
}
