package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/gateway/notify"
)

// fakeTencent plays Tencent Cloud's SendSms 2021-01-11: it rebuilds the
// TC3-HMAC-SHA256 signature from the request it got, refuses one more than
// 5 minutes old, and answers in the API 3.0 shapes — Response.Error for a
// failed request, SendStatusSet per number otherwise.
type fakeTencent struct {
	t         *testing.T
	secretID  string
	secretKey string
	now       func() time.Time

	mu   sync.Mutex
	sent []map[string]any
	busy bool
}

func tcHMAC(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	io.WriteString(h, s)
	return h.Sum(nil)
}

func (f *fakeTencent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	fail := func(code, msg string) {
		json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{"Error": map[string]string{"Code": code, "Message": msg}, "RequestId": "b5b41468-520d-4192-b42f-595cc34b6c1c"}})
	}
	w.Header().Set("Content-Type", "application/json")
	h := r.Header
	if r.Method != http.MethodPost || r.URL.Path != "/" || h.Get("X-TC-Action") != "SendSms" || h.Get("X-TC-Version") != "2021-01-11" || h.Get("X-TC-Region") == "" {
		fail("InvalidParameter", "bad action, version, region or path")
		return
	}
	ct := h.Get("Content-Type")
	if ct != "application/json; charset=utf-8" {
		fail("InvalidParameter", "content type "+ct)
		return
	}
	ts, err := strconv.ParseInt(h.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		fail("InvalidParameter", "X-TC-Timestamp")
		return
	}
	auth := h.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "TC3-HMAC-SHA256 ")
	if !ok {
		fail("AuthFailure.InvalidAuthorization", "Authorization")
		return
	}
	parts := map[string]string{}
	for p := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(p, "=")
		parts[k] = v
	}
	cred := strings.Split(parts["Credential"], "/")
	if len(cred) != 4 || cred[2] != "sms" || cred[3] != "tc3_request" {
		fail("AuthFailure.InvalidAuthorization", "Credential "+parts["Credential"])
		return
	}
	if cred[0] != f.secretID {
		fail("AuthFailure.SecretIdNotFound", "The SecretId is not found")
		return
	}
	if cred[1] != time.Unix(ts, 0).UTC().Format("2006-01-02") {
		fail("AuthFailure.InvalidAuthorization", "the credential's date is not the timestamp's UTC date")
		return
	}
	// The signed headers as the request carried them.
	var canonHeaders strings.Builder
	for name := range strings.SplitSeq(parts["SignedHeaders"], ";") {
		v := h.Get(name)
		if name == "host" {
			v = r.Host
		}
		canonHeaders.WriteString(name + ":" + strings.ToLower(strings.TrimSpace(v)) + "\n")
	}
	if !strings.Contains(parts["SignedHeaders"], "content-type") || !strings.Contains(parts["SignedHeaders"], "host") {
		fail("AuthFailure.InvalidAuthorization", "content-type and host must be signed")
		return
	}
	ph := sha256.Sum256(body)
	canon := "POST\n/\n\n" + canonHeaders.String() + "\n" + parts["SignedHeaders"] + "\n" + hex.EncodeToString(ph[:])
	ch := sha256.Sum256([]byte(canon))
	sts := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + cred[1] + "/sms/tc3_request\n" + hex.EncodeToString(ch[:])
	k := tcHMAC([]byte("TC3"+f.secretKey), cred[1])
	k = tcHMAC(k, "sms")
	k = tcHMAC(k, "tc3_request")
	if hex.EncodeToString(tcHMAC(k, sts)) != parts["Signature"] {
		fail("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.")
		return
	}
	if d := f.now().Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		fail("AuthFailure.SignatureExpire", "Signature expired. Timestamp and server time are too far apart.")
		return
	}
	if f.busy {
		fail("RequestLimitExceeded", "The number of requests exceeds the frequency limit.")
		return
	}
	var b struct {
		PhoneNumberSet   []string
		SmsSdkAppId      string
		SignName         string
		TemplateId       string
		TemplateParamSet []string
		SessionContext   string
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || len(b.PhoneNumberSet) == 0 || b.SmsSdkAppId == "" || b.TemplateId == "" {
		fail("MissingParameter", fmt.Sprintf("%v %s", err, body))
		return
	}
	if b.SmsSdkAppId != "1400006666" {
		fail("FailedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId")
		return
	}
	if b.SignName != "商场电费" {
		fail("FailedOperation.SignatureIncorrectOrUnapproved", "signature not approved")
		return
	}
	if b.TemplateId != "1110" {
		fail("FailedOperation.TemplateIncorrectOrUnapproved", "template not approved")
		return
	}
	if len(b.TemplateParamSet) != 2 {
		fail("InvalidParameterValue.TemplateParameterFormatError", "the template has 2 variables")
		return
	}
	var set []map[string]any
	for _, num := range b.PhoneNumberSet {
		st := map[string]any{"SerialNo": "2645:1", "PhoneNumber": num, "Fee": 1, "SessionContext": b.SessionContext, "Code": "Ok", "Message": "send success", "IsoCode": "CN"}
		switch {
		case !mainland.MatchString(num):
			st["SerialNo"], st["Fee"], st["Code"], st["Message"] = "", 0, "InvalidParameterValue.IncorrectPhoneNumber", "incorrect number"
		case num == "+8613900000000":
			st["SerialNo"], st["Fee"], st["Code"], st["Message"] = "", 0, "LimitExceeded.PhoneNumberThirtySecondLimit", "the number's 30 s limit"
		default:
			f.sent = append(f.sent, map[string]any{"phone": num, "params": b.TemplateParamSet, "session": b.SessionContext})
		}
		set = append(set, st)
	}
	json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{"SendStatusSet": set, "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}})
}

func newTencent(f *fakeTencent, url string, clk *testClock) *notify.Tencent {
	return &notify.Tencent{SecretID: f.secretID, SecretKey: f.secretKey, SdkAppID: "1400006666", SignName: "商场电费",
		Templates: map[string]string{"warning_1": "1110", "cut_off": "9999"}, Endpoint: url + "/", Now: clk.Now}
}

func TestTencent_Send(t *testing.T) {
	// Just after midnight in Beijing, still the day before in UTC: the
	// credential's date must be the UTC one.
	clk := &testClock{t: time.Date(2026, 3, 15, 0, 20, 0, 0, time.FixedZone("CST", 8*3600))}
	f := &fakeTencent{t: t, secretID: "AKIDtestSecretId", secretKey: "testSecretKey", now: clk.Now}
	srv := httptest.NewServer(f)
	defer srv.Close()
	rc, err := newTencent(f, srv.URL, clk).Send(context.Background(), sample())
	if err != nil {
		t.Fatal(err)
	}
	if rc.ProviderID != "2645:1" {
		t.Errorf("receipt %q; want the SerialNo", rc.ProviderID)
	}
	g := f.sent[0]
	if g["phone"] != "+8613800138000" || g["session"] != "d-000042" || fmt.Sprint(g["params"]) != "[A-12 35.20]" {
		t.Errorf("sent %v; want the number, SessionContext the delivery id, the params in order", g)
	}
}

func TestTencent_Send_Refusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(tc *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock)
		code   string
		class  string
		want   error
	}{
		{"bad number", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { m.To.Phone = "555-0100" }, "InvalidParameterValue.IncorrectPhoneNumber", "permanent", notify.ErrRefused},
		{"30 s limit", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) {
			m.To.Phone = "+8613900000000"
		}, "LimitExceeded.PhoneNumberThirtySecondLimit", "temporary", notify.ErrRefused},
		{"template", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { m.Kind = "cut_off" }, "FailedOperation.TemplateIncorrectOrUnapproved", "permanent", notify.ErrRefused},
		{"sign", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { c.SignName = "x" }, "FailedOperation.SignatureIncorrectOrUnapproved", "channel", notify.ErrRefused},
		{"wrong key", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { c.SecretKey = "wrong" }, "AuthFailure.SignatureFailure", "channel", notify.ErrRefused},
		{"clock 6 min fast", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) {
			c.Now = func() time.Time { return clk.Now().Add(6 * time.Minute) }
		}, "AuthFailure.SignatureExpire", "channel", notify.ErrRefused},
		{"throttled", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { f.busy = true }, "RequestLimitExceeded", "temporary", notify.ErrRefused},
		{"no phone", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { m.To.Phone = "" }, "", "permanent", notify.ErrNoAddress},
		{"no template", func(c *notify.Tencent, m *notify.Message, f *fakeTencent, clk *testClock) { m.Kind = "restored" }, "", "permanent", notify.ErrNoTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t: t0}
			f := &fakeTencent{t: t, secretID: "AKIDtestSecretId", secretKey: "testSecretKey", now: clk.Now}
			srv := httptest.NewServer(f)
			defer srv.Close()
			c := newTencent(f, srv.URL, clk)
			m := sample()
			tc.change(c, &m, f, clk)
			_, err := c.Send(context.Background(), m)
			var e *notify.Error
			if !errors.As(err, &e) || e.Code != tc.code || class(err) != tc.class || !errors.Is(err, tc.want) {
				t.Fatalf("got %v; want code %q %s %v", err, tc.code, tc.class, tc.want)
			}
			if len(f.sent) != 0 {
				t.Error("the service accepted it")
			}
		})
	}
}

