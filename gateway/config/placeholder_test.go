package config

import (
	"strings"
	"testing"
)

// A secret left as the example's placeholder, or a meters' password
// anyone would try, is refused at its line and key: whoever read the
// example could otherwise log in, or sign what a receiver trusts.
func TestParse_PlaceholderSecrets(t *testing.T) {
	const (
		password = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" // SHA-256 of "password"
		empty    = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" // of "", upper case
	)
	hook := func(secret string) string {
		return "notify:\n  channels: [{name: ops, kind: webhook, url: 'https://ops.example/h', secret: '" + secret + "'}]\n"
	}
	cases := []struct {
		name string
		file []byte
		env  []string
		want string // the one problem, exactly
	}{
		{"meters' password \"password\"",
			doc(mqttHead, "buses: [{name: f3, type: compere-mqtt, listen: '0.0.0.0:1883', username: kpm, password_sha256: "+password+"}]"), nil,
			`t.yaml:2: buses[0].password_sha256: the SHA-256 of "password", a password anyone tries: any device that reaches 0.0.0.0:1883 could log in as kpm and publish readings for this bus's meters; ` +
				"make one (openssl rand -base64 18), set the meters up with it and give its SHA-256 (echo -n PASSWORD | sha256sum)"},
		{"meters' password empty, upper-case hex",
			doc(mqttHead, "buses:", "  - name: f3", "    type: compere-mqtt", "    listen: ':1883'", "    username: kpm", "    password_sha256: "+empty), nil,
			`t.yaml:7: buses[0].password_sha256: the SHA-256 of "", a password anyone tries`},
		{"client bus password", doc(mqttHead, clientBus[:len(clientBus)-2]+", password: change-me}]"), nil,
			"t.yaml:2: buses[0].password: a placeholder, not a password: give the one the broker has for the gateway in MALLGRID_BUS_TW_PASSWORD (the service's environment file, /etc/mallgrid/environment)"},
		{"client bus password from the environment", doc(mqttHead, clientBus), []string{"MALLGRID_BUS_TW_PASSWORD=CHANGE-ME"},
			"t.yaml: buses[0].password: env MALLGRID_BUS_TW_PASSWORD: a placeholder, not a password"},
		{"webhook secret", []byte(notifyHead + hook("change-me-to-a-long-random-string")), nil,
			"t.yaml:4: notify.channels[0].secret: a placeholder, not a secret: whoever read the example knows it; give the channel's own here or in MALLGRID_NOTIFY_OPS_SECRET (the service's environment file, /etc/mallgrid/environment)"},
		{"webhook secret from the environment", []byte(notifyHead + hook("s")), []string{"MALLGRID_NOTIFY_OPS_SECRET=change-me"},
			"t.yaml: notify.channels[0].secret: env MALLGRID_NOTIFY_OPS_SECRET: a placeholder, not a secret"},
		{"sms key secret", []byte(notifyHead + "notify:\n  channels: [{name: sms, kind: sms, provider: aliyun, key_id: k, key_secret: change-me, sign_name: n}]\n"), nil,
			"t.yaml:4: notify.channels[0].key_secret: a placeholder, not a secret"},
		{"wechat app secret", []byte(notifyHead + "notify:\n  channels: [{name: wx, kind: wechat, app_id: w, app_secret: changeme}]\n"), nil,
			"t.yaml:4: notify.channels[0].app_secret: a placeholder, not a secret"},
		{"mail password", []byte(notifyHead + "notify:\n  channels:\n    - {name: mail, kind: email, smtp: 'mail.example:587', username: u, password: change-me, from: p@plaza.example}\n"), nil,
			"t.yaml:5: notify.channels[0].password: a placeholder, not a secret"},
		{"sms gateway header", []byte(notifyHead + "notify:\n  channels:\n    - name: gw\n      kind: sms\n      provider: gateway\n      url: 'https://sms.example/send?to={phone}'\n" +
			"      headers: {Authorization: 'Bearer change-me'}\n"), nil,
			"t.yaml:9: notify.channels[0].headers.Authorization: a placeholder, not a credential: whoever read the example knows it; give the SMS gateway's own"},
		{"sms gateway api key header", []byte(notifyHead + "notify:\n  channels:\n    - name: gw\n      kind: sms\n      provider: gateway\n      url: 'https://sms.example/send?to={phone}'\n" +
			"      headers: {X-Api-Key: change_me, X-Notice: change-me}\n"), nil,
			"t.yaml:9: notify.channels[0].headers.X-Api-Key: a placeholder, not a credential"},
		{"uplink password", []byte(notifyHead + "uplink: {broker: 'ssl://mq.example:8883', site_id: s, username: u, password: change-me-too}\n"), nil,
			"t.yaml:3: uplink.password: the example's placeholder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", tc.file, tc.env)
			if err == nil {
				t.Fatalf("Parse: nil error; want %q", tc.want)
			}
			var problems []string
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, ": warning: ") {
					problems = append(problems, line)
				}
			}
			if len(problems) != 1 || !strings.HasPrefix(problems[0], tc.want) {
				t.Errorf("Parse:\n%v\nwant the one problem %q", err, tc.want)
			}
		})
	}
}

