package compere

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Command is an MQTT message the gateway publishes to a meter.
type Command struct {
	Topic   string
	Payload []byte
}

// OprIDLen is the length of an operation id: the meter ignores a command
// whose oprid is not 32 characters (manual §4).
const OprIDLen = 32

// NewOprID makes an operation id of 32 hexadecimal digits from 16 bytes of
// rand (crypto/rand.Reader in the gateway), so that replies can be matched
// to their command.
func NewOprID(rand io.Reader) (string, error) {
	var b [OprIDLen / 2]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("compere: operation id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// commandTopic is prefix + the id's last 8 characters.
func commandTopic(prefix, id, oprid string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	if len(oprid) != OprIDLen {
		return "", fmt.Errorf("%w: oprid %q is %d characters, want %d", ErrCommand, oprid, len(oprid), OprIDLen)
	}
	// Letters and digits only, so the payload needs no escaping and the
	// reply's oprid compares byte for byte.
	for _, c := range oprid {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", fmt.Errorf("%w: oprid %q: letters and digits only", ErrCommand, oprid)
		}
	}
	return prefix + id[IDLen-8:], nil
}

// RelayCommand switches relay output (1 for do1) of meter id — closed is
// power on — by MQTT_TELECTRL_<last 8 characters of id>:
// {"do1":"1","oprid":"…"}. The meter answers MQTT_TELECTRL_REP with the
// same oprid. An output the model lacks is ErrCommand.
func (m Model) RelayCommand(id string, output int, closed bool, oprid string) (Command, error) {
	topic, err := commandTopic("MQTT_TELECTRL_", id, oprid)
	if err != nil {
		return Command{}, err
	}
	if output < 1 || output > m.Outputs {
		return Command{}, fmt.Errorf("%w: %s has outputs do1..do%d, not do%d", ErrCommand, m.Name, m.Outputs, output)
	}
	v := "0"
	if closed {
		v = "1"
	}
	return Command{topic, []byte(`{"do` + strconv.Itoa(output) + `":"` + v + `","oprid":"` + oprid + `"}`)}, nil
}

// SetTime sets meter id's clock to t, written in t's location (the
// meters' zone: the caller passes t.In(loc)), by MQTT_SETTIME_<X>. The
// meter answers MQTT_METER_TIME_REP.
func SetTime(id string, t time.Time, oprid string) (Command, error) {
	topic, err := commandTopic("MQTT_SETTIME_", id, oprid)
	if err != nil {
		return Command{}, err
	}
	if t.Year() < MinClockYear || t.Year() > 9999 {
		return Command{}, fmt.Errorf("%w: time %s", ErrCommand, t)
	}
	return Command{topic, []byte(`{"oprid":"` + oprid + `","time":"` + t.Format("20060102150405") + `"}`)}, nil
}

// Level is which of a meter's two upload intervals a command sets.
type Level int

// Upload levels (manual §3.11).
const (
	// LevelRealTime is MQTT_RT_DATA's interval, set in seconds
	// ("Cmd":"0000").
	LevelRealTime Level = iota
	// LevelEnergy is MQTT_ENY_NOW's interval, set in minutes
	// ("Cmd":"0001").
	LevelEnergy
)

// Intervals the meters take, per level (manual §3.1.2, §3.2, §3.11).
var (
	RealTimeIntervals = []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour}
	EnergyIntervals   = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour, 24 * time.Hour}
)

// SetUploadInterval sets how often meter id uploads level's messages, by
// MQTT_COMMOD_SET_<X>: {"oprid":"…","Cmd":"0000","value":"30","types":"1"}.
// An interval the meter cannot take (RealTimeIntervals, EnergyIntervals) is
// ErrCommand. The meter answers MQTT_COMMOD_SET_REP.
func SetUploadInterval(id string, level Level, d time.Duration, oprid string) (Command, error) {
	topic, err := commandTopic("MQTT_COMMOD_SET_", id, oprid)
	if err != nil {
		return Command{}, err
	}
	var cmd, value string
	switch level {
	case LevelRealTime:
		if !slices.Contains(RealTimeIntervals, d) {
			return Command{}, fmt.Errorf("%w: real-time upload every %s: want one of %v", ErrCommand, d, RealTimeIntervals)
		}
		cmd, value = "0000", strconv.FormatInt(int64(d/time.Second), 10)
	case LevelEnergy:
		if !slices.Contains(EnergyIntervals, d) {
			return Command{}, fmt.Errorf("%w: energy upload every %s: want one of %v", ErrCommand, d, EnergyIntervals)
		}
		cmd, value = "0001", strconv.FormatInt(int64(d/time.Minute), 10)
	default:
		return Command{}, fmt.Errorf("%w: upload level %d", ErrCommand, level)
	}
	return Command{topic, []byte(`{"oprid":"` + oprid + `","Cmd":"` + cmd + `","value":"` + value + `","types":"1"}`)}, nil
}
