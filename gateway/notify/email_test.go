package notify_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/gateway/notify"
)

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// smtpServer is a submission server of the kind a mall's mail provider
// runs: it offers STARTTLS (or speaks TLS at once), offers AUTH only over
// TLS, wants EHLO again after STARTTLS, wants a login before MAIL when it
// has users, insists on CRLF, and undoes dot-stuffing.
type smtpServer struct {
	t     *testing.T
	addr  string
	mode  notify.TLSMode
	cert  tls.Certificate
	user  string
	pass  string
	mechs string // offered AUTH mechanisms
	// replies override a command's success reply ("MAIL", "RCPT", "DATA").
	replies map[string]string
	silent  bool // accept and never greet

	mu    sync.Mutex
	conns int
	msgs  []smtpMsg
	steps []string // the commands of the last conversation, in order
}

type smtpMsg struct {
	from, to string
	data     string
}

func startSMTP(t *testing.T, s *smtpServer) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.t, s.addr = t, ln.Addr().String()
	if s.mechs == "" {
		s.mechs = "PLAIN LOGIN"
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s.mu.Lock()
	s.conns++
	s.steps = nil
	s.mu.Unlock()
	if s.silent {
		io.Copy(io.Discard, c)
		return
	}
	secure := false
	if s.mode == notify.TLSImplicit {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
		if tc.Handshake() != nil {
			return
		}
		c, secure = tc, true
	}
	r := bufio.NewReader(c)
	say := func(line string) { io.WriteString(c, line+"\r\n") }
	read := func() (string, bool) {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", false
		}
		if !strings.HasSuffix(l, "\r\n") {
			s.t.Errorf("line %q without CRLF", l)
		}
		return strings.TrimRight(l, "\r\n"), true
	}
	say("220 mail.test ESMTP")
	var helo, authed bool
	var from, to string
	for {
		line, ok := read()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		s.steps = append(s.steps, verb)
		s.mu.Unlock()
		reply := func(cmd, def string) {
			if r, ok := s.replies[cmd]; ok {
				say(r)
				return
			}
			say(def)
		}
		switch verb {
		case "EHLO":
			helo = true
			say("250-mail.test")
			if s.mode == notify.TLSStartTLS && !secure {
				say("250-STARTTLS")
			}
			if secure && s.user != "" {
				say("250-AUTH " + s.mechs)
			}
			say("250 8BITMIME")
		case "STARTTLS":
			if s.mode != notify.TLSStartTLS || secure {
				say("502 5.5.1 not offered")
				continue
			}
			say("220 2.0.0 ready")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if tc.Handshake() != nil {
				return
			}
			c, secure, helo = tc, true, false // RFC 3207: forget what came before
			r = bufio.NewReader(c)
		case "AUTH":
			if !secure || !helo {
				say("503 5.5.1 no AUTH now")
				continue
			}
			mech, initial, _ := strings.Cut(arg, " ")
			var user, pass string
			switch strings.ToUpper(mech) {
			case "PLAIN":
				if !strings.Contains(s.mechs, "PLAIN") {
					say("504 5.5.4 not offered")
					continue
				}
				if initial == "" {
					say("334 ")
					initial, _ = read()
				}
				raw, _ := base64.StdEncoding.DecodeString(initial)
				parts := strings.Split(string(raw), "\x00")
				if len(parts) == 3 {
					user, pass = parts[1], parts[2]
				}
			case "LOGIN":
				say("334 " + base64.StdEncoding.EncodeToString([]byte("Username:")))
				l, _ := read()
				u, _ := base64.StdEncoding.DecodeString(l)
				say("334 " + base64.StdEncoding.EncodeToString([]byte("Password:")))
				l, _ = read()
				p, _ := base64.StdEncoding.DecodeString(l)
				user, pass = string(u), string(p)
			default:
				say("504 5.5.4 unknown mechanism")
				continue
			}
			if user == s.user && pass == s.pass {
				authed = true
				say("235 2.7.0 Authentication successful")
			} else {
				say("535 5.7.8 Authentication credentials invalid")
			}
		case "MAIL":
			switch {
			case !helo:
				say("503 5.5.1 EHLO first")
			case s.user != "" && !authed:
				say("530 5.7.0 Authentication required")
			default:
				from = strings.TrimSuffix(strings.TrimPrefix(arg, "FROM:<"), ">")
				if i := strings.Index(from, "> "); i >= 0 { // parameters such as BODY=8BITMIME
					from = from[:i]
				}
				reply("MAIL", "250 2.1.0 ok")
			}
		case "RCPT":
			to = strings.TrimSuffix(strings.TrimPrefix(arg, "TO:<"), ">")
			reply("RCPT", "250 2.1.5 ok")
		case "DATA":
			if from == "" || to == "" {
				say("503 5.5.1 MAIL and RCPT first")
				continue
			}
			say("354 end with <CRLF>.<CRLF>")
			var data strings.Builder
			for {
				l, ok := read()
				if !ok {
					return
				}
				if l == "." {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".") + "\r\n")
			}
			if r, ok := s.replies["DATA"]; ok {
				say(r)
				continue
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, smtpMsg{from, to, data.String()})
			s.mu.Unlock()
			say("250 2.0.0 queued")
		case "RSET", "NOOP":
			say("250 2.0.0 ok")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("500 5.5.2 unknown command")
		}
	}
}

