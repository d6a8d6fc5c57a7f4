package config

import (
	"fmt"
	"maps"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"mallgrid/gateway/alarm"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/notify"
	"mallgrid/gateway/yamlcheck"
)

// Notify is the notification outbox: the channels notices go out on, the
// routes that say which events go to whom over which channels, and the
// staff the control room's notices go to.
type Notify struct {
	Channels []NotifyChannel `yaml:"channels"`
	Routes   []NotifyRoute   `yaml:"routes"`
	Staff    []Staff         `yaml:"staff"`
	// QuietHours delay tenants' notices (never staff's) that fall due
	// inside them until they end; none when From and To are empty.
	QuietHours QuietHours `yaml:"quiet_hours"`
	// RateLimit caps what one recipient is sent on one channel.
	RateLimit RateLimit `yaml:"rate_limit"`
	// MaxAttempts is how many failed sends make a dead letter.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the wait after a failed send: Base, doubled each attempt
	// up to Max, less up to half of it at random (jitter).
	Backoff Backoff `yaml:"backoff"`
	// Timeout bounds one send.
	Timeout time.Duration `yaml:"timeout"`
	// Keep is how long delivered and given-up notices are kept, in whole
	// days ("90d"); older ones are deleted (a dead letter whose alarm is
	// still open stays).
	Keep string `yaml:"keep"`
}

// Retention is notify.keep as a duration (0 before the configuration is
// validated).
func (n Notify) Retention() time.Duration {
	d, _ := parseDays(n.Keep)
	return d
}

// DefaultNotifyKeep is notify.keep's default: a quarter of a year, long
// enough to answer "was I told?" about the last bill.
const DefaultNotifyKeep = "90d"

// NotifyChannel is one configured channel; the keys it needs depend on
// its Kind (and for SMS its Provider). Secrets (secret, app_secret,
// key_secret, password) may instead come from MALLGRID_NOTIFY_<NAME>_<KEY>
// (NotifySecretVar), which overrides the file.
type NotifyChannel struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"` // ChannelWebhook, ChannelWeChat, ChannelSMS or ChannelEmail
	// Webhook: where and with what secret; the SMS gateway's URL too.
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
	// WeChat official account.
	AppID     string `yaml:"app_id"`
	AppSecret string `yaml:"app_secret"`
	APIBase   string `yaml:"api_base"`
	// SMS: the provider and its credentials (Alibaba Cloud AccessKey id and
	// secret; Tencent Cloud SecretId and SecretKey).
	Provider  string `yaml:"provider"` // SMSAliyun, SMSTencent or SMSGateway
	KeyID     string `yaml:"key_id"`
	KeySecret string `yaml:"key_secret"`
	SdkAppID  string `yaml:"sdk_app_id"` // Tencent's SMS application
	SignName  string `yaml:"sign_name"`
	Region    string `yaml:"region"`
	Endpoint  string `yaml:"endpoint"`
	// The generic SMS gateway's request template (see notify.SMSGateway).
	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	OK      string            `yaml:"ok"`
	Fail    string            `yaml:"fail"`
	// Templates are the provider's templates by event kind (WeChat, and
	// Alibaba Cloud and Tencent Cloud SMS).
	Templates map[string]NotifyTemplate `yaml:"templates"`
	// E-mail by SMTP submission.
	SMTP     string `yaml:"smtp"` // host:port
	TLS      string `yaml:"tls"`  // none, starttls or tls
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	From     string `yaml:"from"`
}

func (c *NotifyChannel) setDefaults() {
	c.APIBase = notify.WeChatBase
	c.TLS = string(notify.TLSStartTLS)
}

// NotifyTemplate is a provider template for one event kind.
type NotifyTemplate struct {
	ID string `yaml:"id"` // WeChat template_id, SMS template code
	// Params are the event's args the template takes, in its order; each
	// is the param's key too. An arg that is a time is written in the
	// site's zone.
	Params []string `yaml:"params"`
	// Keys are the template's own names for Params, in the same order: a
	// WeChat template's fields (thing1, amount2, time3…), an Alibaba Cloud
	// template's variables. Empty: each param is named by its arg.
	Keys []string `yaml:"keys"`
	URL  string   `yaml:"url"` // WeChat: the page the message opens
}

