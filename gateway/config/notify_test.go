package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const notifyHead = "site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]\n"

// Each mistake in notify: is one problem at its line and key.
func TestParse_NotifyProblems(t *testing.T) {
	hook := "  channels: [{name: ops, kind: webhook, url: 'https://ops.example/h', secret: s}]\n"
	staff := "  staff: [{name: Duty, email: duty@plaza.example}]\n"
	cases := []struct{ name, notify, want string }{
		{"unknown kind", "  channels: [{name: ops, kind: pager}]\n", `t.yaml:4: notify.channels[0].kind: want one of webhook, wechat, sms, email, got "pager"`},
		{"bad name", "  channels: [{name: Ops!, kind: webhook, url: 'https://o.example/h', secret: s}]\n", `t.yaml:4: notify.channels[0].name: want 1..32 of a-z, 0-9, _ and -, got "Ops!"`},
		{"webhook without secret", "  channels: [{name: ops, kind: webhook, url: 'https://o.example/h'}]\n", "t.yaml:4: notify.channels[0].secret: required, not set"},
		{"webhook url", "  channels: [{name: ops, kind: webhook, url: 'ops.example', secret: s}]\n", `t.yaml:4: notify.channels[0].url: want an absolute http(s) URL, got "ops.example"`},
		{"key of another kind", "  channels:\n    - name: ops\n      kind: webhook\n      url: 'https://o.example/h'\n      secret: s\n      smtp: 'mail:25'\n",
			"t.yaml:9: notify.channels[0].smtp: not a key of a webhook channel (its keys: url, secret)"},
		{"sms provider", "  channels: [{name: s, kind: sms, provider: twilio}]\n", `t.yaml:4: notify.channels[0].provider: want one of aliyun, tencent, gateway, got "twilio"`},
		{"email tls", "  channels: [{name: m, kind: email, smtp: 'mail.example:587', tls: ssl, from: p@plaza.example}]\n",
			`t.yaml:4: notify.channels[0].tls: want one of none, starttls, tls, got "ssl"`},
		{"login in the clear", "  channels: [{name: m, kind: email, smtp: 'mail.example:25', tls: none, username: u, from: p@plaza.example}]\n",
			"t.yaml:4: notify.channels[0].username: no login is sent in the clear: use tls: starttls or tls"},
		{"route unknown channel", hook + staff + "  routes: [{events: [overload], to: staff, channels: [pager]}]\n",
			`t.yaml:6: notify.routes[0].channels[0]: unknown channel "pager"`},
		{"route unknown kind", hook + staff + "  routes: [{events: [overlaod], to: staff, channels: [ops]}]\n",
			`t.yaml:6: notify.routes[0].events[0]: unknown event kind "overlaod"`},
		{"route to whom", hook + staff + "  routes: [{events: [overload], to: boss, channels: [ops]}]\n",
			`t.yaml:6: notify.routes[0].to: want one of tenant, staff, got "boss"`},
		{"route to no staff", hook + "  routes: [{events: [overload], to: staff, channels: [ops]}]\n",
			"t.yaml:5: notify.routes[0].to: no staff to send to: notify.staff is empty"},
		{"template missing", "  channels: [{name: s, kind: sms, provider: aliyun, key_id: k, key_secret: s, sign_name: n}]\n" + staff +
			"  routes: [{events: [overload], to: staff, channels: [s]}]\n", "t.yaml:6: notify.routes[0].channels[0]: channel s has no template for overload"},
		{"staff unreachable", "  staff: [{name: Duty}]\n", "t.yaml:4: notify.staff[0]: want a phone, an email or a wechat_openid to reach Duty"},
		{"staff language", "  staff: [{name: Duty, email: d@plaza.example, language: fr}]\n", `t.yaml:4: notify.staff[0].language: want en or zh-CN, got "fr"`},
		{"quiet hours", "  quiet_hours: {from: '22:00', to: '8'}\n", `t.yaml:4: notify.quiet_hours.to: want a time of day like 22:00, got "8"`},
		{"backoff", "  backoff: {base: 2m, max: 1m}\n", "t.yaml:4: notify.backoff.max: 1m0s is shorter than backoff.base (2m0s)"},
		{"attempts", "  max_attempts: 0\n", "t.yaml:4: notify.max_attempts: want 1..100, got 0"},
		{"keep", "  keep: 90\n", `t.yaml:4: notify.keep: want whole days like 90d, 1d..1830d, got "90"`},
		{"names sharing variables", "  channels:\n    - {name: sms-gw, kind: webhook, url: 'https://a.example/h', secret: s}\n" +
			"    - {name: sms_gw, kind: webhook, url: 'https://b.example/h', secret: s}\n",
			"t.yaml:6: notify.channels[1].name: channel sms_gw and channel sms-gw would both read MALLGRID_NOTIFY_SMS_GW_SECRET: rename one"},
		{"a name and another's key sharing a variable", "  channels:\n    - {name: ali, kind: webhook, url: 'https://a.example/h', secret: s}\n" +
			"    - {name: ali_key, kind: webhook, url: 'https://b.example/h', secret: s}\n",
			"t.yaml:6: notify.channels[1].name: channel ali_key and channel ali would both read MALLGRID_NOTIFY_ALI_KEY_SECRET: rename one"},
		{"template keys short", "  channels:\n    - {name: s, kind: sms, provider: aliyun, key_id: k, key_secret: s, sign_name: n,\n" +
			"       templates: {warning_1: {id: SMS_1, params: [tenant_name, balance], keys: [thing1]}}}\n",
			"t.yaml:6: notify.channels[0].templates.warning_1.keys: 1 keys for 2 params: want one key a param, in their order"},
		{"template keys twice", "  channels:\n    - {name: s, kind: sms, provider: aliyun, key_id: k, key_secret: s, sign_name: n,\n" +
			"       templates: {warning_1: {id: SMS_1, params: [tenant_name, balance], keys: [thing1, thing1]}}}\n",
			`t.yaml:6: notify.channels[0].templates.warning_1.keys[1]: "thing1" twice`},
		{"rule alarm's severity a param", "  channels:\n    - {name: s, kind: sms, provider: aliyun, key_id: k, key_secret: s, sign_name: n,\n" +
			"       templates: {overload: {id: SMS_1, params: [meter, severity, colour]}}}\n",
			`t.yaml:6: notify.channels[0].templates.overload.params[2]: overload events have no "colour" (they have: current_a, limit_a, meter, phase, rated_a, severity)`},
		{"template param no fact", "  channels:\n    - {name: s, kind: sms, provider: aliyun, key_id: k, key_secret: s, sign_name: n,\n" +
			"       templates: {warning_1: {id: SMS_1, params: [tenant_name, balanse]}}}\n",
			`t.yaml:6: notify.channels[0].templates.warning_1.params[1]: warning_1 events have no "balanse" (they have: balance, tenant_name)`},
	}
	for _, tc := range cases {
		_, err := Parse("t.yaml", []byte(notifyHead+"notify:\n"+tc.notify), nil)
		ps := problems(t, err)
		if len(ps) != 1 || ps[0].Error() != tc.want {
			t.Errorf("%s: got\n%v\nwant exactly:\n%s", tc.name, err, tc.want)
		}
	}
}

