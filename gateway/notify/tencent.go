package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TencentEndpoint is Tencent Cloud SMS's API address (the nearest region
// answers).
const TencentEndpoint = "https://sms.tencentcloudapi.com/"

// Tencent sends SMS through Tencent Cloud SMS: SendSms 2021-01-11, a JSON
// POST signed TC3-HMAC-SHA256 (signed headers content-type and host;
// credential scope <UTC date>/sms/tc3_request; X-TC-Timestamp from Now,
// which the service refuses more than 5 minutes off). The event kind
// chooses the TemplateId; Params in their order are TemplateParamSet; the
// delivery id is SessionContext, which the answer and the delivery reports
// echo. One number per request.
//
// The service does not deduplicate: an answer lost after it accepted the
// message makes a resend a second SMS.
//
// The answer's Error.Code, else the number's SendStatus Code, decides:
// "Ok" is accepted. The per-number caps are temporary with their window as
// RetryAfter: LimitExceeded.PhoneNumberThirtySecondLimit 30 s,
// …OneHourLimit an hour, …DailyLimit and …SameContentDailyLimit a day, and
// LimitExceeded.DeliveryFrequencyLimit (the console's frequency policy hit,
// its window not named) an hour: the policy's windows are 30 s, an hour
// and a day, and the first and last have codes of their own, so an hour
// neither spends the message's attempts against an hourly cap nor holds a
// notice back a day. RequestLimitExceeded…, InternalError… and unknown
// codes are temporary. The account's and configuration's failures are
// channel-wide: every AuthFailure… (AuthFailure.SignatureExpire is the
// gateway's clock off), UnauthorizedOperation… (IP not allowed, app
// disabled, service suspended for arrears), the sign name not approved,
// the SMS package exhausted, an unknown SdkAppId, and the app's daily
// totals (LimitExceeded.AppDailyLimit and the like; an hour). Every other
// InvalidParameter(Value)…, MissingParameter…, UnsupportedOperation… and
// FailedOperation… (template not approved, number blacklisted, content
// refused) is permanent.
//
// The host is lower-cased in the signed canonical headers, as the service
// rebuilds them.
type Tencent struct {
	SecretID  string
	SecretKey string
	// SdkAppID is the SMS application's id (1400…).
	SdkAppID string
	// SignName is the approved signature's text (required for mainland numbers).
	SignName string
	// Templates gives each event kind its approved TemplateId.
	Templates map[string]string
	// Region is X-TC-Region; "" is ap-guangzhou.
	Region string
	// Endpoint replaces TencentEndpoint.
	Endpoint string
	// Client, Timeout and Now as for Webhook.
	Client  *http.Client
	Timeout time.Duration
	Now     func() time.Time
}

const tencentContentType = "application/json; charset=utf-8"

// Send implements Channel.
func (tc *Tencent) Send(ctx context.Context, m Message) (Receipt, error) {
	const ch = "tencent"
	num := phone(m.To.Phone)
	if num == "" {
		return Receipt{}, permanent(ch, ErrNoAddress)
	}
	tpl := tc.Templates[m.Kind]
	if tpl == "" {
		return Receipt{}, permanent(ch, fmt.Errorf("%w: %s", ErrNoTemplate, m.Kind))
	}
	params := make([]string, len(m.Params))
	for i, p := range m.Params {
		params[i] = p.Value
	}
	payload, err := json.Marshal(struct {
		PhoneNumberSet   []string
		SmsSdkAppId      string
		SignName         string `json:",omitempty"`
		TemplateId       string
		TemplateParamSet []string
		SessionContext   string `json:",omitempty"`
	}{[]string{num}, tc.SdkAppID, tc.SignName, tpl, params, m.ID})
	if err != nil {
		return Receipt{}, permanent(ch, err)
	}
	endpoint := tc.Endpoint
	if endpoint == "" {
		endpoint = TencentEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return Receipt{}, permanent(ch, fmt.Errorf("endpoint: %w", redact(err)))
	}
	region := tc.Region
	if region == "" {
		region = "ap-guangzhou"
	}
	now := clock(tc.Now)
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return Receipt{}, permanent(ch, redact(err))
	}
	req.Header.Set("Content-Type", tencentContentType)
	req.Header.Set("X-TC-Action", "SendSms")
	req.Header.Set("X-TC-Version", "2021-01-11")
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("X-TC-Region", region)
	auth, _ := tc3Authorization(tc.SecretID, tc.SecretKey, "sms", strings.ToLower(u.Host), tencentContentType, payload, now)
	req.Header.Set("Authorization", auth)
	r, err := do(ctx, ch, tc.Client, tc.Timeout, req)
	if err != nil {
		return Receipt{}, err
	}
	var ans struct {
		Response struct {
			Error *struct {
				Code    string
				Message string
			}
			SendStatusSet []struct {
				SerialNo       string
				PhoneNumber    string
				SessionContext string
				Code           string
				Message        string
			}
			RequestId string
		}
	}
	if json.Unmarshal(r.body, &ans) != nil || (ans.Response.Error == nil && len(ans.Response.SendStatusSet) == 0) {
		if r.status/100 != 2 {
			return Receipt{}, statusError(ch, r, now, "")
		}
		return Receipt{}, &Error{Channel: ch, Status: r.status, Err: fmt.Errorf("answer without Error or SendStatusSet")}
	}
	code, msg := "", ""
	if e := ans.Response.Error; e != nil {
		code, msg = e.Code, e.Message
	} else {
		s := ans.Response.SendStatusSet[0]
		if s.Code == "Ok" {
			return Receipt{ProviderID: s.SerialNo}, nil
		}
		code, msg = s.Code, s.Message
	}
	e := tencentError(code)
	e.Status = r.status
	e.Err = fmt.Errorf("%w: %s (request %s)", ErrRefused, brief(msg, num, strings.TrimPrefix(num, "+"), tc.SecretID), requestID(ans.Response.RequestId))
	return Receipt{}, e
}

