package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Notifications is what the notification endpoints read and change; the
// gateway implements it over the store's outbox.
type Notifications interface {
	// List returns deliveries newest first: in one state when state is not
	// empty (pending, delivered, dead), else every state; at most limit,
	// older than the one numbered before (Seq) when before is not 0.
	List(state string, before uint64, limit int) ([]NotificationView, error)
	// Resend queues a dead notification again under its delivery id, and
	// a delivered one as a new delivery (its receiver would drop the id it
	// has seen): ErrNotFound for an unknown id, ErrConflict for one still
	// pending.
	Resend(ctx context.Context, id, actor string) (NotificationView, error)
}

// Notification states, as the API names them.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationDead      = "dead"
)

// NotificationView is one notice to one recipient over one channel.
type NotificationView struct {
	ID string `json:"id"` // the delivery id, the same on every attempt
	// Seq numbers deliveries as they were queued: ?before= pages by it.
	Seq uint64 `json:"seq"`
	// Of is, for an operator's resend of a delivered notice, the delivery
	// it repeats.
	Of      string `json:"of,omitempty"`
	Kind    string `json:"kind"`
	State   string `json:"state"`   // pending | delivered | dead
	Channel string `json:"channel"` // the configured channel's name
	To      string `json:"to"`      // tenant | staff
	Tenant  string `json:"tenant,omitempty"`
	// Recipient is the person's name; Phone and Email are masked for
	// viewers, and so are the addresses in LastError.
	Recipient string    `json:"recipient"`
	Phone     string    `json:"phone,omitempty"`
	Email     string    `json:"email,omitempty"`
	Lang      string    `json:"lang"`
	Attempts  int       `json:"attempts"`
	Created   time.Time `json:"created"`
	// Due is when a pending one is sent next.
	Due         *time.Time `json:"due,omitempty"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Done        *time.Time `json:"done,omitempty"`
	Resends     int        `json:"resends,omitempty"`
	// Event is the id of the event it tells of; Text and Args that event's
	// sentence and facts.
	Event uint64            `json:"event"`
	Text  string            `json:"text"`
	Args  map[string]string `json:"args,omitempty"`
}

func (s *Server) notificationRoutes() {
	s.handle("GET /api/v1/notifications", s.read(s.apiNotifications))
	s.handle("POST /api/v1/notifications/{id}/resend", s.write(s.apiResend))
	s.handle("GET /notifications", http.HandlerFunc(s.notificationsPage))
}

// notificationQuery is what GET /api/v1/notifications and the page ask.
type notificationQuery struct {
	state  string
	before uint64 // 0: from the newest
	limit  int
}

// parseNotificationQuery reads ?state=, ?before= (a seq) and ?limit=
// (1..1000, default 200).
func parseNotificationQuery(r *http.Request) (notificationQuery, error) {
	q := r.URL.Query()
	nq := notificationQuery{state: q.Get("state"), limit: 200}
	switch nq.state {
	case "", NotificationPending, NotificationDelivered, NotificationDead:
	default:
		return nq, fmt.Errorf("state %q: want pending, delivered or dead", nq.state)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 {
			return nq, fmt.Errorf("before %q: want a notification's seq, 1 or more", v)
		}
		nq.before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nq, fmt.Errorf("limit %q: want 1..1000", v)
		}
		nq.limit = n
	}
	return nq, nil
}

// notificationsFor lists deliveries as the reader may see them: a
// viewer's have the phone and e-mail masked, in the last error too (a
// service's refusal often quotes the number or the address).
func (s *Server) notificationsFor(r *http.Request, nq notificationQuery) ([]NotificationView, error) {
	list, err := s.notifications.List(nq.state, nq.before, nq.limit)
	if err != nil {
		return nil, err
	}
	if principalOf(r).Role == RoleViewer {
		for i := range list {
			list[i].Phone, list[i].Email = maskPhone(list[i].Phone), maskEmail(list[i].Email)
			list[i].LastError = maskAddresses(list[i].LastError)
		}
	}
	if list == nil {
		list = []NotificationView{}
	}
	return list, nil
}

// apiNotifications is GET /api/v1/notifications?state=pending|delivered|dead&before=SEQ&limit=N.
func (s *Server) apiNotifications(w http.ResponseWriter, r *http.Request, _ string) {
	nq, err := parseNotificationQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, err := s.notificationsFor(r, nq)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// apiResend is POST /api/v1/notifications/{id}/resend (no body needed).
func (s *Server) apiResend(w http.ResponseWriter, r *http.Request, actor string) {
	id := r.PathValue("id")
	noteAudit(r, func(n *auditNote) { n.Target = "notification " + id })
	if id == "" || len(id) > 128 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("notification id %q: want 1..128 characters", id))
		return
	}
	v, err := s.notifications.Resend(r.Context(), id, actor)
	if err != nil {
		s.fail(w, err)
		return
	}
	noteAudit(r, func(n *auditNote) { n.Before, n.After = "delivered or dead", "pending" })
	writeJSON(w, http.StatusOK, v)
}

// notificationsView is the notifications page.
type notificationsView struct {
	State         string
	States        []string
	Notifications []NotificationView
	// Older is the ?before= of the next page; 0 when this page is the last.
	Older uint64
}

// notificationsPage shows 200 notifications a page, newest first.
func (s *Server) notificationsPage(w http.ResponseWriter, r *http.Request) {
	nq, err := parseNotificationQuery(r)
	if err != nil {
		nq = notificationQuery{}
	}
	nq.limit = 200
	list, err := s.notificationsFor(r, nq)
	if err != nil {
		s.fail(w, err)
		return
	}
	v := notificationsView{State: nq.state, States: []string{NotificationPending, NotificationDelivered, NotificationDead}, Notifications: list}
	if len(list) == nq.limit {
		v.Older = list[len(list)-1].Seq
	}
	s.render(w, r, "notifications", "nav.notifications", v)
}

var (
	emailText = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+`)
	// phoneText is a run of 7 to 15 digits, single spaces, dashes or dots
	// between them allowed, an optional + first: a phone number however
	// written. maskAddresses takes only runs that stand alone.
	phoneText = regexp.MustCompile(`\+?[0-9](?:[ .-]?[0-9]){6,14}`)
	dateText  = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}`)
)

// maskAddresses masks every e-mail address and phone number in text. A
// digit run joined to a word, a dash or a colon on either side (an id like
// 17-1234567-0, a time like 10:00:00) or shaped as a date is no phone
// number and stays.
func maskAddresses(text string) string {
	text = emailText.ReplaceAllStringFunc(text, maskEmail)
	var b strings.Builder
	last := 0
	for _, m := range phoneText.FindAllStringIndex(text, -1) {
		run := text[m[0]:m[1]]
		if joined(text, m[0]-1) || joined(text, m[1]) || dateText.MatchString(run) {
			continue
		}
		b.WriteString(text[last:m[0]])
		b.WriteString(maskPhone(run))
		last = m[1]
	}
	b.WriteString(text[last:])
	return b.String()
}

// joined reports whether text's byte at i ties a digit run to what is
// beside it: a letter, digit, '_', '-', ':' or '+', or a dot between two
// characters (a sentence's full stop after a number is none).
func joined(text string, i int) bool {
	if i < 0 || i >= len(text) {
		return false
	}
	switch c := text[i]; {
	case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '-', c == ':', c == '+':
		return true
	case c == '.':
		return i > 0 && i+1 < len(text) && text[i-1] != ' ' && text[i+1] != ' '
	}
	return false
}

// maskPhone keeps a number's last four digits: enough to tell two
// contacts apart, not to call them.
func maskPhone(p string) string {
	if p == "" {
		return ""
	}
	var digits []rune
	for _, c := range p {
		if c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) <= 4 {
		return "***"
	}
	return "***" + string(digits[len(digits)-4:])
}

// maskEmail keeps the first letter of the mailbox and the domain.
func maskEmail(e string) string {
	user, domain, ok := strings.Cut(e, "@")
	if !ok || user == "" {
		if e == "" {
			return ""
		}
		return "***"
	}
	return string([]rune(user)[:1]) + "***@" + domain
}
