package i18n

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLocalizer_EventText(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	cases := []struct {
		name string
		lang Lang
		kind string
		args map[string]string
		want string
	}{
		{"money and a time in the site's zone", ZhCN, "cutoff_scheduled",
			map[string]string{"tenant_name": "一楼 星巴克", "balance": "-1234.5612", "cut_at": "2026-11-30T10:04:00Z"},
			"一楼 星巴克：余额已用尽（余额 -¥1,234.56），如未充值将于 2026-11-30 18:04:00 断电。"},
		{"the same in English", En, "cutoff_scheduled",
			map[string]string{"tenant_name": "Shop 1", "balance": "0.005", "cut_at": "2026-11-30T18:04:00+08:00"},
			"Shop 1: credit used up (balance ¥0.01); power will be cut at 2026-11-30 18:04:00 unless topped up."},
		{"words for codes, a form", ZhCN, "topup_receipt",
			map[string]string{"tenant_name": "T", "amount": "1000", "channel": "wechat", "ref": "PAY-1", "receipt": "R00000007", "balance": "1200.5"},
			"T：充值 ¥1,000.00 已到账（微信支付，流水号 PAY-1，收据号 R00000007），余额 ¥1,200.50。"},
		{"a form picks the sentence", En, "protection",
			map[string]string{"form": "lifted", "tenant_name": "T", "actor": "ann", "reason": "paid"},
			"T: protection lifted by ann: paid"},
		{"durations and energy", ZhCN, "bus_down",
			map[string]string{"form": "no_error", "bus": "a", "meters": "12", "for_s": "200"},
			"总线 a 故障：其下 12 块电表已 3 分钟 20 秒 无应答。请检查转换器电源、总线接线、波特率和校验位。"},
		{"a step back keeps its sign", En, "clock_step",
			map[string]string{"step_s": "-3600", "passed_s": "60", "wall_s": "-3540"},
			"The clock stepped -1 h (1 min passed, the wall clock moved -59 min)."},
		{"grouped energy and milliseconds", En, "relay_closed",
			map[string]string{"meter": "M-1", "why": "may_draw", "relay": "closed", "took_ms": "1234"},
			"Relay of meter M-1 closed (Automatic: the account may draw power), read back: Closed (power on), after 1,234 ms."},
		{"kWh grouped", ZhCN, "bypass_suspected",
			map[string]string{"meter": "M-101", "kwh": "1234.5", "since_at": "2026-11-30T18:04:00+08:00"},
			"疑似绕表用电：电表 M-101 的继电器处于分闸状态，但自 2026-11-30 18:04:00 起表码仍增加了 1,234.500 kWh。"},
		{"an alarm's kind as its word", ZhCN, "alarm_acknowledged",
			map[string]string{"actor": "ann", "alarm": "7", "kind": "meter_offline", "subject": "M-1", "note": "换了保险丝"},
			"ann 已确认告警 7（电表离线，M-1）：换了保险丝"},
	}
	for _, c := range cases {
		l := New(c.lang, shanghai)
		if got := l.EventText(c.kind, c.args, "FALLBACK"); got != c.want {
			t.Errorf("%s: EventText(%s, %v) =\n%q; want\n%q", c.name, c.kind, c.args, got, c.want)
		}
	}
}

// TestLocalizer_EventText_Fallback: what cannot be told in the reader's
// words is told by the stored English, never as a sentence with a hole.
func TestLocalizer_EventText_Fallback(t *testing.T) {
	l := New(ZhCN, nil)
	full := map[string]string{"tenant_name": "T", "balance": "1.00"}
	cases := []struct {
		name string
		kind string
		args map[string]string
		why  string
	}{
		{"stored before events had args", "cut_off", nil, "needs {tenant_name}"},
		{"an arg missing", "cut_off", map[string]string{"tenant_name": "T"}, "needs {balance}"},
		{"money that is not a decimal", "cut_off", map[string]string{"tenant_name": "T", "balance": "1,00"}, "arg balance"},
		{"a time that is not RFC 3339", "cutoff_scheduled", map[string]string{"tenant_name": "T", "balance": "1", "cut_at": "18:04"}, "arg cut_at"},
		{"another kind's args", "bus_up", full, "needs {bus}"},
		{"a kind without a sentence", "no_such_kind", full, "no message event_text.no_such_kind"},
		{"a form without a sentence", "cut_off", map[string]string{"form": "other", "tenant_name": "T", "balance": "1"}, "no message event_text.cut_off.other"},
	}
	for _, c := range cases {
		if got := l.EventText(c.kind, c.args, "the stored text"); got != "the stored text" {
			t.Errorf("%s: got %q; want the fallback", c.name, got)
		}
		_, err := l.EventSentence(c.kind, c.args)
		if !errors.Is(err, ErrNoSentence) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: got error %v; want ErrNoSentence saying %q", c.name, err, c.why)
		}
	}
	if _, err := l.EventSentence("bus_down", map[string]string{"form": "no_error", "bus": "a", "meters": "1", "for_s": "1.5"}); err == nil {
		t.Error("seconds 1.5 accepted; want an error")
	}
	if got := l.EventText("cut_off", full, "x"); got != "T：已欠费断电，余额 ¥1.00。" {
		t.Errorf("got %q with every arg", got)
	}
}

