package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
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
// An SMTP reply 4xx is temporary and 5xx permanent (a refused mailbox,
// refused credentials); a certificate the TLS config does not trust, a
// server without STARTTLS when it is required, and a login configured
// without TLS are permanent; network failures and timeouts are temporary.
// The whole conversation is bounded by ctx and Timeout.
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
		return Receipt{}, permanent(ch, fmt.Errorf("from %q: %w", e.From, err))
	}
	mode := e.TLS
	if mode == "" {
		mode = TLSStartTLS
	}
	switch mode {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return Receipt{}, permanent(ch, fmt.Errorf("tls %q: want none, starttls or tls", mode))
	}
	if mode == TLSNone && e.Username != "" {
		return Receipt{}, permanent(ch, errors.New("a login is sent only over TLS: set tls to starttls or tls"))
	}
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return Receipt{}, permanent(ch, fmt.Errorf("addr: %w", err))
	}
	id := messageID(m.ID, from.Address)
	msg := compose(m, from, to, id, clock(e.Now))

	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return Receipt{}, temporary(ch, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	if err := conn.SetDeadline(dl); err != nil {
		return Receipt{}, temporary(ch, err)
	}
	// A cancelled ctx ends the conversation at once, not at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	cfg := e.tlsConfig(host)
	if mode == TLSImplicit {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return Receipt{}, smtpError(err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return Receipt{}, smtpError(err)
	}
	hello := e.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return Receipt{}, smtpError(err)
	}
	if mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return Receipt{}, permanent(ch, errors.New("server does not offer STARTTLS"))
		}
		if err := c.StartTLS(cfg); err != nil {
			return Receipt{}, smtpError(err)
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
			return Receipt{}, permanent(ch, fmt.Errorf("server offers no AUTH PLAIN or LOGIN (%q)", mechs))
		}
		if err := c.Auth(auth); err != nil {
			return Receipt{}, smtpError(err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return Receipt{}, smtpError(err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return Receipt{}, smtpError(err)
	}
	w, err := c.Data()
	if err != nil {
		return Receipt{}, smtpError(err)
	}
	if _, err := w.Write(msg); err != nil {
		return Receipt{}, smtpError(err)
	}
	if err := w.Close(); err != nil {
		return Receipt{}, smtpError(err)
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

// smtpError classifies a failure of the conversation: the server's reply
// code when it gave one, a certificate it cannot be trusted with as
// permanent, anything else (the network, a deadline) as temporary.
func smtpError(err error) error {
	const ch = "email"
	var te *textproto.Error
	if errors.As(err, &te) {
		return &Error{Channel: ch, Status: te.Code, Permanent: te.Code >= 500, Err: fmt.Errorf("%w: %s", ErrRefused, te.Msg)}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) {
		return permanent(ch, err)
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
	// Each encoded-word on a line of its own: a word is up to 75
	// characters, and lines should stay within 78 (RFC 5322 2.1.1).
	subj := mime.BEncoding.Encode("UTF-8", oneLine(m.Subject))
	if strings.HasPrefix(subj, "=?") {
		subj = "\r\n " + strings.ReplaceAll(subj, "?= =?", "?=\r\n =?")
	} else {
		subj = " " + subj
	}
	b.WriteString("Subject:" + subj + "\r\n")
	h("Message-ID", id)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=UTF-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	if m.Lang != "" && !strings.ContainsAny(m.Lang, "\r\n") {
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
