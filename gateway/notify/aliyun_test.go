package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/gateway/notify"
)

// fakeAliyun plays dysmsapi: it recomputes the v1 signature from what
// arrived (its own encoder, the one the SDKs use: QueryEscape with + → %20,
// * → %2A, %7E → ~) and refuses as the service does — a bad signature,
// a stale timestamp, a nonce seen before, missing parameters, a number,
// sign or template it does not know, a template's variable missing, and a
// number's second SMS within a minute.
type fakeAliyun struct {
	t      *testing.T
	id     string
	secret string
	now    func() time.Time

	mu       sync.Mutex
	nonces   map[string]bool
	lastSent map[string]time.Time
	sent     []url.Values
	requests int
}

func newFakeAliyun(t *testing.T, now func() time.Time) *fakeAliyun {
	return &fakeAliyun{t: t, id: "LTAI5tTestKeyId", secret: "TestKeySecret0123456789", now: now,
		nonces: map[string]bool{}, lastSent: map[string]time.Time{}}
}

func aliEncode(s string) string {
	s = url.QueryEscape(s)
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(s)
}

var aliTemplates = map[string][]string{"SMS_460985001": {"shop", "balance"}, "SMS_460985002": nil}

var mainland = regexp.MustCompile(`^(\+86|0086|86)?1[3-9][0-9]{9}$`)

