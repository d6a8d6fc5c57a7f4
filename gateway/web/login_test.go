package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// postLogin logs in with a fresh client and returns the answer.
func (rg *rig) postLogin(t *testing.T, user, password, next string) *http.Response {
	t.Helper()
	resp, err := client(t).PostForm(rg.url+"/login", url.Values{"username": {user}, "password": {password}, "next": {next}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestLogin_WrongPassword: a wrong password and an unknown name get the
// same answer; each is logged with address and name, stored as a
// login_failed event and audited.
func TestLogin_WrongPassword(t *testing.T) {
	rg := newRig(t)
	var bodies []string
	for _, user := range []string{"admin", "nobody"} {
		resp, err := client(t).PostForm(rg.url+"/login", url.Values{"username": {user}, "password": {"guess"}})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("wrong password for %s = %d, cookie %q; want 401 and no cookie", user, resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
		bodies = append(bodies, strings.ReplaceAll(string(raw), `value="`+user+`"`, ""))
	}
	if bodies[0] != bodies[1] {
		t.Errorf("a wrong password and an unknown user are answered differently:\n%s\n---\n%s", bodies[0], bodies[1])
	}
	if wrong := "Wrong user name or password."; !strings.Contains(bodies[0], wrong) {
		t.Errorf("the page does not say %q", wrong)
	}
	rg.events.mu.Lock()
	evs := rg.events.evs
	rg.events.mu.Unlock()
	if len(evs) != 2 || evs[0].Kind != "login_failed" || !strings.Contains(evs[1].Text, `"nobody"`) || !strings.Contains(evs[1].Text, "127.0.0.1") {
		t.Errorf("events = %+v; want two login_failed naming the user and the address", evs)
	}
	recs := rg.audit.all()
	// The name tried is the target; the actor is the address that tried it,
	// so a filter on a user's actor never shows another's guess.
	if len(recs) != 2 || recs[0].Action != "login_failed" || recs[0].Target != "admin" || recs[1].Target != "nobody" ||
		recs[0].Actor != "login:127.0.0.1" ||
		recs[0].Address != "127.0.0.1" || !strings.HasPrefix(recs[0].Outcome, "401") {
		t.Errorf("audit = %+v; want two login_failed records with the names tried and the address", recs)
	}
	if log := rg.logged.String(); strings.Count(log, `"message":"login failed`) != 2 || !strings.Contains(log, `"user":"nobody"`) ||
		!strings.Contains(log, `"client":"127.0.0.1"`) {
		t.Errorf("log = %s; want a line per failure with client and user", log)
	}
}

// TestLogin_Limits: past 5 failures for a name, or 20 from an address, in
// 15 minutes, every login is refused with 429 and Retry-After, the right
// password too, until the window has passed.
func TestLogin_Limits(t *testing.T) {
	rg := newRig(t)
	for range userFailures {
		if code := rg.postLogin(t, "admin", "guess", "").StatusCode; code != 401 {
			t.Fatalf("failure = %d; want 401", code)
		}
	}
	resp := rg.postLogin(t, "admin", "admin-pw", "")
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || retry < 1 || retry > int(loginWindow/time.Second) {
		t.Fatalf("right password after %d failures = %d, Retry-After %q; want 429 with 1..900 s", userFailures, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := rg.postLogin(t, "viewer", "viewer-pw", "").StatusCode; code != http.StatusSeeOther {
		t.Errorf("another user from the same address = %d; want 303 (below the address's limit)", code)
	}
	rg.clock.add(loginWindow)
	if code := rg.postLogin(t, "admin", "admin-pw", "").StatusCode; code != http.StatusSeeOther {
		t.Errorf("right password once the window passed = %d; want 303", code)
	}
	for i := range addressFailures {
		rg.postLogin(t, "name"+strconv.Itoa(i), "guess", "")
	}
	if code := rg.postLogin(t, "finance", "finance-pw", "").StatusCode; code != http.StatusTooManyRequests {
		t.Errorf("a good login after %d failures from its address = %d; want 429", addressFailures, code)
	}
}

// Guesses sent in parallel are counted as they are let through, not when
// bcrypt is done with them: no more than the limit are ever judged.
func TestLogin_LimitsHoldInParallel(t *testing.T) {
	rg := newRig(t)
	const n = 40
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- rg.postLogin(t, "admin", "guess", "").StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	judged := 0
	for c := range codes {
		switch c {
		case http.StatusUnauthorized:
			judged++
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Errorf("a parallel guess = %d; want 401, 429 or 503", c)
		}
	}
	if judged > userFailures {
		t.Errorf("%d of %d parallel guesses were judged; want at most the limit, %d", judged, n, userFailures)
	}
	// The right password is refused too, from this address: the limit is
	// per name and address.
	if code := rg.postLogin(t, "admin", "admin-pw", "").StatusCode; code != http.StatusTooManyRequests {
		t.Errorf("right password after the parallel guesses = %d; want 429", code)
	}
}

// TestSession: the cookie is HttpOnly and SameSite, a login lasts while
// used and ends after session_idle without a request, and after logout.
func TestSession(t *testing.T) {
	rg := newRig(t, func(o *Options) { o.SessionIdle = 30 * time.Minute })
	resp := rg.postLogin(t, "operator", "operator-pw", "/?x=1")
	if loc := resp.Header.Get("Location"); loc != "/?x=1" {
		t.Errorf("login went to %q; want the page asked for", loc)
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || len(c.Value) < 43 {
		t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Lax, not Secure over plain HTTP, 256 random bits", c)
	}
	get := func() int {
		req, _ := http.NewRequest("GET", rg.url+"/api/v1/meters", nil)
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		rg.clock.add(29 * time.Minute)
		if code := get(); code != 200 {
			t.Fatalf("a request 29 min after the last = %d; want 200", code)
		}
	}
	rg.clock.add(31 * time.Minute)
	if code := get(); code != 401 {
		t.Errorf("a request 31 min after the last = %d; want 401", code)
	}
	// A login used every few minutes still ends sessionMaxLife after it
	// began (a screen that polls would otherwise keep it for ever).
	c = nil
	for _, k := range rg.postLogin(t, "operator", "operator-pw", "/").Cookies() {
		if k.Name == sessionCookie {
			c = k
		}
	}
	for used := time.Duration(0); used+20*time.Minute <= sessionMaxLife; used += 20 * time.Minute {
		rg.clock.add(20 * time.Minute)
		if code := get(); code != 200 {
			t.Fatalf("a login used every 20 min, %s after it began = %d; want 200", used+20*time.Minute, code)
		}
	}
	rg.clock.add(20 * time.Minute)
	if code := get(); code != 401 {
		t.Errorf("a login used every 20 min, past %s = %d; want 401", sessionMaxLife, code)
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example",
		"/\t/evil.example/x", "/\n/evil.example", "/\r//evil.example", "/\x7f/evil.example", "/x\\..\\/evil.example"} {
		if loc := rg.postLogin(t, "viewer", "viewer-pw", next).Header.Get("Location"); loc != "/" {
			t.Errorf("login with next %q went to %q; want /", next, loc)
		}
	}
}

// TestAudit_Changes: each change records who, role, address, what, target,
// before and after, reason and outcome; a refused change is recorded with
// its refusal; a read is not recorded.
func TestAudit_Changes(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	op := map[string]string{"Authorization": "Bearer operator-secret"}
	rg.do(t, c, "GET", "/api/v1/accounts", "", op, nil)
	rg.do(t, c, "POST", "/api/v1/accounts/T-101/topups", `{"amount":"100.00","ref":"PAY-1","channel":"cash"}`, op, nil)
	rg.do(t, c, "POST", "/api/v1/meters/M-101/relay", `{"state":"off","reason":"works"}`, map[string]string{"Authorization": "Bearer viewer-secret"}, nil)
	recs := rg.audit.all()
	if len(recs) != 2 {
		t.Fatalf("audit = %+v; want the top-up and the refused override", recs)
	}
	want := AuditRecord{Time: rg.clock.now(), Actor: "token:operator-token", Role: RoleOperator, Address: "127.0.0.1",
		Action: "POST /api/v1/accounts/{tenant}/topups", Target: "T-101", Before: "balance 10.00", After: "balance 110.00",
		Reason: "cash ref PAY-1 amount 100.00", Outcome: "ok"}
	if recs[0] != want {
		t.Errorf("top-up record = %+v; want %+v", recs[0], want)
	}
	if r := recs[1]; r.Actor != "token:viewer-token" || r.Action != "POST /api/v1/meters/{id}/relay" ||
		r.Target != "/api/v1/meters/M-101/relay" || !strings.HasPrefix(r.Outcome, "403 token:viewer-token is viewer") {
		t.Errorf("refused override record = %+v; want the viewer, the path it was about and the 403 with its reason", r)
	}
}

// TestServe_TLS: with Options.TLS the server speaks HTTPS only, and the
// session cookie is Secure.
func TestServe_TLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	rg := newRig(t, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
	})
	addr := serve(t, rg.s)
	_, port, _ := strings.Cut(addr, ":")
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm("https://localhost:"+port+"/login", url.Values{"username": {"admin"}, "password": {"admin-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure {
		t.Errorf("login over TLS = %d, cookies %+v; want 303 and a Secure cookie", resp.StatusCode, cs)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no Strict-Transport-Security over TLS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://localhost:"+port+"/healthz", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port = %d; want it refused", resp.StatusCode)
		}
	}
}

// A login or a change posted from another site's page is refused, even
// with the right password (login CSRF); the same from the gateway's own
// page, or from a machine without the headers, is not.
func TestCrossSitePostsRefused(t *testing.T) {
	rg := newRig(t)
	post := func(path string, h map[string]string) int {
		form := url.Values{"username": {"viewer"}, "password": {"viewer-pw"}}
		req, _ := http.NewRequest("POST", rg.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	host := strings.TrimPrefix(rg.url, "http://")
	for _, c := range []struct {
		name string
		h    map[string]string
		want int
	}{
		{"another site's origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"a null origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"its own page", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"no browser headers", nil, http.StatusSeeOther},
	} {
		if got := post("/login", c.h); got != c.want {
			t.Errorf("login from %s = %d; want %d", c.name, got, c.want)
		}
	}
}