// TestTencent_Send_Limits: each per-number cap says how long to wait; the
// app's totals and the account's state stop the channel.
func TestTencent_Send_Limits(t *testing.T) {
	for _, tc := range []struct {
		code  string
		class string
		wait  time.Duration
	}{
		{"LimitExceeded.PhoneNumberThirtySecondLimit", "temporary", 30 * time.Second},
		{"LimitExceeded.PhoneNumberOneHourLimit", "temporary", time.Hour},
		{"LimitExceeded.PhoneNumberDailyLimit", "temporary", 24 * time.Hour},
		{"LimitExceeded.DeliveryFrequencyLimit", "temporary", time.Hour},
		{"LimitExceeded.AppDailyLimit", "channel", time.Hour},
		{"FailedOperation.InsufficientBalanceInSmsPackage", "channel", 0},
		{"UnauthorizedOperation.RequestIpNotInWhitelist", "channel", 0},
		{"UnauthorizedOperation.ServiceSuspendDueToArrears", "channel", 0},
		{"InvalidParameterValue.SdkAppidNotExist", "channel", 0},
		{"FailedOperation.PhoneNumberInBlacklist", "permanent", 0},
		{"InternalError.Timeout", "temporary", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613800138000","Code":%q,"Message":"limit for +8613800138000"}],"RequestId":"r-1"}}`, tc.code)
		}))
		c := &notify.Tencent{SecretID: "id", SecretKey: "k", SdkAppID: "1", Templates: map[string]string{"warning_1": "1"}, Endpoint: srv.URL}
		_, err := c.Send(context.Background(), sample())
		srv.Close()
		if class(err) != tc.class || notify.RetryAfter(err) != tc.wait {
			t.Errorf("%s: got %v (%s, retry %v); want %s, retry after %v", tc.code, err, class(err), notify.RetryAfter(err), tc.class, tc.wait)
		}
		if err != nil && strings.Contains(err.Error(), "13800138000") {
			t.Errorf("%s: error %q holds the number", tc.code, err)
		}
	}
}