const mailText = "商铺 A-12 余额 ¥35.20，预计 2 天后停电。\n.\n.hidden line\nA line that is long enough to need a soft line break in quoted-printable, which wraps at 76 characters."

func mailMessage() notify.Message {
	m := sample()
	m.Subject = "【广场电费】余额不足提醒 — Low balance"
	m.Text = mailText
	return m
}

func newEmail(s *smtpServer, pool *x509.CertPool) *notify.Email {
	return &notify.Email{Addr: s.addr, TLS: s.mode, Username: s.user, Password: s.pass,
		From: "Plaza Power <power@plaza.example>", TLSConfig: &tls.Config{RootCAs: pool},
		Now: fixedClock(time.Date(2026, 3, 14, 17, 30, 0, 0, time.FixedZone("CST", 8*3600))), Timeout: 3 * time.Second}
}

func TestEmail_Send(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name  string
		srv   *smtpServer
		steps string
	}{
		{"starttls, PLAIN", &smtpServer{mode: notify.TLSStartTLS, user: "power@plaza.example", pass: "s3cret"}, "EHLO STARTTLS EHLO AUTH MAIL RCPT DATA QUIT"},
		{"starttls, LOGIN only", &smtpServer{mode: notify.TLSStartTLS, user: "power", pass: "s3cret", mechs: "LOGIN"}, "EHLO STARTTLS EHLO AUTH MAIL RCPT DATA QUIT"},
		{"implicit tls, PLAIN", &smtpServer{mode: notify.TLSImplicit, user: "power", pass: "s3cret"}, "EHLO AUTH MAIL RCPT DATA QUIT"},
		{"none, no login (a local relay)", &smtpServer{mode: notify.TLSNone}, "EHLO MAIL RCPT DATA QUIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.srv.cert = cert
			s := startSMTP(t, tc.srv)
			e := newEmail(s, pool)
			m := mailMessage()
			rc, err := e.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.steps, " "); got != tc.steps {
				t.Errorf("conversation %s; want %s", got, tc.steps)
			}
			if len(s.msgs) != 1 {
				t.Fatalf("%d messages; want 1", len(s.msgs))
			}
			g := s.msgs[0]
			if g.from != "power@plaza.example" || g.to != "shop12@plaza.example" {
				t.Errorf("MAIL FROM %s RCPT TO %s", g.from, g.to)
			}
			checkMail(t, g.data, m)
			if want := "<mallgrid.d-000042@plaza.example>"; rc.ProviderID != want {
				t.Errorf("receipt %s; want %s", rc.ProviderID, want)
			}
		})
	}
}