func (f *fakeAliyun) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"RequestId": "8F2C1A3B-0000", "HostId": "dysmsapi.aliyuncs.com", "Code": code, "Message": msg, "Recommend": "https://api.aliyun.com/troubleshoot"})
	}
	if err := r.ParseForm(); err != nil {
		fail(400, "InvalidParameter", err.Error())
		return
	}
	p := r.Form
	for _, k := range []string{"AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp", "Version", "Signature", "PhoneNumbers", "SignName", "TemplateCode"} {
		if p.Get(k) == "" {
			fail(400, "MissingParameter", "The input parameter \""+k+"\" that is mandatory for processing this request is not supplied.")
			return
		}
	}
	if p.Get("Action") != "SendSms" || p.Get("Version") != "2017-05-25" || p.Get("SignatureMethod") != "HMAC-SHA1" || p.Get("SignatureVersion") != "1.0" || p.Get("Format") != "JSON" {
		f.t.Errorf("common parameters %v", p)
	}
	if p.Get("AccessKeyId") != f.id {
		fail(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		return
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, aliEncode(k)+"="+aliEncode(p.Get(k)))
	}
	sts := r.Method + "&" + aliEncode("/") + "&" + aliEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(f.secret+"&"))
	mac.Write([]byte(sts))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); p.Get("Signature") != want {
		fail(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:"+sts)
		return
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	if err != nil {
		fail(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
		return
	}
	if d := f.now().Sub(ts); d > 15*time.Minute || d < -15*time.Minute {
		fail(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
		return
	}
	if f.nonces[p.Get("SignatureNonce")] {
		fail(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
		return
	}
	f.nonces[p.Get("SignatureNonce")] = true
	ok := func(code, msg string) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		ans := map[string]string{"RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990", "Code": code, "Message": msg}
		if code == "OK" {
			ans["BizId"] = fmt.Sprintf("90020%d^0", len(f.sent))
		}
		_ = json.NewEncoder(w).Encode(ans)
	}
	num := p.Get("PhoneNumbers")
	if !mainland.MatchString(num) {
		ok("isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number")
		return
	}
	if p.Get("SignName") != "商场电费" {
		ok("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
		return
	}
	vars, known := aliTemplates[p.Get("TemplateCode")]
	if !known {
		ok("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
		return
	}
	if len(vars) > 0 {
		var tp map[string]string
		if err := json.Unmarshal([]byte(p.Get("TemplateParam")), &tp); err != nil {
			ok("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
			return
		}
		for _, v := range vars {
			if tp[v] == "" {
				ok("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
				return
			}
		}
	}
	if last, seen := f.lastSent[num]; seen && f.now().Sub(last) < time.Minute {
		ok("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
		return
	}
	f.lastSent[num] = f.now()
	f.sent = append(f.sent, p)
	ok("OK", "OK")
}

func newAliyun(f *fakeAliyun, endpoint string, clk *testClock) *notify.Aliyun {
	return &notify.Aliyun{
		AccessKeyID: f.id, AccessKeySecret: f.secret, SignName: "商场电费",
		Templates: map[string]string{"warning_1": "SMS_460985001", "restored": "SMS_460985002", "cut_off": "SMS_999"},
		Endpoint:  endpoint + "/", Now: clk.Now,
	}
}

func TestAliyun_Send(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeAliyun(t, clk.Now)
	srv := httptest.NewServer(f)
	defer srv.Close()
	a := newAliyun(f, srv.URL, clk)
	m := sample()
	m.To.Phone = "+86 138 0013 8000"
	// Text with characters the encoder must get right: space, *, ~, +.
	m.Params = []notify.Param{{Key: "shop", Value: "A-12 *王记* ~1+1"}, {Key: "balance", Value: "35.20"}}
	rc, err := a.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if rc.ProviderID == "" {
		t.Error("no BizId in the receipt")
	}
	got := f.sent[0]
	if got.Get("PhoneNumbers") != "+8613800138000" || got.Get("OutId") != "d-000042" || got.Get("TemplateCode") != "SMS_460985001" || got.Get("RegionId") != "cn-hangzhou" {
		t.Errorf("sent %v; want the tidied number, OutId the delivery id, the kind's template", got)
	}
	var tp map[string]string
	if err := json.Unmarshal([]byte(got.Get("TemplateParam")), &tp); err != nil || tp["shop"] != "A-12 *王记* ~1+1" {
		t.Errorf("TemplateParam %s (%v); want the params as a JSON object of strings", got.Get("TemplateParam"), err)
	}
	// A template without variables sends no TemplateParam.
	m.Kind, m.Params = "restored", nil
	clk.Advance(time.Minute)
	if _, err := a.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, has := f.sent[1]["TemplateParam"]; has {
		t.Errorf("TemplateParam %q sent for a template without variables", f.sent[1].Get("TemplateParam"))
	}
}

// TestAliyun_Send_Retry: a resend (the answer was lost) signs anew with a
// new nonce, so the service does not refuse it as a replay.
func TestAliyun_Send_Retry(t *testing.T) {
	clk := &testClock{t: t0}
	f := newFakeAliyun(t, clk.Now)
	srv := httptest.NewServer(f)
	defer srv.Close()
	a := newAliyun(f, srv.URL, clk)
	m := sample()
	if _, err := a.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	if _, err := a.Send(context.Background(), m); err != nil {
		t.Fatalf("resend: %v", err)
	}
	// The same nonce twice is what the service refuses: temporary, since
	// the next attempt has a new one.
	a.Nonce = func() string { return "fixed-nonce" }
	clk.Advance(61 * time.Second)
	if _, err := a.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	_, err := a.Send(context.Background(), m)
	var e *notify.Error
	if !errors.As(err, &e) || e.Code != "SignatureNonceUsed" || e.Permanent {
		t.Errorf("got %v; want a temporary SignatureNonceUsed", err)
	}
}

func TestAliyun_Send_Refusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		change     func(a *notify.Aliyun, m *notify.Message, clk *testClock)
		code       string
		class      string
		retryAfter time.Duration
		want       error
	}{
		{"bad number", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { m.To.Phone = "12345" }, "isv.MOBILE_NUMBER_ILLEGAL", "permanent", 0, notify.ErrRefused},
		{"unknown template", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { m.Kind = "cut_off" }, "isv.SMS_TEMPLATE_ILLEGAL", "permanent", 0, notify.ErrRefused},
		{"unknown sign", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { a.SignName = "别的" }, "isv.SMS_SIGNATURE_ILLEGAL", "channel", 0, notify.ErrRefused},
		{"variable missing", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { m.Params = m.Params[:1] }, "isv.TEMPLATE_MISSING_PARAMETERS", "permanent", 0, notify.ErrRefused},
		{"wrong secret", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { a.AccessKeySecret = "wrong" }, "SignatureDoesNotMatch", "channel", 0, notify.ErrRefused},
		{"unknown key", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { a.AccessKeyID = "LTAIother" }, "InvalidAccessKeyId.NotFound", "channel", 0, notify.ErrRefused},
		{"clock 20 min slow", func(a *notify.Aliyun, m *notify.Message, clk *testClock) {
			a.Now = func() time.Time { return clk.Now().Add(-20 * time.Minute) }
		}, "InvalidTimeStamp.Expired", "channel", 0, notify.ErrRefused},
		{"minute flow control", func(a *notify.Aliyun, m *notify.Message, clk *testClock) {
			if _, err := a.Send(context.Background(), *m); err != nil {
				panic(err)
			}
			clk.Advance(30 * time.Second)
		}, "isv.BUSINESS_LIMIT_CONTROL", "temporary", time.Minute, notify.ErrRefused},
		{"no phone", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { m.To.Phone = " " }, "", "permanent", 0, notify.ErrNoAddress},
		{"no template", func(a *notify.Aliyun, m *notify.Message, clk *testClock) { m.Kind = "overload" }, "", "permanent", 0, notify.ErrNoTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t: t0}
			f := newFakeAliyun(t, clk.Now)
			srv := httptest.NewServer(f)
			defer srv.Close()
			a := newAliyun(f, srv.URL, clk)
			m := sample()
			tc.change(a, &m, clk)
			sent := len(f.sent)
			_, err := a.Send(context.Background(), m)
			var e *notify.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v; want a *notify.Error", err)
			}
			if e.Code != tc.code || class(err) != tc.class || notify.RetryAfter(err) != tc.retryAfter || !errors.Is(err, tc.want) {
				t.Errorf("got %v (retry %v); want code %q %s retry %v %v", err, notify.RetryAfter(err), tc.code, tc.class, tc.retryAfter, tc.want)
			}
			if len(f.sent) != sent {
				t.Error("the service accepted it")
			}
			// SignatureDoesNotMatch's Message ends with the server's string
			// to sign: the number and the template's values.
			for _, s := range []string{f.secret, "13800138000", "A-12", "35.20", "POST&", "%3D"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q holds %q", err, s)
				}
			}
		})
	}
}

func TestAliyun_Send_FlowWindows(t *testing.T) {
	for msg, want := range map[string]time.Duration{
		"触发分钟级流控Permits:1": time.Minute,
		"触发小时级流控Permits:5": time.Hour,
		"触发天级流控Permits:10": 24 * time.Hour,
		"":                 time.Minute,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"RequestId":"X","Code":"isv.BUSINESS_LIMIT_CONTROL","Message":%q}`, msg)
		}))
		a := &notify.Aliyun{AccessKeyID: "id", AccessKeySecret: "s", SignName: "x", Templates: map[string]string{"warning_1": "SMS_1"}, Endpoint: srv.URL + "/"}
		_, err := a.Send(context.Background(), sample())
		srv.Close()
		if notify.Permanent(err) || notify.RetryAfter(err) != want {
			t.Errorf("%s: got %v retry %v; want temporary, retry after %v", msg, err, notify.RetryAfter(err), want)
		}
	}
}

// TestAliyun_Send_Totals: the console's daily and monthly totals stop
// every message: channel-wide, tried again in an hour.
func TestAliyun_Send_Totals(t *testing.T) {
	for _, code := range []string{"isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH", "isv.DENY_IP_RANGE"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"RequestId":"X","Code":%q,"Message":"m"}`, code)
		}))
		a := &notify.Aliyun{AccessKeyID: "id", AccessKeySecret: "s", SignName: "x", Templates: map[string]string{"warning_1": "SMS_1"}, Endpoint: srv.URL + "/"}
		_, err := a.Send(context.Background(), sample())
		srv.Close()
		want := time.Duration(0)
		if strings.HasSuffix(code, "LIMIT_CONTROL") {
			want = time.Hour
		}
		if class(err) != "channel" || notify.RetryAfter(err) != want {
			t.Errorf("%s: got %v (%s, retry %v); want channel-wide, retry after %v", code, err, class(err), notify.RetryAfter(err), want)
		}
	}
}