// tencentWindows are the per-number caps' waits.
var tencentWindows = map[string]time.Duration{
	"LimitExceeded.PhoneNumberThirtySecondLimit":     30 * time.Second,
	"LimitExceeded.PhoneNumberOneHourLimit":          time.Hour,
	"LimitExceeded.PhoneNumberDailyLimit":            24 * time.Hour,
	"LimitExceeded.PhoneNumberSameContentDailyLimit": 24 * time.Hour,
	"LimitExceeded.DeliveryFrequencyLimit":           time.Hour,
}

// tencentChannel lists the codes every message meets until the account or
// the configuration changes, with the wait when it ends by itself; every
// AuthFailure… and UnauthorizedOperation… is channel-wide too.
var tencentChannel = map[string]time.Duration{
	"FailedOperation.SignatureIncorrectOrUnapproved":  0,
	"FailedOperation.InsufficientBalanceInSmsPackage": 0,
	"InvalidParameterValue.SdkAppIdNotExist":          0,
	"LimitExceeded.AppDailyLimit":                     time.Hour,
	"LimitExceeded.AppGlobalDailyLimit":               time.Hour,
	"LimitExceeded.AppMainlandChinaDailyLimit":        time.Hour,
	"LimitExceeded.DailyLimit":                        time.Hour,
}

// tencentError classifies a code; the caller fills in Status and Err.
func tencentError(code string) *Error {
	e := &Error{Channel: "tencent", Code: code}
	if wait, ok := tencentWindows[code]; ok {
		e.RetryAfter = wait
		return e
	}
	for k, wait := range tencentChannel {
		if strings.EqualFold(k, code) { // SdkAppidNotExist is spelt both ways
			e.Scope, e.RetryAfter = ScopeChannel, wait
			return e
		}
	}
	for _, p := range []string{"AuthFailure", "UnauthorizedOperation"} {
		if strings.HasPrefix(code, p) {
			e.Scope = ScopeChannel
			return e
		}
	}
	for _, p := range []string{"InvalidParameter", "MissingParameter", "UnsupportedOperation", "FailedOperation"} {
		if strings.HasPrefix(code, p) { // InvalidParameter covers InvalidParameterValue
			e.Permanent = true
			return e
		}
	}
	return e
}

// tc3Authorization signs a POST of payload to host at t with signature v3
// (TC3-HMAC-SHA256) and returns the Authorization value and, for the
// tests' published vector, the hash of the canonical request.
func tc3Authorization(secretID, secretKey, service, host, contentType string, payload []byte, t time.Time) (auth, hashedRequest string) {
	const signed = "content-type;host"
	canonical := "POST\n/\n\n" +
		"content-type:" + contentType + "\nhost:" + host + "\n\n" +
		signed + "\n" + sha256hex(payload)
	hashedRequest = sha256hex([]byte(canonical))
	date := t.UTC().Format("2006-01-02")
	scope := date + "/" + service + "/tc3_request"
	sts := "TC3-HMAC-SHA256\n" + strconv.FormatInt(t.Unix(), 10) + "\n" + scope + "\n" + hashedRequest
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	sig := hex.EncodeToString(hmacSHA256(k, sts))
	return "TC3-HMAC-SHA256 Credential=" + secretID + "/" + scope + ", SignedHeaders=" + signed + ", Signature=" + sig, hashedRequest
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
