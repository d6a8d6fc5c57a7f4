package uplink

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// resultSchema is docs/uplink/command_result.schema.json, formats
// asserted.
func resultSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join("..", "..", "docs", "uplink", "command_result.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validResult(s *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// Results the gateway makes are valid by the published schema (the
// vectors' are checked in TestDownlinkVectors); results that break the
// format are not, so the schema is not one that takes anything.
func TestCommandResultSchema(t *testing.T) {
	s := resultSchema(t)
	for _, ok := range []string{
		`{"id":"c-2","status":"ok","ref":"P-1","invoice_status":"issued"}`,
		`{"id":"c-1","status":"ok","entry":7,"receipt":"R00000007","balance":"-3.20","existing":true,"duplicate":true}`,
	} {
		if err := validResult(s, []byte(ok)); err != nil {
			t.Errorf("%s: %v; want valid", ok, err)
		}
	}
	for _, bad := range []string{
		`{"id":"c-1","status":"ok","entry":1,"receipt":"R1","balance":"1.00"}`,               // no existing
		`{"id":"c-1","status":"refused","reason":"expired"}`,                                 // no detail
		`{"id":"c-1","status":"refused","reason":"stale","detail":"x"}`,                      // unknown reason
		`{"id":"","status":"refused","reason":"bad_command","detail":"x"}`,                   // no id, no hash
		`{"id":"c-1","status":"ok","entry":1,"receipt":"R1","balance":"1","existing":false}`, // balance not to the fen
		`{"id":"c-1","status":"refused","reason":"expired","detail":"x","entry":1}`,          // a refusal with an entry
		`{"id":"c-1","status":"ok","ref":"P","invoice_status":"issued","duplicate":false}`,   // duplicate false
		`{"id":"c-1","status":"ok","ref":"P","invoice_status":"issued","sha":"x"}`,           // unknown field
	} {
		if err := validResult(s, []byte(bad)); err == nil {
			t.Errorf("%s: valid; want refused by the schema", bad)
		}
	}
}
