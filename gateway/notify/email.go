package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// TLSMode is how an SMTP connection is secured.
type TLSMode string

// The TLS modes of Email.
const (
	// TLSNone sends in the clear: only for a relay on the same host or a
	// trusted segment; no login is sent this way.
	TLSNone TLSMode = "none"
	// TLSStartTLS connects in the clear and upgrades (RFC 3207), usually on
	// port 587; a server that does not offer STARTTLS is refused rather
	// than written to in the clear.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (RFC 8314), port 465.
	TLSImplicit TLSMode = "tls"
)

// Email submits each message by SMTP to Recipient.Email: EHLO, STARTTLS
// or implicit TLS as TLS says, AUTH PLAIN or LOGIN (whichever the server
// offers, PLAIN first) when Username is set and only over TLS, MAIL FROM,
// RCPT TO, DATA. The message is RFC 5322 plain text in UTF-8: the subject
// as MIME encoded-words, the body quoted-printable, a Message-ID made from
// the delivery id (so a resend is recognisably the same message),
// Auto-Submitted: auto-generated (RFC 3834: no auto-replies), and
// X-Mallgrid-Delivery.
//
// An SMTP reply 4xx is temporary. A 5xx to RCPT or to the message is
// permanent (a refused mailbox, refused content); a 5xx to the greeting,
// EHLO or MAIL FROM, an authentication failure (530, 534, 535, 538), a
// certificate the TLS config does not trust, a server without STARTTLS
// when it is required or without AUTH PLAIN or LOGIN, and a login
// configured without TLS are channel-wide: every message would meet them.
// Network failures and timeouts are temporary; a send whose ctx ends
// returns an error wrapping the ctx's error. The whole conversation is
// bounded by ctx and Timeout. The server's reply is quoted with the
// addresses and login masked.
//
// A subject too long for one line is folded at its spaces, or sent as
// encoded-words when it has none to fold at, so that no header line
// passes 78 characters where it can be helped and never 998.
type Email struct {
	// Addr is the server's host:port.
	Addr string
	// TLS is the mode; "" is TLSStartTLS.
	TLS TLSMode
	// Username and Password log in when Username is set.
	Username string
	Password string
	// From is the sender, "Plaza Power <power@plaza.example>" or a bare
	// address.
	From string
	// Hello is the name given in EHLO; "" is "localhost".
	Hello string
	// TLSConfig, if set, is used for TLS (its ServerName defaults to the
	// host of Addr); nil trusts the system's roots.
	TLSConfig *tls.Config
	// Timeout and Now as for Webhook; Now also dates the message.
	Timeout time.Duration
	Now     func() time.Time
}