// Channel kinds and SMS providers.
const (
	ChannelWebhook = "webhook"
	ChannelWeChat  = "wechat"
	ChannelSMS     = "sms"
	ChannelEmail   = "email"

	SMSAliyun  = "aliyun"
	SMSTencent = "tencent"
	SMSGateway = "gateway"
)

// NotifyRoute sends the events of its kinds to its recipients over each of
// its channels.
type NotifyRoute struct {
	Events   []string `yaml:"events"`
	To       string   `yaml:"to"` // RouteTenant or RouteStaff
	Channels []string `yaml:"channels"`
}

// Route recipients: the tenant the event is about (its contacts), or every
// member of staff.
const (
	RouteTenant = "tenant"
	RouteStaff  = "staff"
)

// Staff is someone in the control room's notices.
type Staff struct {
	Name         string `yaml:"name"`
	Phone        string `yaml:"phone"`
	Email        string `yaml:"email"`
	WeChatOpenID string `yaml:"wechat_openid"`
	Language     string `yaml:"language"`
}

func (s *Staff) setDefaults() { s.Language = "zh-CN" }

// QuietHours is a daily window, wall-clock in site.timezone, [From, To);
// To before From runs across midnight.
type QuietHours struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Window returns the window in minutes after midnight, and false when
// there is none.
func (q QuietHours) Window() (from, to int, ok bool) {
	f, okF := clockMinutes(q.From)
	t, okT := clockMinutes(q.To)
	return f, t, okF && okT && f != t
}

// RateLimit caps notices to one recipient on one channel.
type RateLimit struct {
	PerHour int `yaml:"per_hour"` // 0: no cap
}

// Backoff is the wait between failed sends.
type Backoff struct {
	Base time.Duration `yaml:"base"`
	Max  time.Duration `yaml:"max"`
}

func notifyDefaults() Notify {
	return Notify{RateLimit: RateLimit{PerHour: 6}, MaxAttempts: 8, Backoff: Backoff{Base: 30 * time.Second, Max: time.Hour},
		Timeout: 15 * time.Second, Keep: DefaultNotifyKeep}
}

// NotifySecretVar is the environment variable that gives channel name's
// secret key (secret, app_secret, key_secret or password):
// MALLGRID_NOTIFY_OPS_SECRET for channel ops's secret.
func NotifySecretVar(name, key string) string {
	up := strings.ToUpper(strings.NewReplacer("-", "_").Replace(name))
	return EnvPrefix + "NOTIFY_" + up + "_" + strings.ToUpper(key)
}

// secretKeys are the channel keys a variable may give (NotifySecretVar).
var secretKeys = []string{"secret", "app_secret", "key_secret", "password"}

// notifySecrets sets channels' secrets from their variables in vars and
// returns the names of the variables it read, and of every variable it
// would read, for the hints about a misspelt one. A variable for a key
// the channel's kind does not take is a warning: set, it would be ignored
// while the technician believes the secret given.
func notifySecrets(cfg *Config, r *yamlcheck.Report, vars map[string]string) (used, known []string) {
	for i := range cfg.Notify.Channels {
		c := &cfg.Notify.Channels[i]
		if c.Name == "" {
			continue
		}
		p := yamlcheck.Index("notify.channels", i)
		fields := map[string]*string{"secret": &c.Secret, "app_secret": &c.AppSecret, "key_secret": &c.KeySecret, "password": &c.Password}
		takes := channelKeys[c.Kind]
		if c.Kind == ChannelSMS {
			takes = channelKeys[c.Kind+"/"+c.Provider]
		}
		for _, key := range secretKeys {
			name := NotifySecretVar(c.Name, key)
			if !slices.Contains(takes, key) {
				if vars[name] != "" {
					r.WarnAt(0, "", "env %s: channel %s (%s) takes no %s: ignored", name, c.Name, c.Kind, key)
					used = append(used, name)
				}
				continue
			}
			known = append(known, name)
			if v := vars[name]; v != "" {
				r.Override(p+"."+key, "env "+name, v, fields[key])
				used = append(used, name)
			}
		}
	}
	return used, known
}