// Secrets of the site's own, even ones that mention the placeholder's
// words, are taken.
func TestParse_PlaceholderSecrets_OwnTaken(t *testing.T) {
	file := []byte(notifyHead + "notify:\n  channels:\n" +
		"    - {name: ops, kind: webhook, url: 'https://ops.example/h', secret: 'k8Zq-please-change-me-yearly'}\n" +
		"    - {name: gw, kind: sms, provider: gateway, url: 'https://sms.example/send?to={phone}', headers: {Authorization: 'Bearer 9f2c1e'}}\n")
	if _, err := Parse("t.yaml", file, nil); err != nil {
		t.Errorf("Parse: %v; want no problem", err)
	}
	if _, err := Parse("t.yaml", doc(mqttHead, embedded), nil); err != nil {
		t.Errorf("Parse (a random password's hash): %v; want no problem", err)
	}
}

// TestPlaceholder_WholeWord: the placeholder is refused as a whole word —
// followed by the end or a separator — not as the first letters of a
// secret of the site's own.
func TestPlaceholder_WholeWord(t *testing.T) {
	for _, tc := range []struct {
		secret string
		want   bool
	}{
		{"change-me", true},
		{"CHANGE-ME", true},
		{"changeme", true},
		{"change_me", true},
		{"change-me-to-a-long-random-string", true},
		{"change-me-too", true},
		{"Bearer change-me", true},
		{" change_me.please ", true},
		{"changemeter", false},
		{"change_member_notice", false},
		{"change-mestatus", false},
		{"Bearer changemeplease", false},
		{"k8Zq-please-change-me-yearly", false},
	} {
		if got := placeholder(tc.secret); got != tc.want {
			t.Errorf("placeholder(%q) = %v; want %v", tc.secret, got, tc.want)
		}
	}
}

// An SMS gateway's headers are checked for the placeholder only where they
// carry a credential: a header of the gateway's own (a template name, a
// notice) may hold the placeholder's letters, or the placeholder itself.
func TestParse_PlaceholderHeaders_OnlyCredentials(t *testing.T) {
	file := []byte(notifyHead + "notify:\n  channels:\n" +
		"    - name: gw\n      kind: sms\n      provider: gateway\n      url: 'https://sms.example/send?to={phone}'\n" +
		"      headers: {Authorization: 'Bearer changemeter-9f2c1e', X-Template: change_member_notice, X-Note: change-me}\n")
	if _, err := Parse("t.yaml", file, nil); err != nil {
		t.Errorf("Parse: %v; want no problem", err)
	}
}
