package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AliyunEndpoint is Alibaba Cloud SMS's API address.
const AliyunEndpoint = "https://dysmsapi.aliyuncs.com/"

// Aliyun sends SMS through Alibaba Cloud SMS: dysmsapi 2017-05-25 SendSms,
// RPC style, POST with the parameters in the query (as the Go SDK sends
// them), signed with signature version 1.0 (HMAC-SHA1 over the sorted,
// percent-encoded parameters, key AccessKeySecret + "&"). Each request has
// a new SignatureNonce (the service refuses a nonce twice) and a UTC
// Timestamp from Now. The event kind chooses the TemplateCode; Params are
// its TemplateParam (a JSON object of strings); the delivery id is OutId,
// which delivery reports echo. One number per request: the outbox sends,
// retries and dead-letters per recipient.
//
// The service does not deduplicate: an answer lost after it accepted the
// message makes a resend a second SMS.
//
// Code decides. OK is accepted. Per-number flow control and the service's
// own trouble are temporary: isv.BUSINESS_LIMIT_CONTROL (per number and
// sign: 1 a minute, 5 an hour, 10 a day; RetryAfter from the window its
// Message names), Throttling, SignatureNonceUsed, isp.SYSTEM_ERROR,
// ServiceUnavailable and InternalError. The account's and the
// configuration's failures are channel-wide (aliyunChannel): key,
// signature, RAM permission, caller IP, balance, service suspended, the
// sign name, the clock (InvalidTimeStamp.Expired, right again once NTP
// puts it right), and the console's daily and monthly totals
// (isv.DAY_LIMIT_CONTROL, isv.MONTH_LIMIT_CONTROL; an hour). A bad number,
// template, parameters or content is permanent (aliyunPermanent). A code
// not listed is classed by the HTTP status as for Webhook.
//
// The answer's Message is kept short and masked in the error: for
// SignatureDoesNotMatch it ends with the server's string to sign, which
// holds the number and the template's values.
type Aliyun struct {
	AccessKeyID     string
	AccessKeySecret string
	// SignName is the approved signature (签名) shown before the text.
	SignName string
	// Templates gives each event kind its approved TemplateCode (SMS_…).
	Templates map[string]string
	// Endpoint replaces AliyunEndpoint.
	Endpoint string
	// RegionID is sent as RegionId; "" is cn-hangzhou.
	RegionID string
	// Client, Timeout and Now as for Webhook.
	Client  *http.Client
	Timeout time.Duration
	Now     func() time.Time
	// Nonce, if set, replaces the random UUID nonce (tests).
	Nonce func() string
}

// aliyunPermanent lists the codes no resend of the message can fix.
var aliyunPermanent = []string{
	"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT",
	"isv.SMS_TEMPLATE_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM",
	"isv.INVALID_PARAMETERS", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.PARAM_LENGTH_LIMIT", "MissingParameter",
}

// aliyunChannel lists the codes every message meets until the account or
// the configuration changes, with the wait when it ends by itself.
var aliyunChannel = map[string]time.Duration{
	"isv.SMS_SIGNATURE_ILLEGAL": 0, "isv.SMS_SIGNATURE_SCENE_ILLEGAL": 0,
	"isv.AMOUNT_NOT_ENOUGH": 0, "isv.OUT_OF_SERVICE": 0, "isp.RAM_PERMISSION_DENY": 0, "isv.DENY_IP_RANGE": 0,
	"SignatureDoesNotMatch": 0, "IncompleteSignature": 0,
	"InvalidAccessKeyId.NotFound": 0, "InvalidAccessKeyId.Inactive": 0, "Forbidden.RAM": 0,
	"InvalidVersion": 0, "InvalidAction.NotFound": 0,
	"InvalidTimeStamp.Format": 0, "InvalidTimeStamp.Expired": 0,
	"isv.DAY_LIMIT_CONTROL":   time.Hour,
	"isv.MONTH_LIMIT_CONTROL": time.Hour,
}

// aliyunTemporary lists the codes worth retrying, with their wait.
var aliyunTemporary = map[string]time.Duration{
	"isv.BUSINESS_LIMIT_CONTROL": time.Minute, // refined by the Message's window
	"Throttling":                 0,
	"Throttling.User":            0,
	"Throttling.Api":             0,
	"SignatureNonceUsed":         0,
	"isp.SYSTEM_ERROR":           0,
	"ServiceUnavailable":         0,
	"InternalError":              0,
}

