package uplink

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// fieldNames is what a JSON object may hold: each name the decoder knows,
// exactly as spelled, with the names of its own object when its value is
// one (nil: not an object).
type fieldNames map[string]fieldNames

// namesOf lists the JSON names of struct type t, embedded structs' too;
// a field of struct type (or pointer to one) that does not decode itself
// (time.Time does) brings its own names.
func namesOf(t reflect.Type) fieldNames {
	out := fieldNames{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			for k, v := range namesOf(f.Type) {
				out[k] = v
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		var sub fieldNames
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeFor[json.Unmarshaler]()) &&
			!reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			sub = namesOf(ft)
		}
		out[name] = sub
	}
	return out
}

// The names each message may hold, from the types they decode into.
var (
	envelopeNames      = namesOf(reflect.TypeFor[downEnvelope]())
	topUpNames         = namesOf(reflect.TypeFor[topUpCommand]())
	invoiceStatusNames = namesOf(reflect.TypeFor[invoiceStatusCommand]())
)

// exactNames reads the JSON object in data token by token and refuses a
// name that is not exactly one of want's (in nested objects, theirs) or
// that comes twice in one object. encoding/json would take "Amount" or
// "AMOUNT" for "amount" and let the last of two "amount"s win: the
// command decoded would not be the command signed and read by people.
func exactNames(data []byte, want fieldNames) error {
	d := json.NewDecoder(bytes.NewReader(data))
	return walkNames(d, want, "")
}

func walkNames(d *json.Decoder, want fieldNames, path string) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := make(map[string]bool, len(want))
		for d.More() {
			t, err := d.Token()
			if err != nil {
				return err
			}
			name, _ := t.(string)
			if seen[name] {
				return fmt.Errorf("field %q given twice", clip(path+name))
			}
			seen[name] = true
			sub, ok := want[name]
			if !ok {
				return fmt.Errorf("unknown field %q", clip(path+name))
			}
			if err := walkNames(d, sub, path+name+"."); err != nil {
				return err
			}
		}
		_, err = d.Token() // '}'
		return err
	case json.Delim('['):
		for d.More() {
			if err := walkNames(d, nil, path); err != nil {
				return err
			}
		}
		_, err = d.Token() // ']'
		return err
	}
	return nil
}