func checkMail(t *testing.T, data string, m notify.Message) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, data)
	}
	h := msg.Header
	date, err := h.Date()
	if err != nil || !date.Equal(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)) || !strings.HasSuffix(h.Get("Date"), "+0800") {
		t.Errorf("Date %q (%v); want Sat, 14 Mar 2026 17:30:00 +0800", h.Get("Date"), err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subj != m.Subject {
		t.Errorf("Subject %q decodes to %q (%v); want %q", h.Get("Subject"), subj, err, m.Subject)
	}
	for _, l := range strings.Split(data, "\r\n") {
		if len(l) > 78 {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
		for _, r := range l {
			if r > 127 {
				t.Errorf("8-bit text in %q", l)
				break
			}
		}
	}
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	if len(from) != 1 || from[0].Address != "power@plaza.example" || from[0].Name != "Plaza Power" {
		t.Errorf("From %q", h.Get("From"))
	}
	if len(to) != 1 || to[0].Address != "shop12@plaza.example" || to[0].Name != "王老板" {
		t.Errorf("To %q; want the recipient's name and address", h.Get("To"))
	}
	if h.Get("Message-ID") != "<mallgrid.d-000042@plaza.example>" || h.Get("X-Mallgrid-Delivery") != "d-000042" {
		t.Errorf("Message-ID %q, X-Mallgrid-Delivery %q; want both from the delivery id", h.Get("Message-ID"), h.Get("X-Mallgrid-Delivery"))
	}
	if h.Get("MIME-Version") != "1.0" || h.Get("Content-Type") != "text/plain; charset=UTF-8" || h.Get("Content-Transfer-Encoding") != "quoted-printable" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", h)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if got, want := strings.TrimSuffix(string(body), "\r\n"), strings.ReplaceAll(m.Text, "\n", "\r\n"); err != nil || got != want {
		t.Errorf("body %q (%v); want %q", got, err, want)
	}
}

// TestEmail_Send_Resend: the same delivery sent twice carries the same
// Message-ID, so a mail client can tell the second is the first again.
func TestEmail_Send_Resend(t *testing.T) {
	cert, pool := selfSigned(t)
	s := startSMTP(t, &smtpServer{mode: notify.TLSStartTLS, cert: cert})
	e := newEmail(s, pool)
	for range 2 {
		if _, err := e.Send(context.Background(), mailMessage()); err != nil {
			t.Fatal(err)
		}
	}
	id := func(d string) string {
		m, _ := mail.ReadMessage(strings.NewReader(d))
		return m.Header.Get("Message-ID")
	}
	if a, b := id(s.msgs[0].data), id(s.msgs[1].data); a != b || a == "" {
		t.Errorf("Message-IDs %q and %q; want the same", a, b)
	}
	m := mailMessage()
	m.ID = "d.1/é"
	if _, err := e.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got, want := id(s.msgs[2].data), "<mallgrid.d=2E1=2F=C3=A9@plaza.example>"; got != want {
		t.Errorf("Message-ID %s; want %s", got, want)
	}
	// A plain subject stays plain; a line break in it starts no header.
	m.Subject = "Low balance\r\nBcc: all@plaza.example"
	if _, err := e.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got, _ := mail.ReadMessage(strings.NewReader(s.msgs[3].data))
	if got.Header.Get("Subject") != "Low balance  Bcc: all@plaza.example" || got.Header.Get("Bcc") != "" {
		t.Errorf("Subject %q Bcc %q; want one plain subject line", got.Header.Get("Subject"), got.Header.Get("Bcc"))
	}
}

func TestEmail_Send_Refusals(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name    string
		srv     *smtpServer
		change  func(e *notify.Email, m *notify.Message)
		status  int
		class   string
		connect bool // whether the server should have seen a connection
	}{
		{"wrong password", &smtpServer{mode: notify.TLSStartTLS, user: "u", pass: "right-pass"}, func(e *notify.Email, m *notify.Message) { e.Password = "wrong-pass" }, 535, "channel", true},
		{"mailbox unknown", &smtpServer{mode: notify.TLSStartTLS, replies: map[string]string{"RCPT": "550 5.1.1 no such user"}}, nil, 550, "permanent", true},
		{"mailbox busy", &smtpServer{mode: notify.TLSStartTLS, replies: map[string]string{"RCPT": "450 4.2.1 try later"}}, nil, 450, "temporary", true},
		{"server closing", &smtpServer{mode: notify.TLSStartTLS, replies: map[string]string{"MAIL": "421 4.3.2 shutting down"}}, nil, 421, "temporary", true},
		{"sender refused", &smtpServer{mode: notify.TLSStartTLS, replies: map[string]string{"MAIL": "553 5.7.1 sender not allowed"}}, nil, 553, "channel", true},
		{"mailbox unknown, echoed", &smtpServer{mode: notify.TLSStartTLS, replies: map[string]string{"RCPT": "550 5.1.1 <shop12@plaza.example>: no such user"}}, nil, 550, "permanent", true},
		{"message refused", &smtpServer{mode: notify.TLSStartTLS, replies: map[string]string{"DATA": "554 5.7.1 spam"}}, nil, 554, "permanent", true},
		{"no STARTTLS offered", &smtpServer{mode: notify.TLSNone}, func(e *notify.Email, m *notify.Message) { e.TLS = notify.TLSStartTLS }, 0, "channel", true},
		{"untrusted certificate", &smtpServer{mode: notify.TLSStartTLS}, func(e *notify.Email, m *notify.Message) { e.TLSConfig = nil }, 0, "channel", true},
		{"login without TLS", &smtpServer{mode: notify.TLSNone}, func(e *notify.Email, m *notify.Message) { e.Username, e.Password = "u", "right-pass" }, 0, "channel", false},
		{"no address", &smtpServer{mode: notify.TLSNone}, func(e *notify.Email, m *notify.Message) { m.To.Email = "" }, 0, "permanent", false},
		{"bad address", &smtpServer{mode: notify.TLSNone}, func(e *notify.Email, m *notify.Message) { m.To.Email = "shop12 at plaza" }, 0, "permanent", false},
		{"bad mode", &smtpServer{mode: notify.TLSNone}, func(e *notify.Email, m *notify.Message) { e.TLS = "ssl" }, 0, "channel", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.srv.cert = cert
			s := startSMTP(t, tc.srv)
			e := newEmail(s, pool)
			m := mailMessage()
			if tc.change != nil {
				tc.change(e, &m)
			}
			_, err := e.Send(context.Background(), m)
			var ne *notify.Error
			if !errors.As(err, &ne) || ne.Status != tc.status || class(err) != tc.class {
				t.Fatalf("got %v; want status %d %s", err, tc.status, tc.class)
			}
			if tc.connect && strings.Contains(err.Error(), "shop12@") {
				t.Errorf("error %q holds the address", err)
			}
			if len(s.msgs) != 0 {
				t.Error("the server took the message")
			}
			if (s.conns > 0) != tc.connect {
				t.Errorf("%d connections; want connected %v", s.conns, tc.connect)
			}
			if e.Password != "" && strings.Contains(err.Error(), e.Password) {
				t.Errorf("error %q holds the password", err)
			}
		})
	}
}