var (
	templateKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,31}$`)
	channelName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	clockText   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

func clockMinutes(s string) (int, bool) {
	if !clockText.MatchString(s) {
		return 0, false
	}
	return int(s[0]-'0')*600 + int(s[1]-'0')*60 + int(s[3]-'0')*10 + int(s[4]-'0'), true
}

// Channel returns the notification channel called name.
func (n Notify) Channel(name string) (NotifyChannel, bool) {
	i := slices.IndexFunc(n.Channels, func(c NotifyChannel) bool { return c.Name == name })
	if i < 0 {
		return NotifyChannel{}, false
	}
	return n.Channels[i], true
}

func validateNotify(cfg *Config, r *yamlcheck.Report) {
	n := &cfg.Notify
	names := unique(r, "channel name")
	vars := make(map[string]string) // each secret variable → the first channel that would read it
	for i, c := range n.Channels {
		p := yamlcheck.Index("notify.channels", i)
		if r.Need(p+".name", c.Name) {
			if !channelName.MatchString(c.Name) {
				r.Add(p+".name", "want 1..32 of a-z, 0-9, _ and -, got %q", c.Name)
			}
			names.check(p+".name", c.Name)
			// sms-gw and sms_gw would read one MALLGRID_NOTIFY_SMS_GW_…
			// variable; so would ali's key_secret and ali_key's secret.
			for _, key := range secretKeys {
				name := NotifySecretVar(c.Name, key)
				if other, ok := vars[name]; ok && other != c.Name {
					r.Add(p+".name", "channel %s and channel %s would both read %s: rename one", c.Name, other, name)
					break
				}
				vars[name] = c.Name
			}
		}
		if r.OneOf(p+".kind", c.Kind, ChannelWebhook, ChannelWeChat, ChannelSMS, ChannelEmail) {
			validateChannel(r, p, c)
		}
	}
	kinds := make(map[string]bool)
	for i, rt := range n.Routes {
		p := yamlcheck.Index("notify.routes", i)
		if len(rt.Events) == 0 {
			r.Add(p+".events", "want at least one event kind")
		}
		for j, k := range rt.Events {
			if !i18n.Has(i18n.En, "event."+k) {
				r.Add(yamlcheck.Index(p+".events", j), "unknown event kind %q", k)
			}
			kinds[k] = true
		}
		r.OneOf(p+".to", rt.To, RouteTenant, RouteStaff)
		if len(rt.Channels) == 0 {
			r.Add(p+".channels", "want at least one channel")
		}
		for j, name := range rt.Channels {
			c, ok := n.Channel(name)
			if !ok {
				r.Add(yamlcheck.Index(p+".channels", j), "unknown channel %q", name)
				continue
			}
			// A kind with no template on a template channel would be a
			// dead letter every time: say so now.
			if c.Kind == ChannelWeChat || (c.Kind == ChannelSMS && c.Provider != SMSGateway) {
				for _, k := range rt.Events {
					if _, ok := c.Templates[k]; !ok {
						r.Add(yamlcheck.Index(p+".channels", j), "channel %s has no template for %s", name, k)
					}
				}
			}
		}
		if rt.To == RouteStaff && len(n.Staff) == 0 {
			r.Add(p+".to", "no staff to send to: notify.staff is empty")
		}
	}
	for i, s := range n.Staff {
		p := yamlcheck.Index("notify.staff", i)
		r.Need(p+".name", s.Name)
		validateAddresses(r, p, s.Phone, s.Email, s.WeChatOpenID, s.Name)
		validateLanguage(r, p+".language", s.Language)
	}
	if n.QuietHours.From != "" || n.QuietHours.To != "" {
		for _, k := range []string{"from", "to"} {
			v := n.QuietHours.From
			if k == "to" {
				v = n.QuietHours.To
			}
			if _, ok := clockMinutes(v); !ok {
				r.Add("notify.quiet_hours."+k, "want a time of day like 22:00, got %q", v)
			}
		}
		if n.QuietHours.From == n.QuietHours.To {
			r.Add("notify.quiet_hours", "from and to are the same: no quiet hours, or all day? leave both out for none")
		}
	}
	r.IntIn("notify.rate_limit.per_hour", n.RateLimit.PerHour, 0, 3600)
	r.IntIn("notify.max_attempts", n.MaxAttempts, 1, 100)
	if r.DurationIn("notify.backoff.base", n.Backoff.Base, time.Second, time.Hour) &&
		r.DurationIn("notify.backoff.max", n.Backoff.Max, time.Second, 24*time.Hour) && n.Backoff.Max < n.Backoff.Base {
		r.Add("notify.backoff.max", "%s is shorter than backoff.base (%s)", n.Backoff.Max, n.Backoff.Base)
	}
	r.DurationIn("notify.timeout", n.Timeout, time.Second, 5*time.Minute)
	if d, ok := parseDays(n.Keep); !ok || d < 24*time.Hour || d > maxSamplesKeep {
		r.Add("notify.keep", "want whole days like 90d, 1d..%dd, got %q", maxSamplesKeep/(24*time.Hour), n.Keep)
	}
}

// channelKeys are the keys each kind (sms: each provider) takes besides
// name and kind; any other given is a mistake worth a line.
var channelKeys = map[string][]string{
	ChannelWebhook:                {"url", "secret"},
	ChannelWeChat:                 {"app_id", "app_secret", "api_base", "templates"},
	ChannelSMS + "/" + SMSAliyun:  {"provider", "key_id", "key_secret", "sign_name", "region", "endpoint", "templates"},
	ChannelSMS + "/" + SMSTencent: {"provider", "key_id", "key_secret", "sdk_app_id", "sign_name", "region", "endpoint", "templates"},
	ChannelSMS + "/" + SMSGateway: {"provider", "url", "method", "headers", "body", "ok", "fail"},
	ChannelEmail:                  {"smtp", "tls", "username", "password", "from"},
}

func validateChannel(r *yamlcheck.Report, p string, c NotifyChannel) {
	kind := c.Kind
	if kind == ChannelSMS {
		if !r.OneOf(p+".provider", c.Provider, SMSAliyun, SMSTencent, SMSGateway) {
			return
		}
		kind += "/" + c.Provider
	}
	allowed := channelKeys[kind]
	set := map[string]bool{"url": c.URL != "", "secret": c.Secret != "", "app_id": c.AppID != "", "app_secret": c.AppSecret != "",
		"api_base": c.APIBase != "", "provider": c.Provider != "", "key_id": c.KeyID != "", "key_secret": c.KeySecret != "",
		"sdk_app_id": c.SdkAppID != "", "sign_name": c.SignName != "", "region": c.Region != "", "endpoint": c.Endpoint != "",
		"method": c.Method != "", "headers": len(c.Headers) > 0, "body": c.Body != "", "ok": c.OK != "", "fail": c.Fail != "",
		"templates": len(c.Templates) > 0, "smtp": c.SMTP != "", "tls": c.TLS != "", "username": c.Username != "",
		"password": c.Password != "", "from": c.From != ""}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		// tls and api_base have defaults: only a given one is a mistake;
		// an empty value says nothing either way.
		if set[k] && r.Given(p+"."+k) && !slices.Contains(allowed, k) {
			r.Add(p+"."+k, "not a key of a %s channel (its keys: %s)", strings.ReplaceAll(kind, "/", " "), strings.Join(allowed, ", "))
		}
	}
	httpURL := func(key, v string) {
		if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			r.Add(p+"."+key, "want an absolute http(s) URL, got %q", v)
		}
	}
	switch kind {
	case ChannelWebhook:
		if r.Need(p+".url", c.URL) {
			httpURL("url", c.URL)
		}
		r.Need(p+".secret", c.Secret)
	case ChannelWeChat:
		r.Need(p+".app_id", c.AppID)
		r.Need(p+".app_secret", c.AppSecret)
		if r.Need(p+".api_base", c.APIBase) {
			httpURL("api_base", c.APIBase)
		}
	case ChannelSMS + "/" + SMSAliyun, ChannelSMS + "/" + SMSTencent:
		r.Need(p+".key_id", c.KeyID)
		r.Need(p+".key_secret", c.KeySecret)
		r.Need(p+".sign_name", c.SignName)
		if c.Provider == SMSTencent {
			r.Need(p+".sdk_app_id", c.SdkAppID)
		}
		if c.Endpoint != "" {
			httpURL("endpoint", c.Endpoint)
		}
	case ChannelSMS + "/" + SMSGateway:
		if r.Need(p+".url", c.URL) {
			g := notify.SMSGateway{URL: c.URL, Method: c.Method, Header: c.Headers, Body: c.Body}
			if err := g.Check(); err != nil {
				r.Add(p+".url", "the gateway template cannot make a request: %v", err)
			}
		}
	case ChannelEmail:
		if r.Need(p+".smtp", c.SMTP) {
			if msg := checkHostPort(c.SMTP, false); msg != "" {
				r.Add(p+".smtp", "%s", msg)
			}
		}
		if r.OneOf(p+".tls", c.TLS, string(notify.TLSNone), string(notify.TLSStartTLS), string(notify.TLSImplicit)) &&
			c.TLS == string(notify.TLSNone) && c.Username != "" {
			r.Add(p+".username", "no login is sent in the clear: use tls: starttls or tls")
		}
		if c.Password != "" && c.Username == "" {
			r.Add(p+".password", "a password without a username")
		}
		if r.Need(p+".from", c.From) {
			if _, err := mail.ParseAddress(c.From); err != nil {
				r.Add(p+".from", "want an address like power@plaza.example: %v", err)
			}
		}
	}
	secrets := map[string]string{"secret": c.Secret, "app_secret": c.AppSecret, "key_secret": c.KeySecret, "password": c.Password}
	for _, k := range secretKeys {
		if placeholder(secrets[k]) && slices.Contains(allowed, k) {
			r.Add(p+"."+k, "a placeholder, not a secret: whoever read the example knows it; give the channel's own here or in %s (the service's environment file, /etc/mallgrid/environment)",
				NotifySecretVar(c.Name, k))
		}
	}
	for _, h := range slices.Sorted(maps.Keys(c.Headers)) {
		if credentialHeader(h) && placeholder(c.Headers[h]) {
			r.Add(p+".headers."+h, "a placeholder, not a credential: whoever read the example knows it; give the SMS gateway's own")
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(c.Templates)) {
		t := c.Templates[kind]
		if !i18n.Has(i18n.En, "event."+kind) {
			r.Add(p+".templates."+kind, "unknown event kind %q", kind)
			continue
		}
		r.Need(p+".templates."+kind+".id", t.ID)
		if len(t.Keys) > 0 && len(t.Keys) != len(t.Params) {
			r.Add(p+".templates."+kind+".keys", "%d keys for %d params: want one key a param, in their order", len(t.Keys), len(t.Params))
		}
		for j, k := range t.Keys {
			if !templateKey.MatchString(k) {
				r.Add(yamlcheck.Index(p+".templates."+kind+".keys", j), "want letters, digits and _, like thing1, got %q", k)
			} else if slices.Index(t.Keys, k) < j {
				r.Add(yamlcheck.Index(p+".templates."+kind+".keys", j), "%q twice", k)
			}
		}
		facts := i18n.EventArgs(kind)
		if slices.Contains(alarm.Kinds(), kind) {
			// A rule alarm's event says how grave it is, though no
			// sentence tells it.
			facts = append(facts, "severity")
		}
		for j, param := range t.Params {
			if !slices.Contains(facts, param) {
				r.Add(yamlcheck.Index(p+".templates."+kind+".params", j), "%s events have no %q (they have: %s)", kind, param, strings.Join(facts, ", "))
			}
		}
	}
}

// validateAddresses checks a contact's or staff member's addresses: at
// least one, each of its form.
func validateAddresses(r *yamlcheck.Report, p, phone, email, openid, name string) {
	if phone == "" && email == "" && openid == "" {
		r.Add(p, "want a phone, an email or a wechat_openid to reach %s", name)
	}
	if email != "" {
		if _, err := mail.ParseAddress(email); err != nil {
			r.Add(p+".email", "want an address like duty@plaza.example, got %q", email)
		}
	}
}

func validateLanguage(r *yamlcheck.Report, key, lang string) {
	if _, ok := i18n.ParseLang(lang); !ok || (lang != string(i18n.En) && lang != string(i18n.ZhCN)) {
		r.Add(key, "want %s or %s, got %q", i18n.En, i18n.ZhCN, lang)
	}
}

// String names the route for logs: "warning_1,cut_off → tenant over mail".
func (rt NotifyRoute) String() string {
	return fmt.Sprintf("%s → %s over %s", strings.Join(rt.Events, ","), rt.To, strings.Join(rt.Channels, ","))
}
