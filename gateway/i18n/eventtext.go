package i18n

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"mallgrid/billing"
)

// FormArg is the arg that picks one of a kind's sentences: an event whose
// args hold form "lifted" is told by event_text.<kind>.lifted; one without
// by event_text.<kind>. It fills no placeholder.
const FormArg = "form"

// ErrNoSentence is returned by EventSentence when an event cannot be told
// in the Localizer's words: its kind (or form) has no sentence, an arg a
// placeholder needs is missing, or an arg is not what its name says (a
// balance that is not a decimal).
var ErrNoSentence = errors.New("no sentence for the event")

// EventTextID returns the id of the sentence that tells an event of kind
// in form ("" for the kind's own).
func EventTextID(kind, form string) string {
	if form == "" {
		return "event_text." + kind
	}
	return "event_text." + kind + "." + form
}

// EventText returns an event's sentence in the Localizer's language: the
// message EventTextID(kind, args["form"]) with its placeholders filled
// from args as doc.go's conventions say (money as ¥1,234.56, times in the
// site's zone, …). It returns fallback, the event's stored English Text,
// when EventSentence cannot tell it: an event stored before its kind had
// args, or one whose producer is newer than the catalog.
func (l Localizer) EventText(kind string, args map[string]string, fallback string) string {
	s, err := l.EventSentence(kind, args)
	if err != nil {
		return fallback
	}
	return s
}

// EventSentence is EventText without the fallback: the sentence, or an
// error wrapping ErrNoSentence that says what is missing or wrong.
func (l Localizer) EventSentence(kind string, args map[string]string) (string, error) {
	id := EventTextID(kind, args[FormArg])
	text, ok := catalogs[l.Lang()][id]
	if !ok {
		return "", fmt.Errorf("%w: no message %s in %s", ErrNoSentence, id, l.Lang())
	}
	vals := make(map[string]string, len(args))
	for _, name := range placeholders(text) {
		v, ok := args[name]
		if !ok {
			return "", fmt.Errorf("%w: %s needs {%s}, which the event has not", ErrNoSentence, id, name)
		}
		w, err := l.arg(name, v)
		if err != nil {
			return "", fmt.Errorf("%w: %s: arg %s: %v", ErrNoSentence, id, name, err)
		}
		vals[name] = w
	}
	return fill(text, vals), nil
}

// arg writes one event arg by its name's convention (see doc.go).
func (l Localizer) arg(name, v string) (string, error) {
	switch {
	case name == "at" || strings.HasSuffix(name, "_at"):
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return "", fmt.Errorf("%q is not an RFC 3339 time", v)
		}
		return l.Time(t), nil
	case name == "amount" || name == "balance" || strings.HasSuffix(name, "_yuan"):
		m, err := billing.ParseMoney(v)
		if err != nil {
			return "", err
		}
		return l.Money(m), nil
	case name == "kwh" || strings.HasSuffix(name, "_kwh"):
		wh, err := parseKWh(v)
		if err != nil {
			return "", err
		}
		return l.KWh(wh), nil
	case strings.HasSuffix(name, "_s"):
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > 1<<40 || n < -(1<<40) {
			return "", fmt.Errorf("%q is not whole seconds", v)
		}
		// A clock may step back: the sign is kept, which Duration drops.
		if n < 0 {
			return "-" + l.Duration(time.Duration(-n)*time.Second), nil
		}
		return l.Duration(time.Duration(n) * time.Second), nil
	case strings.HasSuffix(name, "_ms"):
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not whole milliseconds", v)
		}
		return l.Number(n), nil
	}
	if prefix := wordArg(name); prefix != "" {
		return l.word(prefix, v), nil
	}
	return v, nil
}

// wordArg returns the message prefix of an arg that holds a code shown as
// a word ("state" → "state."), or "" for an arg shown as it is.
func wordArg(name string) string {
	switch name {
	case "state", "hold", "relay", "channel", "role", "meter_role":
		return name + "."
	case "why":
		return "relay.why."
	case "kind":
		return "event."
	}
	return ""
}

// CheckEvent returns nil when an event of kind with args can be told in
// every language's own words, else the first language's problem (an
// ErrNoSentence): the tests of the packages that make events call it on
// every event they store, so that a producer that leaves out an arg its
// sentence needs fails there.
func CheckEvent(kind string, args map[string]string) error {
	for _, lang := range Langs() {
		if _, err := New(lang, nil).EventSentence(kind, args); err != nil {
			return err
		}
	}
	return nil
}

// EventArgs returns the facts the sentences of kind tell, sorted: the
// placeholders of event_text.<kind> and of each of its forms, in any
// language. A provider template's params are checked against them; an
// unknown kind has none.
func EventArgs(kind string) []string {
	var out []string
	for _, c := range catalogs {
		for id, text := range c {
			if id != EventTextID(kind, "") && !strings.HasPrefix(id, EventTextID(kind, "")+".") {
				continue
			}
			for _, name := range placeholders(text) {
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