// TestEmail_Send_Deadline: a server that never greets costs one Timeout;
// a cancelled ctx ends the wait at once.
func TestEmail_Send_Deadline(t *testing.T) {
	s := startSMTP(t, &smtpServer{mode: notify.TLSNone, silent: true})
	e := newEmail(s, nil)
	e.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := e.Send(context.Background(), mailMessage())
	if err == nil || notify.Permanent(err) || time.Since(start) > 2*time.Second {
		t.Errorf("got %v after %v; want a temporary error after about 300 ms", err, time.Since(start))
	}
	e.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = e.Send(ctx, mailMessage())
	if !errors.Is(err, context.Canceled) || notify.Permanent(err) || time.Since(start) > 2*time.Second {
		t.Errorf("got %v after %v; want context.Canceled at once when ctx is cancelled", err, time.Since(start))
	}
}

// TestEmail_Send_LongSubject: a subject longer than a line is folded at
// its spaces, or encoded when it has none; no header line passes 78
// characters, and the subject reads back as it was.
func TestEmail_Send_LongSubject(t *testing.T) {
	s := startSMTP(t, &smtpServer{mode: notify.TLSNone})
	e := newEmail(s, nil)
	e.TLS = notify.TLSNone
	for i, subj := range []string{
		strings.Repeat("Low balance on A-12 ", 60),             // 1,200 characters, spaces to fold at
		strings.Repeat("x", 1200),                              // nowhere to fold
		"Low balance " + strings.Repeat("y", 100) + " on A-12", // one word too long for a line
		strings.Repeat("余额不足 A-12 ", 40),                       // encoded-words
	} {
		m := mailMessage()
		m.Subject = strings.TrimSpace(subj)
		if _, err := e.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		data := s.msgs[i].data
		head, _, _ := strings.Cut(data, "\r\n\r\n")
		for line := range strings.SplitSeq(head, "\r\n") {
			if len(line) > 78 && !strings.HasPrefix(line, " y") && !strings.HasPrefix(line, "Subject: Low balance yyy") {
				t.Errorf("subject %d: header line of %d characters: %.60q…", i, len(line), line)
			}
		}
		got, err := mail.ReadMessage(strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := new(mime.WordDecoder).DecodeHeader(got.Header.Get("Subject"))
		if err != nil || dec != m.Subject {
			t.Errorf("subject %d reads back as %.80q (%v); want %.80q", i, dec, err, m.Subject)
		}
	}
}
