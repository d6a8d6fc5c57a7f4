package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// A login is as good as the user's entry in the configuration in force: a
// reload that removes the user or changes the password ends it at once,
// one that changes the role gives the login the new role at once, and the
// event stream it had open ends and cannot be opened again by a login
// that ended. A user the reload leaves as it was stays logged in.
func TestSession_ReloadedUsers(t *testing.T) {
	newHash := func(password string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	annHash := newHash("ann-pw")
	ann := User{Name: "ann", Role: RoleOperator, PasswordHash: annHash}
	bob := User{Name: "bob", Role: RoleViewer, PasswordHash: newHash("bob-pw")}
	for _, tc := range []struct {
		name      string
		annAfter  []User // ann's entry after the reload (none: removed)
		wantCode  int    // GET /api/v1/accounts as ann after the reload
		wantRole  string // ann's role after the reload, when still logged in
		wantTopUp int    // POST a top-up as ann after the reload
	}{
		{"removed", nil, http.StatusUnauthorized, "", http.StatusUnauthorized},
		{"demoted", []User{{Name: "ann", Role: RoleViewer, PasswordHash: annHash}}, http.StatusOK, RoleViewer, http.StatusForbidden},
		{"new password", []User{{Name: "ann", Role: RoleOperator, PasswordHash: newHash("ann-new-pw")}}, http.StatusUnauthorized, "", http.StatusUnauthorized},
		{"unchanged", []User{ann}, http.StatusOK, RoleOperator, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logins := NewSessions()
			events := &askedEvents{}
			before := newRig(t, func(o *Options) { o.Sessions, o.Users, o.Events = logins, []User{ann, bob}, events })
			after := newRig(t, func(o *Options) {
				o.Sessions, o.Users, o.Events = logins, append(append([]User(nil), tc.annAfter...), bob), events
			})
			f := NewFront(nil)
			f.Set(before.s)
			ln, err := netListen()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- f.Serve(ctx, ln) }()
			t.Cleanup(func() {
				cancel()
				if err := <-served; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
			front := &rig{s: before.s, url: "http://" + ln.Addr().String()}
			annC, bobC := client(t), client(t)
			csrf := front.login(t, annC, "ann", "ann-pw")
			front.login(t, bobC, "bob", "bob-pw")
			stream := openSessionSSE(t, annC, front.url+"/api/v1/events")

			if !f.Hold(5 * time.Second) {
				t.Fatal("Hold: requests left open")
			}
			f.Set(after.s)

			select {
			case <-stream:
			case <-time.After(5 * time.Second):
				t.Fatal("ann's event stream still open 5 s after the reload")
			}
			if code := front.do(t, annC, "GET", "/api/v1/accounts", "", nil, nil); code != tc.wantCode {
				t.Errorf("GET /api/v1/accounts as ann after the reload = %d; want %d", code, tc.wantCode)
			}
			if tc.wantRole != "" {
				var v SessionView
				if code := front.do(t, annC, "GET", "/api/v1/session", "", nil, &v); code != 200 || v.Role != tc.wantRole || v.Actor != "user:ann" {
					t.Errorf("GET /api/v1/session as ann after the reload = %d %+v; want 200 with user:ann as %s", code, v, tc.wantRole)
				}
			}
			code := front.do(t, annC, "POST", "/api/v1/accounts/T-101/topups", `{"amount":"10.00","ref":"PAY-1","channel":"cash"}`,
				map[string]string{"X-CSRF-Token": csrf, "Content-Type": "application/json"}, nil)
			if code != tc.wantTopUp {
				t.Errorf("a top-up by ann after the reload = %d; want %d", code, tc.wantTopUp)
			}
			if tc.wantCode == http.StatusUnauthorized {
				req, _ := http.NewRequest("GET", front.url+"/api/v1/events", nil)
				resp, err := annC.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("ann reopening the event stream after the reload = %d; want 401", resp.StatusCode)
				}
			}
			if tc.wantCode == http.StatusUnauthorized {
				// Ended, not only refused: the old configuration, under
				// which ann's login was good, refuses it too once back.
				f.Hold(5 * time.Second)
				f.Set(before.s)
				if code := front.do(t, annC, "GET", "/api/v1/accounts", "", nil, nil); code != http.StatusUnauthorized {
					t.Errorf("ann's ended login with the old configuration back = %d; want 401", code)
				}
			}
			var v SessionView
			if code := front.do(t, bobC, "GET", "/api/v1/session", "", nil, &v); code != 200 || v.Actor != "user:bob" || v.Role != RoleViewer {
				t.Errorf("bob, unchanged by the reload: GET /api/v1/session = %d %+v; want 200 as user:bob, viewer", code, v)
			}
		})
	}
}

// openSessionSSE opens an event stream with c's cookies; the channel
// closes when the server ends the stream.
func openSessionSSE(t *testing.T, c *http.Client, url string) <-chan struct{} {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	streaming := *c
	streaming.Timeout = 0 // the stream lasts until the server ends it
	resp, err := streaming.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("GET %s = %d %s; want 200 and an event stream", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		buf := make([]byte, 512)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				return
			}
		}
	}()
	return ended
}
