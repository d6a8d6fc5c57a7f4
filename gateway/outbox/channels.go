package outbox

import (
	"fmt"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/gateway/notify"
)

// Channel is a configured channel: how it sends, and which event args its
// provider templates take, by kind.
type Channel struct {
	notify.Channel
	// Params are the args each kind's template takes, in its order; a
	// kind without its own list gives every arg, by name.
	Params map[string][]string
	// Keys are, by kind, the template's own names for Params, in their
	// order (a WeChat template's thing1, amount2…); a kind without them
	// names each param by its arg.
	Keys map[string][]string
}

// Channels builds cfg's notification channels by name, each bounded by
// notify.timeout and dating what it signs by now.
func Channels(cfg *config.Config, now func() time.Time) (map[string]Channel, error) {
	out := make(map[string]Channel, len(cfg.Notify.Channels))
	timeout := cfg.Notify.Timeout
	for _, c := range cfg.Notify.Channels {
		params, keys := make(map[string][]string), make(map[string][]string)
		ids := make(map[string]string)
		for kind, t := range c.Templates {
			ids[kind] = t.ID
			if len(t.Params) > 0 {
				params[kind] = t.Params
			}
			if len(t.Keys) > 0 {
				keys[kind] = t.Keys
			}
		}
		var ch notify.Channel
		switch {
		case c.Kind == config.ChannelWebhook:
			w, err := notify.NewWebhook(c.URL, c.Secret)
			if err != nil {
				return nil, fmt.Errorf("notify channel %s: %w", c.Name, err)
			}
			w.Timeout, w.Now = timeout, now
			ch = w
		case c.Kind == config.ChannelWeChat:
			tpl := make(map[string]notify.WeChatTemplate, len(c.Templates))
			for kind, t := range c.Templates {
				tpl[kind] = notify.WeChatTemplate{ID: t.ID, URL: t.URL}
			}
			ch = &notify.WeChat{AppID: c.AppID, Secret: c.AppSecret, BaseURL: c.APIBase, Templates: tpl, Timeout: timeout, Now: now}
		case c.Kind == config.ChannelSMS && c.Provider == config.SMSAliyun:
			ch = &notify.Aliyun{AccessKeyID: c.KeyID, AccessKeySecret: c.KeySecret, SignName: c.SignName, Templates: ids,
				Endpoint: c.Endpoint, RegionID: c.Region, Timeout: timeout, Now: now}
		case c.Kind == config.ChannelSMS && c.Provider == config.SMSTencent:
			ch = &notify.Tencent{SecretID: c.KeyID, SecretKey: c.KeySecret, SdkAppID: c.SdkAppID, SignName: c.SignName, Templates: ids,
				Region: c.Region, Endpoint: c.Endpoint, Timeout: timeout, Now: now}
		case c.Kind == config.ChannelSMS && c.Provider == config.SMSGateway:
			ch = &notify.SMSGateway{URL: c.URL, Method: c.Method, Header: c.Headers, Body: c.Body, OK: c.OK, Fail: c.Fail,
				Timeout: timeout, Now: now}
		case c.Kind == config.ChannelEmail:
			ch = &notify.Email{Addr: c.SMTP, TLS: notify.TLSMode(c.TLS), Username: c.Username, Password: c.Password, From: c.From,
				Timeout: timeout, Now: now}
		default:
			return nil, fmt.Errorf("notify channel %s: kind %q (provider %q) unknown", c.Name, c.Kind, c.Provider)
		}
		out[c.Name] = Channel{Channel: ch, Params: params, Keys: keys}
	}
	return out, nil
}