// TestEventText_PlaceholdersHaveConventions: every sentence's placeholders
// are names the conventions of doc.go know how to write, or plain facts;
// a misspelt convention ("balanse") would otherwise show unformatted.
func TestEventText_PlaceholdersHaveConventions(t *testing.T) {
	// Facts shown as they are: ids, names, counts, free text.
	plain := map[string]bool{"actor": true, "address": true, "alarm": true, "bus": true, "db": true, "error": true,
		"failures": true, "meter": true, "meters": true, "needed": true, "note": true, "path": true, "port": true,
		"readings": true, "reason": true, "receipt": true, "ref": true, "rescued": true, "subject": true, "tenant": true,
		"tenant_name": true, "user": true,
		"changes": true, // a reload's, one line in every language (gateway/reloaddiff.go)
		// The rule alarms' measurements (gateway/alarm), decimal numbers in
		// the units their names end with, and the phase or terminal letter.
		"phase": true, "point": true, "current_a": true, "limit_a": true, "rated_a": true, "step_kw": true, "from_w": true,
		"to_w": true, "power_w": true, "stddev_kw": true, "limit_kw": true, "voltage_v": true, "limit_v": true, "high_v": true,
		"low_v": true, "pf": true, "limit": true, "value": true,
		// The outbox's: a notice's recipient and the channel's name.
		"to": true, "via": true, "delivery": true, "of": true, "attempts": true,
		// An e-invoice's number and its link, as the platform gave them.
		"number": true, "url": true,
		// A refused command of the group's platform (gateway/uplink): its
		// id, its key's id and the refusal's sentence.
		"command": true, "key": true, "detail": true}
	l := New(En, nil)
	for _, id := range IDs() {
		if !strings.HasPrefix(id, "event_text.") {
			continue
		}
		for _, name := range placeholders(catalogs[En][id]) {
			if plain[name] || wordArg(name) != "" {
				continue
			}
			if w, err := l.arg(name, "x"); err == nil && w == "x" {
				t.Errorf("%s: {%s} is neither a plain fact nor written by a convention", id, name)
			}
		}
	}
}

func TestEventArgs(t *testing.T) {
	if got := EventArgs("cutoff_scheduled"); !slices.Equal(got, []string{"balance", "cut_at", "tenant_name"}) {
		t.Errorf("EventArgs(cutoff_scheduled) = %q", got)
	}
	// A kind with forms: the facts of every form.
	for _, kind := range []string{"notify_resent", "relay_override"} {
		all := EventArgs(kind)
		for id, text := range catalogs[En] {
			if id == EventTextID(kind, "") || strings.HasPrefix(id, EventTextID(kind, "")+".") {
				for _, p := range placeholders(text) {
					if !slices.Contains(all, p) {
						t.Errorf("EventArgs(%s) = %q lacks %s of %s", kind, all, p, id)
					}
				}
			}
		}
	}
	if got := EventArgs("no_such_kind"); len(got) != 0 {
		t.Errorf("EventArgs of an unknown kind = %q; want none", got)
	}
	// warning_1 is not warning_10's prefix: only its own sentences count.
	if got := EventArgs("warning_1"); slices.Contains(got, "cut_at") {
		t.Errorf("EventArgs(warning_1) = %q", got)
	}
}