// A secret variable for a key the channel's kind does not take is a
// warning, not silently set; a misspelt one is hinted at; the variables of
// an email channel's password work.
func TestParse_NotifySecretVariables(t *testing.T) {
	file := notifyHead + "notify:\n  channels:\n    - {name: ops, kind: webhook, url: 'https://o.example/h', secret: s}\n" +
		"    - {name: mail, kind: email, smtp: 'mail.example:587', username: u, from: p@plaza.example}\n"
	cfg, err := Parse("t.yaml", []byte(file), []string{"MALLGRID_NOTIFY_OPS_APP_SECRET=x", "MALLGRID_NOTIFY_MAIL_PASWORD=y", "MALLGRID_NOTIFY_MAIL_PASSWORD=z"})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cfg.Notify.Channel("ops"); c.AppSecret != "" {
		t.Errorf("webhook app_secret = %q; want it not set", c.AppSecret)
	}
	if c, _ := cfg.Notify.Channel("mail"); c.Password != "z" {
		t.Errorf("mail password = %q; want it from its variable", c.Password)
	}
	want := []string{
		"t.yaml: warning: env MALLGRID_NOTIFY_MAIL_PASWORD: unknown variable, ignored (did you mean MALLGRID_NOTIFY_MAIL_PASSWORD?)",
		"t.yaml: warning: env MALLGRID_NOTIFY_OPS_APP_SECRET: channel ops (webhook) takes no app_secret: ignored",
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.Error())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The defaults hold where the file leaves notify out; a secret comes from
// its variable, which is then no unknown variable.
func TestParse_NotifyDefaultsAndSecretFromEnv(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(notifyHead), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notify
	if n.MaxAttempts != 8 || n.RateLimit.PerHour != 6 || n.Backoff != (Backoff{Base: 30 * time.Second, Max: time.Hour}) || n.Timeout != 15*time.Second {
		t.Errorf("defaults = %+v", n)
	}
	file := notifyHead + "notify:\n  channels: [{name: ops-1, kind: webhook, url: 'https://o.example/h'}]\n  backoff: {base: 5s}\n"
	cfg, err = Parse("t.yaml", []byte(file), []string{"MALLGRID_NOTIFY_OPS_1_SECRET=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cfg.Notify.Channel("ops-1"); c.Secret != "from-env" || len(cfg.Warnings) != 0 {
		t.Errorf("secret %q, warnings %v; want it from the variable, no warning", c.Secret, cfg.Warnings)
	}
	if cfg.Notify.Backoff != (Backoff{Base: 5 * time.Second, Max: time.Hour}) {
		t.Errorf("backoff = %+v; want base from the file, max the default", cfg.Notify.Backoff)
	}
	if _, err := Parse("t.yaml", []byte(file), nil); err == nil || !strings.Contains(err.Error(), "notify.channels[0].secret: required") {
		t.Errorf("without the variable: %v; want the secret required", err)
	}
}

func TestQuietHours_Window(t *testing.T) {
	if f, to, ok := (QuietHours{From: "22:00", To: "08:30"}).Window(); !ok || f != 1320 || to != 510 {
		t.Errorf("window = %d %d %v", f, to, ok)
	}
	if _, _, ok := (QuietHours{}).Window(); ok {
		t.Error("empty quiet hours: a window")
	}
}