// Send implements Channel.
func (a *Aliyun) Send(ctx context.Context, m Message) (Receipt, error) {
	const ch = "aliyun"
	num := phone(m.To.Phone)
	if num == "" {
		return Receipt{}, permanent(ch, ErrNoAddress)
	}
	tpl := a.Templates[m.Kind]
	if tpl == "" {
		return Receipt{}, permanent(ch, fmt.Errorf("%w: %s", ErrNoTemplate, m.Kind))
	}
	region, nonce := a.RegionID, uuid4
	if region == "" {
		region = "cn-hangzhou"
	}
	if a.Nonce != nil {
		nonce = a.Nonce
	}
	p := url.Values{
		"AccessKeyId":      {a.AccessKeyID},
		"Action":           {"SendSms"},
		"Format":           {"JSON"},
		"RegionId":         {region},
		"SignatureMethod":  {"HMAC-SHA1"},
		"SignatureNonce":   {nonce()},
		"SignatureVersion": {"1.0"},
		"Timestamp":        {clock(a.Now).UTC().Format("2006-01-02T15:04:05Z")},
		"Version":          {"2017-05-25"},
		"PhoneNumbers":     {num},
		"SignName":         {a.SignName},
		"TemplateCode":     {tpl},
		"OutId":            {m.ID},
	}
	if len(m.Params) > 0 {
		tp, err := paramsJSON(m.Params)
		if err != nil {
			return Receipt{}, permanent(ch, err)
		}
		p.Set("TemplateParam", tp)
	}
	sig := aliyunSign(http.MethodPost, p, a.AccessKeySecret)
	endpoint := a.Endpoint
	if endpoint == "" {
		endpoint = AliyunEndpoint
	}
	req, err := http.NewRequest(http.MethodPost, endpoint+"?"+aliyunCanonical(p)+"&Signature="+percentEncode(sig), nil)
	if err != nil {
		return Receipt{}, permanent(ch, redact(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := do(ctx, ch, a.Client, a.Timeout, req)
	if err != nil {
		return Receipt{}, err
	}
	var ans struct {
		RequestID string `json:"RequestId"`
		Code      string `json:"Code"`
		Message   string `json:"Message"`
		BizID     string `json:"BizId"`
	}
	if json.Unmarshal(r.body, &ans) != nil || ans.Code == "" {
		if r.status/100 != 2 {
			return Receipt{}, statusError(ch, r, clock(a.Now), "")
		}
		return Receipt{}, &Error{Channel: ch, Status: r.status, Err: fmt.Errorf("answer without a Code")}
	}
	if ans.Code == "OK" && r.status/100 == 2 {
		return Receipt{ProviderID: ans.BizID}, nil
	}
	secrets := []string{num, strings.TrimPrefix(num, "+"), a.AccessKeyID, m.ID}
	for _, p := range m.Params {
		secrets = append(secrets, p.Value)
	}
	text := ans.Message
	if i := strings.Index(strings.ToLower(text), "string to sign"); i >= 0 {
		text = text[:i] + "(string to sign withheld)"
	}
	e := statusError(ch, r, clock(a.Now), ans.Code)
	e.Err = fmt.Errorf("%w: %s (request %s)", ErrRefused, brief(text, secrets...), requestID(ans.RequestID))
	if wait, ok := aliyunTemporary[ans.Code]; ok {
		e.Permanent, e.Scope, e.RetryAfter = false, ScopeMessage, wait
		if ans.Code == "isv.BUSINESS_LIMIT_CONTROL" {
			e.RetryAfter = flowWindow(ans.Message)
		}
	} else if wait, ok := aliyunChannel[ans.Code]; ok {
		e.Permanent, e.Scope, e.RetryAfter = false, ScopeChannel, wait
	} else if slices.Contains(aliyunPermanent, ans.Code) {
		e.Permanent, e.Scope, e.RetryAfter = true, ScopeMessage, 0
	} else if r.status/100 == 2 {
		// A code not known here on a 2xx: the service's own refusal of
		// this message, or something new; try again later.
		e.Permanent, e.Scope, e.RetryAfter = false, ScopeMessage, 0
	}
	return Receipt{}, e
}

// flowWindow reads which per-number window isv.BUSINESS_LIMIT_CONTROL hit
// from its Message (触发分钟级流控, 触发小时级流控, 触发天级流控): the wait
// before the number may get another SMS.
func flowWindow(msg string) time.Duration {
	switch {
	case strings.Contains(msg, "天级"):
		return 24 * time.Hour
	case strings.Contains(msg, "小时级"):
		return time.Hour
	default:
		return time.Minute
	}
}

// aliyunCanonical is the CanonicalizedQueryString: the parameters sorted
// by name, each name=value percent-encoded, joined with &.
func aliyunCanonical(p url.Values) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(k))
		b.WriteByte('=')
		b.WriteString(percentEncode(p.Get(k)))
	}
	return b.String()
}

// aliyunStringToSign is METHOD&%2F&percentEncode(CanonicalizedQueryString).
func aliyunStringToSign(method string, p url.Values) string {
	return method + "&%2F&" + percentEncode(aliyunCanonical(p))
}

// aliyunSign is signature version 1.0: Base64(HMAC-SHA1(secret + "&",
// StringToSign)).
func aliyunSign(method string, p url.Values, secret string) string {
	h := hmac.New(sha1.New, []byte(secret+"&"))
	h.Write([]byte(aliyunStringToSign(method, p)))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// requestID is a service's request id as an error quotes it: the id the
// provider's support asks for, unless it is not one.
func requestID(s string) string {
	if len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "(malformed)"
	}
	return s
}
