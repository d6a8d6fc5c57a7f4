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
// Code decides. OK is accepted. Flow control is temporary:
// isv.BUSINESS_LIMIT_CONTROL (per number and sign: 1 a minute, 5 an hour,
// 10 a day; RetryAfter from the window its Message names),
// isv.DAY_LIMIT_CONTROL and isv.MONTH_LIMIT_CONTROL (the console's totals;
// an hour), Throttling, SignatureNonceUsed, InvalidTimeStamp.Expired (a
// clock put right by NTP later), isp.SYSTEM_ERROR, ServiceUnavailable and
// InternalError. A bad number, template, sign name, parameters, key,
// signature, balance or permission is permanent (aliyunPermanent). A code
// not listed is classed by the HTTP status: 4xx permanent, else temporary.
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

// aliyunPermanent lists the codes no resend can fix.
var aliyunPermanent = []string{
	"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT",
	"isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
	"isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.INVALID_PARAMETERS",
	"isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE", "isp.RAM_PERMISSION_DENY", "isv.DENY_IP_RANGE",
	"isv.BLACK_KEY_CONTROL_LIMIT", "isv.PARAM_LENGTH_LIMIT",
	"SignatureDoesNotMatch", "IncompleteSignature", "MissingParameter",
	"InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "InvalidTimeStamp.Format",
	"Forbidden.RAM", "InvalidVersion", "InvalidAction.NotFound",
}

// aliyunTemporary lists the codes worth retrying, with their wait.
var aliyunTemporary = map[string]time.Duration{
	"isv.BUSINESS_LIMIT_CONTROL": time.Minute, // refined by the Message's window
	"isv.DAY_LIMIT_CONTROL":      time.Hour,
	"isv.MONTH_LIMIT_CONTROL":    time.Hour,
	"Throttling":                 0,
	"Throttling.User":            0,
	"Throttling.Api":             0,
	"SignatureNonceUsed":         0,
	"InvalidTimeStamp.Expired":   0,
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
	e := &Error{Channel: ch, Status: r.status, Code: ans.Code, Err: fmt.Errorf("%w: %s (request %s)", ErrRefused, ans.Message, ans.RequestID)}
	if wait, ok := aliyunTemporary[ans.Code]; ok {
		e.RetryAfter = wait
		if ans.Code == "isv.BUSINESS_LIMIT_CONTROL" {
			e.RetryAfter = flowWindow(ans.Message)
		}
	} else if slices.Contains(aliyunPermanent, ans.Code) {
		e.Permanent = true
	} else {
		e.Permanent = r.status/100 == 4 && r.status != http.StatusRequestTimeout && r.status != http.StatusTooManyRequests
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
