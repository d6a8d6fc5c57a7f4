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
// "Ok" is accepted. RequestLimitExceeded…, LimitExceeded… (per-number
// 30-second, hourly and daily caps), InternalError…,
// AuthFailure.SignatureExpire (a clock put right later) and unknown codes
// are temporary; every other AuthFailure…, InvalidParameter(Value)…,
// MissingParameter…, UnauthorizedOperation…, UnsupportedOperation… and
// FailedOperation… (template or sign not approved, number blacklisted,
// package exhausted) is permanent.
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
	auth, _ := tc3Authorization(tc.SecretID, tc.SecretKey, "sms", u.Host, tencentContentType, payload, now)
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
	return Receipt{}, &Error{
		Channel: ch, Status: r.status, Code: code, Permanent: tencentPermanent(code),
		Err: fmt.Errorf("%w: %s (request %s)", ErrRefused, msg, ans.Response.RequestId),
	}
}

func tencentPermanent(code string) bool {
	if code == "AuthFailure.SignatureExpire" {
		return false
	}
	for _, p := range []string{"AuthFailure", "InvalidParameter", "MissingParameter", "UnauthorizedOperation", "UnsupportedOperation", "FailedOperation"} {
		if strings.HasPrefix(code, p) { // InvalidParameter covers InvalidParameterValue
			return true
		}
	}
	return false
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
