package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder fills Go values from a yaml.Node tree, strictly and without
// stopping at the first problem: every unknown key, duplicate key and value
// of the wrong type becomes a problem with its line, and decoding goes on
// with the next key. yaml.v3's own decoder would do the strict part
// (KnownFields) but stops at the first unknown key and loses the key path.
//
// It records in the report, for each key path it meets, the line of the key
// and whether it held a value, so that validation can point at lines and
// tell "absent" from "zero".
type decoder struct {
	r         *report
	budget    int  // nodes left to visit
	exhausted bool // the budget ran out; reported once
}

// Limits against files that alias themselves: a merge key that includes
// its own mapping recurses forever, and nested aliases multiply work.
const (
	maxDepth = 32
	maxNodes = 1 << 20
)

var durationType = reflect.TypeOf(time.Duration(0))

// defaulter is a list element that has defaults for the keys it may leave out.
type defaulter interface{ setDefaults() }

func newDecoder(r *report) *decoder { return &decoder{r: r, budget: maxNodes} }

// value decodes n into v, whose key path is path.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value, depth int) {
	if !d.enter(n, path, depth) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	delete(d.r.bad, path) // an explicit key overrides a merged one
	if isNull(n) {
		return // absent: the default stays
	}
	d.r.set[path] = true
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			nv := reflect.New(v.Type().Elem())
			setDefaults(nv)
			v.Set(nv)
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == durationType:
		d.scalar(n, path, v)
	case v.Kind() == reflect.Struct:
		d.mapping(n, path, v, depth)
	case v.Kind() == reflect.Slice:
		d.sequence(n, path, v, depth)
	default:
		d.scalar(n, path, v)
	}
}

func (d *decoder) enter(n *yaml.Node, path string, depth int) bool {
	d.budget--
	if depth <= maxDepth && d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.at(n.Line, path, "too deeply nested or too many aliases")
	}
	return false
}

// at records a problem at an explicit line: for keys that have no key path
// of their own (unknown, duplicate) or values that failed to decode.
func (d *decoder) at(line int, path, format string, args ...any) {
	d.r.probs = append(d.r.probs, Problem{File: d.r.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// fail records that the value at path could not be decoded.
func (d *decoder) fail(n *yaml.Node, path, msg string) {
	d.r.bad[path] = true
	d.at(n.Line, path, "%s", msg)
}

func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value) {
	if msg := decodeScalar(n, v); msg != "" {
		d.fail(n, path, msg)
	}
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, fmt.Sprintf("want %s, got %s", want(v.Type()), got(n)))
		return
	}
	fields := fieldIndex(v.Type())
	// Merged mappings first, so that the mapping's own keys override them as
	// YAML's merge key says.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			d.merge(n.Content[i+1], path, v, depth+1)
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.at(k.Line, path, "want a plain key name, got %s", got(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.at(k.Line, p, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			d.at(k.Line, p, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.r.lines[p] = k.Line
		d.value(val, p, v.Field(f), depth+1)
	}
}

// merge decodes the mapping(s) a "<<" key names into v.
func (d *decoder) merge(n *yaml.Node, path string, v reflect.Value, depth int) {
	if !d.enter(n, path, depth) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.mapping(n, path, v, depth)
	case yaml.SequenceNode:
		// Earlier mappings in the list win, so decode them last.
		for i := len(n.Content) - 1; i >= 0; i-- {
			m := n.Content[i]
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				d.at(m.Line, path, "<< merges mappings, got %s", got(m))
				continue
			}
			d.merge(m, path, v, depth+1)
		}
	default:
		d.at(n.Line, path, "<< merges mappings, got %s", got(n))
	}
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, fmt.Sprintf("want a list, got %s", got(n)))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := index(path, i)
		d.r.lines[p] = item.Line
		setDefaults(s.Index(i).Addr())
		d.value(item, p, s.Index(i), depth+1)
	}
	v.Set(s)
}

// decodeScalar sets v from the scalar n and returns "" or what is wrong.
// The environment's values go through here too, as plain scalars.
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
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			return bad()
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		// Any scalar is text: a tenant id of 101 is "101".
		v.SetString(n.Value)
	case v.Kind() == reflect.Int:
		// yaml.v3 would truncate 1.5 into an int; only integers are taken.
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || i < math.MinInt32 || i > math.MaxInt32 {
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
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Pointer:
		return "a mapping of keys"
	}
	return t.String()
}

// got describes what a node holds.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

func setDefaults(ptr reflect.Value) {
	if d, ok := ptr.Interface().(defaulter); ok {
		d.setDefaults()
	}
}

// fieldIndex maps the yaml names of t's fields to their indexes.
func fieldIndex(t reflect.Type) map[string]int {
	fields := make(map[string]int)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// suggest names the key the technician probably meant, or lists the keys
// allowed here when nothing is close.
func suggest(name string, fields map[string]int) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // ties go to the first name, the same every run
	best, bestDist := "", len(name)/3+2
	for _, k := range keys {
		if dist := distance(strings.ToLower(name), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (allowed: " + strings.Join(keys, ", ") + ")"
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
