package compere

import (
	"fmt"
	"slices"
	"strconv"
)

// Model is what a Compere MQTT meter model reports and switches (manual
// §2, §3 and §4.5).
type Model struct {
	Name   string
	Phases int // 1 or 3
	// Outputs is how many relay outputs (do1..) a meter — one circuit of
	// a KPM312 — switches.
	Outputs int
	// Circuits is how many meters one device is: a KPM312 measures four
	// circuits, each with its own id, the first one's plus 0..3 (CircuitIDs),
	// each publishing its own messages and taking its own relay commands.
	// Each circuit is configured as a meter of its own.
	Circuits int
	// Split: the model may split a message over several packets (KPM37
	// and KPM312 over WiFi); the others send one packet a message.
	Split bool
	// Publishes are the topics the model sends beyond MQTT_RT_DATA and
	// MQTT_ENY_NOW and the command replies.
	Publishes []Topic
	// Residual and Temperatures: the model can carry the optional
	// residual current (ig) and terminal temperatures (ta tb tc tn).
	Residual, Temperatures bool
}

// The models. KPM31 stands for the KPM31B and KPM31C, which have the relay;
// a KPM31A has none and leaves relay commands unanswered.
var models = []Model{
	{Name: "kpm31", Phases: 1, Outputs: 1, Circuits: 1, Publishes: []Topic{TopicTeleInd}},
	{Name: "kpm33b", Phases: 3, Outputs: 1, Circuits: 1},
	{Name: "kpm37", Phases: 3, Outputs: 2, Circuits: 1, Split: true, Publishes: []Topic{TopicDayData, TopicTeleInd}, Residual: true, Temperatures: true},
	{Name: "kpm312", Phases: 3, Outputs: 1, Circuits: 4, Split: true, Publishes: []Topic{TopicDayData, TopicTeleInd}, Residual: true, Temperatures: true},
}

// ModelByName returns the model of that name (kpm31, kpm33b, kpm37,
// kpm312), and whether there is one.
func ModelByName(name string) (Model, bool) {
	i := slices.IndexFunc(models, func(m Model) bool { return m.Name == name })
	if i < 0 {
		return Model{}, false
	}
	m := models[i]
	m.Publishes = slices.Clone(m.Publishes)
	return m, true
}

// ModelNames returns the names ModelByName knows.
func ModelNames() []string {
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.Name
	}
	return names
}

// CircuitIDs returns the ids of a device's circuits given its first one's:
// a KPM312 set to 3120208700001 is 3120208700001..3120208700004 (manual
// §2). It fails with ErrID for an id that is not IDLen characters or does
// not end in enough digits to count on.
func (m Model) CircuitIDs(first string) ([]string, error) {
	if err := checkID(first); err != nil {
		return nil, err
	}
	ids := []string{first}
	// The serial is the id's last four digits (§6.1: 0001..9999).
	serial, err := strconv.Atoi(first[IDLen-4:])
	if err != nil || !allDigits(first[IDLen-4:]) {
		return nil, fmt.Errorf("%w: %q does not end in a four-digit serial", ErrID, first)
	}
	for c := 1; c < m.Circuits; c++ {
		if serial+c > 9999 {
			return nil, fmt.Errorf("%w: %q: circuit %d would be past serial 9999", ErrID, first, c+1)
		}
		ids = append(ids, fmt.Sprintf("%s%04d", first[:IDLen-4], serial+c))
	}
	return ids, nil
}

func checkID(id string) error {
	if len(id) != IDLen {
		return fmt.Errorf("%w: id %q is %d characters, want %d", ErrID, id, len(id), IDLen)
	}
	return nil
}
