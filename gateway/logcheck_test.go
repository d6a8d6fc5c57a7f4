package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/rs/zerolog"
)

// checkedLog is the gateway's log in tests: every line, at every level, is
// checked to be one JSON object without a key twice (a logger scoped with
// a field and a call adding it again wrote "bus" twice); lines at warn and
// above are shown with the test's output.
type checkedLog struct {
	t    *testing.T
	show zerolog.LevelWriter
}

func newCheckedLog(t *testing.T) zerolog.Logger {
	return zerolog.New(checkedLog{t: t, show: zerolog.LevelWriterAdapter{Writer: zerolog.NewTestWriter(t)}}).Level(zerolog.DebugLevel)
}

func (c checkedLog) Write(p []byte) (int, error) { return c.WriteLevel(zerolog.NoLevel, p) }

func (c checkedLog) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if err := uniqueKeys(p); err != nil {
		c.t.Errorf("log line %s: %v", bytes.TrimSpace(p), err)
	}
	if l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		return c.show.WriteLevel(l, p)
	}
	return len(p), nil
}

// uniqueKeys checks that line is a JSON object whose keys are each used once.
func uniqueKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("key %q twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

func TestUniqueKeys(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{`{"level":"warn","bus":"a","meter":"M-1","message":"x"}`, true},
		{`{"level":"warn","bus":"a","bus":"a","message":"x"}`, false},
		{`{"a":{"b":1,"b":2},"c":[1,1]}`, true}, // nested objects are the caller's own
		{`not json`, false},
	} {
		if err := uniqueKeys([]byte(c.line)); (err == nil) != c.ok {
			t.Errorf("uniqueKeys(%s) = %v; want ok %v", c.line, err, c.ok)
		}
	}
}