// TestTencent_Send_UpperCaseHost: the endpoint's host written in capitals
// is signed lower-cased, as the service rebuilds the canonical headers.
func TestTencent_Send_UpperCaseHost(t *testing.T) {
	clk := &testClock{t: t0}
	f := &fakeTencent{t: t, secretID: "AKIDtestSecretId", secretKey: "testSecretKey", now: clk.Now}
	srv := httptest.NewServer(f)
	defer srv.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	c := newTencent(f, "http://LOCALHOST:"+port, clk)
	if _, err := c.Send(context.Background(), sample()); err != nil {
		t.Fatalf("endpoint http://LOCALHOST:%s: %v", port, err)
	}
}

func TestTencent_Send_HTTP(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		permanent bool
	}{
		{502, "<html>bad gateway</html>", false},
		{200, "{}", false},
		{400, "bad request", true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		c := &notify.Tencent{SecretID: "id", SecretKey: "k", SdkAppID: "1", Templates: map[string]string{"warning_1": "1"}, Endpoint: srv.URL}
		_, err := c.Send(context.Background(), sample())
		srv.Close()
		if err == nil || notify.Permanent(err) != tc.permanent {
			t.Errorf("%d %s: got %v; want permanent %v", tc.status, tc.body, err, tc.permanent)
		}
	}
}
