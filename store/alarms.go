package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Alarm severities.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// Alarm states, as Alarm.State gives them.
const (
	AlarmActive       = "active"       // raised, nobody has acknowledged it yet
	AlarmAcknowledged = "acknowledged" // someone took it in hand; the condition still holds
	AlarmCleared      = "cleared"      // the condition is over, acknowledged or not
)

// KindAlarmAcknowledged is the kind of the event AckAlarm appends.
const KindAlarmAcknowledged = "alarm_acknowledged"

// Alarm is one episode of a condition the control room must act on: from
// the event that raised it to the one that cleared it, with who
// acknowledged it between.
type Alarm struct {
	ID       uint64 `json:"id"` // its own sequence, in the order raised
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Subject is what the alarm is about, as its kind names subjects: a
	// meter id, a bus name, or "" for the site. One alarm of a kind is open
	// per subject at a time.
	Subject string `json:"subject"`
	Meter   string `json:"meter,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	Bus     string `json:"bus,omitempty"`
	Text    string `json:"text"` // the raising event's sentence
	// Args are the raising event's (store.Event.Args): its sentence in
	// another language.
	Args        map[string]string `json:"args,omitempty"`
	Raised      time.Time         `json:"raised"`
	RaisedEvent uint64            `json:"raised_event"`
	Acked       time.Time         `json:"acknowledged,omitzero"`
	AckedBy     string            `json:"acknowledged_by,omitempty"`
	Note        string            `json:"note,omitempty"`
	AckEvent    uint64            `json:"ack_event,omitempty"` // the alarm_acknowledged event
	// Cleared and ClearedEvent are the time and id of the event that ended
	// the episode; zero while it is open.
	Cleared      time.Time `json:"cleared,omitzero"`
	ClearedEvent uint64    `json:"cleared_event,omitempty"`
}

// State is the alarm's state: cleared once its episode ended, else
// acknowledged once someone acknowledged it, else active.
func (a Alarm) State() string {
	switch {
	case a.ClearedEvent != 0:
		return AlarmCleared
	case !a.Acked.IsZero():
		return AlarmAcknowledged
	}
	return AlarmActive
}

// Open reports whether the alarm's episode has not ended.
func (a Alarm) Open() bool { return a.ClearedEvent == 0 }

// Subjects of alarm kinds.
const (
	subjectMeter    = "meter"
	subjectBus      = "bus"
	subjectSite     = "site"
	subjectDelivery = "delivery" // a notification: the event's args["delivery"]
	subjectChannel  = "channel"  // a notification channel: the event's args["via"]
)

// alarmKind is a row of the alarm table: an event kind that raises an
// alarm, and the event kinds that clear it.
type alarmKind struct {
	kind     string
	severity string
	subject  string // subjectMeter, subjectBus or subjectSite: which field of an event names it
	// clearedBy are the event kinds that end an episode of the same
	// subject. A kind with none ends at its acknowledgement.
	clearedBy []string
}

// alarmKinds is the table of alarm kinds. Issue 12's rule alarms
// (overload, voltage, …) are rows too: an event kind that raises, the one
// that says the condition is over.
var alarmKinds = []alarmKind{
	{kind: "meter_offline", severity: SeverityWarning, subject: subjectMeter, clearedBy: []string{"meter_online", "meter_removed"}},
	{kind: "bus_down", severity: SeverityCritical, subject: subjectBus, clearedBy: []string{"bus_up"}},
	// A relay that does not follow is cleared by the next command it
	// follows, whichever way.
	{kind: "relay_fault", severity: SeverityCritical, subject: subjectMeter, clearedBy: []string{"relay_opened", "relay_closed", "meter_removed"}},
	// Power flowing past an open relay is moot once the relay is closed:
	// the tenant's power is restored (the account's "restored" names the
	// tenant; relay_closed names the meter).
	{kind: "bypass_suspected", severity: SeverityCritical, subject: subjectMeter, clearedBy: []string{"relay_closed", "meter_removed"}},
	// The database lost from its path: the event is stored in the file
	// still open, which is the file restored from its rescued copy. No event
	// says it is over; the operator's acknowledgement after the restart
	// ends it.
	{kind: "database_unavailable", severity: SeverityCritical, subject: subjectSite},
	// A notice given up on after its attempts, or refused for good: one
	// alarm per delivery, over once an operator queues it again.
	{kind: KindNotifyDeadLetter, severity: SeverityWarning, subject: subjectDelivery, clearedBy: []string{KindNotifyResent}},
	// A channel every message fails on (credentials, balance, quota):
	// one alarm however many messages wait, over when one gets through.
	{kind: KindNotifyChannelDown, severity: SeverityCritical, subject: subjectChannel, clearedBy: []string{KindNotifyChannelUp}},
	// The uplink's outbox has waited for the group's broker for an hour:
	// over when what waits is minutes old again.
	{kind: KindUplinkBacklog, severity: SeverityWarning, subject: subjectSite, clearedBy: []string{KindUplinkBacklogCleared}},
}

// RuleAlarmKinds are the kinds gateway/alarm's rules raise, each cleared
// by its kind followed by "_cleared" (or the meter's removal); their
// severity is the rule's, carried by the raising event (Args["severity"]).
var RuleAlarmKinds = []string{"overload", "appliance", "fluctuation", "voltage", "phase_loss", "low_power_factor",
	"residual_current", "overtemperature"}

func init() {
	for _, k := range RuleAlarmKinds {
		alarmKinds = append(alarmKinds, alarmKind{kind: k, severity: SeverityWarning, subject: subjectMeter,
			clearedBy: []string{k + "_cleared", "meter_removed"}})
	}
}

// severityOf is the severity of the alarm e raises: the one it carries
// (a configured rule's), else its kind's.
func severityOf(k alarmKind, e Event) string {
	switch s := e.Args["severity"]; s {
	case SeverityCritical, SeverityWarning:
		return s
	}
	return k.severity
}

func alarmKindOf(kind string) (alarmKind, bool) {
	for _, k := range alarmKinds {
		if k.kind == kind {
			return k, true
		}
	}
	return alarmKind{}, false
}

// AlarmEffect says what e does to alarms: "raise" when its kind raises
// one, "clear" when its kind clears one, "" when neither.
func AlarmEffect(e Event) string {
	if _, ok := alarmKindOf(e.Kind); ok {
		return "raise"
	}
	for _, k := range alarmKinds {
		if slices.Contains(k.clearedBy, e.Kind) {
			return "clear"
		}
	}
	return ""
}

// AlarmSeverityOf returns the severity of the alarm e raises (its own,
// for a configured rule's), or "" when e raises none.
func AlarmSeverityOf(e Event) string {
	k, ok := alarmKindOf(e.Kind)
	if !ok {
		return ""
	}
	return severityOf(k, e)
}

// AlarmSeverity returns the severity of alarms of kind (a configured
// rule's may differ: AlarmSeverityOf), or "" when no event of that kind
// raises an alarm.
func AlarmSeverity(kind string) string {
	k, _ := alarmKindOf(kind)
	return k.severity
}

// AlarmSubject returns what an alarm raised or cleared by e is about, for
// alarms of kind alarmKind: e's meter, its bus, or "" for the site. A bus
// event stored before events named their bus is read from its sentence
// ("Bus a is down: …").
func AlarmSubject(alarmKind string, e Event) string {
	k, _ := alarmKindOf(alarmKind)
	switch k.subject {
	case subjectMeter:
		return e.Meter
	case subjectDelivery:
		return e.Args["delivery"]
	case subjectChannel:
		return e.Args["via"]
	case subjectBus:
		if e.Bus != "" {
			return e.Bus
		}
		if rest, ok := strings.CutPrefix(e.Text, "Bus "); ok {
			if i := strings.Index(rest, " is "); i > 0 {
				return rest[:i]
			}
		}
	}
	return ""
}

// ClearsAlarm reports whether event e, if stored after a's raising event,
// ends a's episode: an event of a kind that clears a's kind, about the same
// subject; or, for a kind no event clears, a's own acknowledgement.
func ClearsAlarm(e Event, a Alarm) bool {
	k, ok := alarmKindOf(a.Kind)
	if !ok {
		return false
	}
	if len(k.clearedBy) == 0 {
		return e.Kind == KindAlarmAcknowledged && e.ID == a.AckEvent
	}
	return slices.Contains(k.clearedBy, e.Kind) && AlarmSubject(a.Kind, e) == a.Subject
}

// openKey is an alarm's key in the index of open alarms: kind, a zero
// byte, subject.
func openKey(kind, subject string) []byte {
	return append(append([]byte(kind), 0), subject...)
}

// noteAlarms raises and clears alarms for e, stored in tx with its id: it
// is called for every event appendEvents stores, so an alarm changes in
// the transaction of the event (and the reading or action) that changed
// it. A raising event while its (kind, subject) is open is the same
// episode: no second alarm.
func noteAlarms(tx *bolt.Tx, e Event) error {
	all, open := tx.Bucket(bucketAlarms), tx.Bucket(bucketAlarmsOpen)
	for _, k := range alarmKinds {
		if !slices.Contains(k.clearedBy, e.Kind) {
			continue
		}
		key := openKey(k.kind, AlarmSubject(k.kind, e))
		raw := open.Get(key)
		if raw == nil {
			continue
		}
		a, err := getAlarm(all, raw)
		if err != nil {
			return err
		}
		a.Cleared, a.ClearedEvent = e.Time, e.ID
		if err := putAlarm(all, a); err != nil {
			return err
		}
		if err := open.Delete(key); err != nil {
			return err
		}
	}
	k, ok := alarmKindOf(e.Kind)
	if !ok {
		return nil
	}
	subject := AlarmSubject(e.Kind, e)
	key := openKey(e.Kind, subject)
	if open.Get(key) != nil {
		return nil
	}
	id, err := all.NextSequence()
	if err != nil {
		return err
	}
	bus := e.Bus
	if k.subject == subjectBus {
		bus = subject
	}
	a := Alarm{ID: id, Kind: e.Kind, Severity: severityOf(k, e), Subject: subject, Meter: e.Meter, Tenant: e.Tenant, Bus: bus,
		Text: e.Text, Args: e.Args, Raised: e.Time, RaisedEvent: e.ID}
	if err := putAlarm(all, a); err != nil {
		return err
	}
	return open.Put(key, binary.BigEndian.AppendUint64(nil, id))
}

// getAlarm reads the alarm whose id key is (8 bytes, big-endian).
func getAlarm(all *bolt.Bucket, key []byte) (Alarm, error) {
	var a Alarm
	raw := all.Get(key)
	if raw == nil {
		return a, fmt.Errorf("alarm %x: none stored: %w", key, ErrCorrupt)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("alarm %x: %w: %v", key, ErrCorrupt, err)
	}
	return a, nil
}

func putAlarm(all *bolt.Bucket, a Alarm) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return all.Put(binary.BigEndian.AppendUint64(nil, a.ID), v)
}

// deriveAlarms raises and clears alarms for every stored event, oldest
// first, as noteAlarms would have when each was stored: the upgrade to
// schema 5 keeps the episodes that were open (and the history of those
// that ended).
func deriveAlarms(tx *bolt.Tx) error {
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("event %x: %w: %v", k, ErrCorrupt, err)
		}
		if err := noteAlarms(tx, e); err != nil {
			return err
		}
	}
	return nil
}

// Alarms returns up to limit alarms, newest first: those in state (active,
// acknowledged or cleared), or of every state when state is "". An unknown
// state is an error.
func (db *DB) Alarms(state string, limit int) ([]Alarm, error) {
	var out []Alarm
	err := db.view(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketAlarms)
		switch state {
		case AlarmActive, AlarmAcknowledged:
			// Open alarms are few: read them through the index, not past
			// every alarm ever cleared.
			err := tx.Bucket(bucketAlarmsOpen).ForEach(func(_, id []byte) error {
				a, err := getAlarm(all, id)
				if err == nil && a.State() == state {
					out = append(out, a)
				}
				return err
			})
			if err != nil {
				return err
			}
			sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
			out = out[:min(len(out), limit)]
		case "", AlarmCleared:
			c := all.Cursor()
			for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
				var a Alarm
				if err := json.Unmarshal(v, &a); err != nil {
					return fmt.Errorf("alarm %x: %w: %v", k, ErrCorrupt, err)
				}
				if state == "" || a.State() == state {
					out = append(out, a)
				}
			}
		default:
			return fmt.Errorf("alarm state %q: want active, acknowledged or cleared", state)
		}
		return nil
	})
	return out, err
}

// Alarm returns the alarm with id; ErrNoAlarm when there is none.
func (db *DB) Alarm(id uint64) (Alarm, error) {
	var a Alarm
	err := db.view(func(tx *bolt.Tx) error {
		key := binary.BigEndian.AppendUint64(nil, id)
		if tx.Bucket(bucketAlarms).Get(key) == nil {
			return fmt.Errorf("alarm %d: %w", id, ErrNoAlarm)
		}
		var err error
		a, err = getAlarm(tx.Bucket(bucketAlarms), key)
		return err
	})
	return a, err
}

// EachAlarm calls fn with every alarm, oldest first, until fn returns an
// error, which it returns.
func (db *DB) EachAlarm(fn func(Alarm) error) error {
	return db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlarms).ForEach(func(k, v []byte) error {
			var a Alarm
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alarm %x: %w: %v", k, ErrCorrupt, err)
			}
			return fn(a)
		})
	})
}

// EachAlarmBefore calls fn for the alarms with ids below before (0: from
// the newest), newest first, until fn returns false or they run out: the
// alarms page scans back through them with its filters, a read
// transaction at a time of at most alarmScanChunk alarms, so that a long
// scan never holds one open (a commit growing the file waits for it).
func (db *DB) EachAlarmBefore(before uint64, fn func(Alarm) bool) error {
	for {
		var chunk []Alarm
		err := db.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketAlarms).Cursor()
			var k, v []byte
			if before == 0 {
				k, v = c.Last()
			} else if sk, _ := c.Seek(binary.BigEndian.AppendUint64(nil, before)); sk == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			for ; k != nil && len(chunk) < alarmScanChunk; k, v = c.Prev() {
				var a Alarm
				if err := json.Unmarshal(v, &a); err != nil {
					return fmt.Errorf("alarm %x: %w: %v", k, ErrCorrupt, err)
				}
				chunk = append(chunk, a)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, a := range chunk {
			if !fn(a) {
				return nil
			}
		}
		if len(chunk) < alarmScanChunk {
			return nil
		}
		before = chunk[len(chunk)-1].ID
	}
}

// alarmScanChunk is how many alarms EachAlarmBefore reads in one
// transaction.
const alarmScanChunk = 2000

// AlarmKinds returns every kind of event that raises an alarm.
func AlarmKinds() []string {
	out := make([]string, len(alarmKinds))
	for i, k := range alarmKinds {
		out[i] = k.kind
	}
	return out
}

// AlarmKey names an open episode: an alarm kind and its subject.
type AlarmKey struct{ Kind, Subject string }

// OpenAlarmIndex returns the index of open alarms: each open episode's
// alarm id.
func (db *DB) OpenAlarmIndex() (map[AlarmKey]uint64, error) {
	out := make(map[AlarmKey]uint64)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlarmsOpen).ForEach(func(k, v []byte) error {
			kind, subject, ok := bytes.Cut(k, []byte{0})
			if !ok || len(v) != 8 {
				return fmt.Errorf("open alarm %q: %w", k, ErrCorrupt)
			}
			out[AlarmKey{string(kind), string(subject)}] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return out, err
}

// AckAlarm records that actor acknowledged alarm id at at, with a note
// saying what was done or found, and appends an alarm_acknowledged event in
// the same durable transaction. It returns the alarm as it now is and the
// event stored. An alarm already acknowledged is ErrAlarmAcked and changes
// nothing; an unknown id is ErrNoAlarm. A cleared alarm nobody acknowledged
// may be: it records who looked at it, and stays cleared. A kind no event
// clears (database_unavailable) is cleared by its acknowledgement.
func (db *DB) AckAlarm(id uint64, note, actor string, at time.Time) (Alarm, Event, error) {
	if actor == "" || strings.TrimSpace(note) == "" {
		return Alarm{}, Event{}, errors.New("acknowledge alarm: who and a note are both required")
	}
	var (
		a  Alarm
		ev Event
	)
	err := db.update(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketAlarms)
		key := binary.BigEndian.AppendUint64(nil, id)
		if all.Get(key) == nil {
			return fmt.Errorf("alarm %d: %w", id, ErrNoAlarm)
		}
		var err error
		if a, err = getAlarm(all, key); err != nil {
			return err
		}
		if !a.Acked.IsZero() {
			return fmt.Errorf("alarm %d: %w by %s at %s", id, ErrAlarmAcked, a.AckedBy, a.Acked.Format(time.RFC3339))
		}
		about := a.Kind
		// The kind's own sentence names the alarm's subject; form site
		// one about the whole site.
		args := map[string]string{"actor": actor, "alarm": strconv.FormatUint(id, 10), "kind": a.Kind, "note": note, "form": "site"}
		if a.Subject != "" {
			about += " of " + a.Subject
			args["subject"] = a.Subject
			delete(args, "form")
		}
		evs, err := db.appendEvents(tx, []Event{{Time: at, Kind: KindAlarmAcknowledged, Meter: a.Meter, Tenant: a.Tenant, Bus: a.Bus,
			Text: fmt.Sprintf("%s acknowledged alarm %d (%s): %s", actor, id, about, note), Args: args}})
		if err != nil {
			return err
		}
		ev = evs[0]
		a.Acked, a.AckedBy, a.Note, a.AckEvent = at, actor, note, ev.ID
		if k, _ := alarmKindOf(a.Kind); len(k.clearedBy) == 0 && a.Open() {
			a.Cleared, a.ClearedEvent = at, ev.ID
			if err := tx.Bucket(bucketAlarmsOpen).Delete(openKey(a.Kind, a.Subject)); err != nil {
				return err
			}
		}
		return putAlarm(all, a)
	})
	if err != nil {
		return Alarm{}, Event{}, err
	}
	return a, ev, nil
}