// Send implements Channel.
func (e *Email) Send(ctx context.Context, m Message) (Receipt, error) {
	const ch = "email"
	if strings.TrimSpace(m.To.Email) == "" {
		return Receipt{}, permanent(ch, ErrNoAddress)
	}
	to, err := mail.ParseAddress(m.To.Email)
	if err != nil {
		return Receipt{}, permanent(ch, fmt.Errorf("recipient %q: %w", m.To.Email, err))
	}
	if to.Name == "" {
		to.Name = m.To.Name
	}
	from, err := mail.ParseAddress(e.From)
	if err != nil {
		return Receipt{}, channelDown(ch, fmt.Errorf("from %q: %w", e.From, err))
	}
	mode := e.TLS
	if mode == "" {
		mode = TLSStartTLS
	}
	switch mode {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return Receipt{}, channelDown(ch, fmt.Errorf("tls %q: want none, starttls or tls", mode))
	}
	if mode == TLSNone && e.Username != "" {
		return Receipt{}, channelDown(ch, errors.New("a login is sent only over TLS: set tls to starttls or tls"))
	}
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return Receipt{}, channelDown(ch, fmt.Errorf("addr: %w", err))
	}
	id := messageID(m.ID, from.Address)
	msg := compose(m, from, to, id, clock(e.Now))

	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	secrets := []string{to.Address, e.Username, e.Password}
	// fail classifies a failure at stage; once the caller's ctx has ended,
	// whatever the conversation failed with, the answer is the ctx's error
	// (the connection's deadline was moved to make it fail).
	fail := func(stage smtpStage, err error) error {
		if perr := parent.Err(); perr != nil {
			return fmt.Errorf("%s: %w", ch, perr)
		}
		return smtpError(stage, err, secrets...)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return Receipt{}, fail(stageHello, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	if err := conn.SetDeadline(dl); err != nil {
		return Receipt{}, fail(stageHello, err)
	}
	// A cancelled ctx ends the conversation at once, not at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	cfg := e.tlsConfig(host)
	if mode == TLSImplicit {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return Receipt{}, fail(stageHello, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return Receipt{}, fail(stageHello, err)
	}
	hello := e.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return Receipt{}, fail(stageHello, err)
	}
	if mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return Receipt{}, channelDown(ch, errors.New("server does not offer STARTTLS"))
		}
		if err := c.StartTLS(cfg); err != nil {
			return Receipt{}, fail(stageHello, err)
		}
	}
	if e.Username != "" {
		ok, mechs := c.Extension("AUTH")
		var auth smtp.Auth
		switch {
		case ok && hasWord(mechs, "PLAIN"):
			auth = smtp.PlainAuth("", e.Username, e.Password, host)
		case ok && hasWord(mechs, "LOGIN"):
			auth = &loginAuth{user: e.Username, pass: e.Password}
		default:
			return Receipt{}, channelDown(ch, fmt.Errorf("server offers no AUTH PLAIN or LOGIN (%q)", brief(mechs)))
		}
		if err := c.Auth(auth); err != nil {
			return Receipt{}, fail(stageHello, err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return Receipt{}, fail(stageHello, err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return Receipt{}, fail(stageMessage, err)
	}
	w, err := c.Data()
	if err != nil {
		return Receipt{}, fail(stageMessage, err)
	}
	if _, err := w.Write(msg); err != nil {
		return Receipt{}, fail(stageMessage, err)
	}
	if err := w.Close(); err != nil {
		return Receipt{}, fail(stageMessage, err)
	}
	// The server took the message with its reply to DATA; a failed QUIT
	// changes nothing about that.
	_ = c.Quit()
	return Receipt{ProviderID: id}, nil
}

func (e *Email) tlsConfig(host string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.TLSConfig != nil {
		cfg = e.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// smtpStage is where in the conversation a failure came: before the
// message (the greeting, EHLO, STARTTLS, AUTH, MAIL FROM: the same for
// every message) or with it (RCPT, DATA).
type smtpStage int

const (
	stageHello smtpStage = iota
	stageMessage
)

// smtpError classifies a failure of the conversation: the server's reply
// code when it gave one, a certificate it cannot be trusted with as
// channel-wide, anything else (the network, a deadline) as temporary.
func smtpError(stage smtpStage, err error, secrets ...string) error {
	const ch = "email"
	var te *textproto.Error
	if errors.As(err, &te) {
		e := &Error{Channel: ch, Status: te.Code, Err: fmt.Errorf("%w: %s", ErrRefused, brief(te.Msg, secrets...))}
		switch {
		case te.Code < 500:
		case te.Code == 530 || te.Code == 534 || te.Code == 535 || te.Code == 538 || stage == stageHello:
			e.Scope = ScopeChannel
		default:
			e.Permanent = true
		}
		return e
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) {
		return channelDown(ch, err)
	}
	return temporary(ch, err)
}

func hasWord(list, w string) bool {
	for f := range strings.FieldsSeq(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// loginAuth is AUTH LOGIN (draft-murchison-sasl-login), which net/smtp
// lacks and many submission servers still offer alone. Like PlainAuth it
// refuses to send the password without TLS.
type loginAuth struct{ user, pass string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("unencrypted connection")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", fromServer)
}

// messageID makes a Message-ID from the delivery id: every attempt at the
// same message carries the same one. Bytes outside letters, digits, - and
// _ are written =XX, so that any id gives a valid dot-atom and two ids
// never give the same Message-ID.
func messageID(delivery, from string) string {
	var b strings.Builder
	b.WriteString("<mallgrid.")
	for i := 0; i < len(delivery); i++ {
		c := delivery[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	domain := "mallgrid.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = from[at+1:]
	}
	b.WriteString("@" + domain + ">")
	return b.String()
}

// compose writes the RFC 5322 message.
func compose(m Message, from, to *mail.Address, id string, now time.Time) []byte {
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("Date", now.Format(time.RFC1123Z))
	h("From", from.String())
	h("To", to.String())
	b.WriteString("Subject:" + subject(oneLine(m.Subject)) + "\r\n")
	h("Message-ID", id)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=UTF-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	if m.Lang != "" && headerSafe(m.Lang) {
		h("Content-Language", m.Lang)
	}
	h("Auto-Submitted", "auto-generated")
	h("X-Mallgrid-Delivery", mime.QEncoding.Encode("UTF-8", oneLine(m.ID)))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	_, _ = qp.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n"))) // a bytes.Buffer does not fail
	_ = qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

// subject is the Subject field's body, starting with its space. Lines
// should stay within 78 characters and must within 998 (RFC 5322 2.1.1):
// text that needs encoding is sent as encoded-words (up to 75 characters
// each), each on a line of its own; plain text is folded at its spaces;
// plain text that cannot be folded short enough is encoded too.
func subject(s string) string {
	const soft, hard = 78, 998
	enc := mime.BEncoding.Encode("UTF-8", s)
	if enc == s && len("Subject: "+s) > soft {
		var b strings.Builder
		line := len("Subject:")
		fits := true
		for i, w := range strings.Split(s, " ") {
			// A fold goes before a space, never before an empty word: a
			// line of white space alone is not allowed.
			if i > 0 && w != "" && line+1+len(w) > soft && line > 1 {
				b.WriteString("\r\n")
				line = 0
			}
			b.WriteString(" " + w)
			line += 1 + len(w)
			if line > hard {
				fits = false
			}
		}
		if fits {
			return b.String()
		}
		enc = encodeWords(s)
	}
	if strings.HasPrefix(enc, "=?") {
		return "\r\n " + strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
	}
	return " " + enc
}

// encodeWords writes s as base64 encoded-words of at most 75 characters,
// cut on rune boundaries (mime's encoder leaves plain ASCII as it is).
func encodeWords(s string) string {
	const chunk = 45 // 60 base64 characters + "=?UTF-8?B?" + "?=" = 72
	var words []string
	for len(s) > 0 {
		n := min(chunk, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, " ")
}
