package yamlcheck

import (
	"fmt"
	"math"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// decodeScalar sets v from the scalar n and returns "" or what is wrong.
// Values from outside the file go through here too, as plain scalars.
func decodeScalar(n *yaml.Node, v reflect.Value) string {
	if n.Kind != yaml.ScalarNode {
		return fmt.Sprintf("want %s, got %s", want(v.Type()), got(n))
	}
	tag := n.ShortTag()
	bad := func() string { return fmt.Sprintf("want %s, got %s", want(v.Type()), got(n)) }
	switch {
	case v.Type() == durationType:
		// A bare 0 is fine; any other number needs a unit, since 500 could
		// be milliseconds or seconds.
		if tag != "!!str" && tag != "!!int" {
			return bad()
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return bad()
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		// Any scalar is text: a tenant id of 101 is "101".
		v.SetString(n.Value)
	case v.Kind() == reflect.Int, v.Kind() == reflect.Int64:
		// yaml.v3 would truncate 1.5 into an int; only integers are taken.
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) ||
			(v.Kind() == reflect.Int && (i < math.MinInt32 || i > math.MaxInt32)) {
			return bad()
		}
		v.SetInt(i)
	case v.Kind() == reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			return bad()
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Decode(&b) != nil {
			return bad()
		}
		v.SetBool(b)
	default:
		return fmt.Sprintf("cannot decode into %s", v.Type()) // a schema bug, not a file problem
	}
	return ""
}

// want describes what a value of type t looks like in YAML.
func want(t reflect.Type) string {
	if t == durationType {
		return "a duration like 500ms, 5s or 1m"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a mapping"
	case reflect.Struct, reflect.Pointer:
		return "a mapping of keys"
	}
	return t.String()
}
