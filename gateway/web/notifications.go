package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Notifications is what the notification endpoints read and change; the
// gateway implements it over the store's outbox.
type Notifications interface {
	// List returns deliveries newest first: in one state when state is not
	// empty (pending, delivered, dead), else every state; at most limit.
	List(state string, limit int) ([]NotificationView, error)
	// Resend queues a delivered or dead notification again under the same
	// delivery id: ErrNotFound for an unknown id, ErrConflict for one
	// still pending.
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
	ID      string `json:"id"` // the delivery id, the same on every attempt
	Kind    string `json:"kind"`
	State   string `json:"state"`   // pending | delivered | dead
	Channel string `json:"channel"` // the configured channel's name
	To      string `json:"to"`      // tenant | staff
	Tenant  string `json:"tenant,omitempty"`
	// Recipient is the person's name; Phone and Email are masked for
	// viewers.
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

// parseNotificationQuery reads ?state= and ?limit= (1..1000, default 200).
func parseNotificationQuery(r *http.Request) (state string, limit int, err error) {
	q := r.URL.Query()
	state = q.Get("state")
	switch state {
	case "", NotificationPending, NotificationDelivered, NotificationDead:
	default:
		return "", 0, fmt.Errorf("state %q: want pending, delivered or dead", state)
	}
	limit = 200
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return "", 0, fmt.Errorf("limit %q: want 1..1000", v)
		}
		limit = n
	}
	return state, limit, nil
}

// notificationsFor lists deliveries as the reader may see them: a
// viewer's have the phone and e-mail masked.
func (s *Server) notificationsFor(r *http.Request, state string, limit int) ([]NotificationView, error) {
	list, err := s.notifications.List(state, limit)
	if err != nil {
		return nil, err
	}
	if principalOf(r).Role == RoleViewer {
		for i := range list {
			list[i].Phone, list[i].Email = maskPhone(list[i].Phone), maskEmail(list[i].Email)
		}
	}
	if list == nil {
		list = []NotificationView{}
	}
	return list, nil
}

// apiNotifications is GET /api/v1/notifications?state=pending|delivered|dead&limit=N.
func (s *Server) apiNotifications(w http.ResponseWriter, r *http.Request, _ string) {
	state, limit, err := parseNotificationQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, err := s.notificationsFor(r, state, limit)
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
}

func (s *Server) notificationsPage(w http.ResponseWriter, r *http.Request) {
	state, _, err := parseNotificationQuery(r)
	if err != nil {
		state = ""
	}
	list, err := s.notificationsFor(r, state, 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, r, "notifications", "nav.notifications", notificationsView{State: state,
		States: []string{NotificationPending, NotificationDelivered, NotificationDead}, Notifications: list})
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
