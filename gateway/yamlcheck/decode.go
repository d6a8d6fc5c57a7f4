package yamlcheck

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoder decodes a YAML file strictly into a struct; see the package
// documentation for what it reports. The struct's keys are the names of
// its exported fields' yaml tags (a field without one, or tagged "-", is
// not a key). Fields may be structs, pointers to structs, slices, maps
// with string keys, strings, ints (in the int32 range), int64s, float64s,
// bools, time.Durations and TextOrMaps.
type Decoder struct {
	// Want completes the problem of an empty file, "file is empty; want
	// …": what the file should hold.
	Want string
	// Defaults, when not nil, is called with a pointer to each value the
	// decoder makes (a list element, a map value, what a nil pointer field
	// comes to point to) before the file's keys are decoded into it, and to
	// find the default of a key written as null. It sets the values that
	// the keys the file leaves out take.
	Defaults func(ptr any)
}

// Limits against files that alias themselves: a merge key that includes
// its own mapping recurses forever, and nested aliases multiply work.
const (
	maxDepth = 32
	maxNodes = 1 << 20
)

// Decode parses data, which must hold one YAML document, decodes it into
// the struct ptr points to, and records every problem in r. Keys the file
// leaves out keep what ptr held. It returns false when data holds nothing
// to decode (it is empty, not YAML, or ptr is not a non-nil pointer), a
// problem saying which; else true, whatever the problems with its keys,
// so that validation can go on and find the rest.
func (d Decoder) Decode(r *Report, data []byte, ptr any) bool {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		r.At(0, "", "cannot decode into %T", ptr) // a schema bug, not a file problem
		return false
	}
	root := parse(r, data, d.Want)
	if root == nil {
		return false
	}
	r.lines[""] = root.Line
	w := &walker{r: r, defaults: d.Defaults, reported: make(map[*yaml.Node]bool), budget: maxNodes}
	w.value(root, "", v.Elem(), 0)
	return true
}

// TextOrMap is a key that takes either one word or a mapping of names to
// words, like an allocation rule's basis: `area`, or `{area: 50%,
// consumption: 50%}`. Text is set for a scalar, Map for a mapping (its
// names' lines are recorded like a map's); validation checks both.
type TextOrMap struct {
	Text string
	Map  map[string]string
}

var textOrMapType = reflect.TypeFor[TextOrMap]()

// walker is one Decode's walk of the node tree. It records in the report,
// for each key path it meets, the line of the key and whether it held a
// value, so that validation can point at lines and tell "absent" from
// "zero".
type walker struct {
	r         *Report
	defaults  func(ptr any)
	reported  map[*yaml.Node]bool // nodes with a problem already: merged and aliased ones are met again
	budget    int                 // nodes left to visit
	exhausted bool                // the budget ran out; reported once
}

// value decodes n into v, whose key path is path. It returns true when n
// is null: the key counts as left out, and the caller, which knows the
// default, puts it back.
func (w *walker) value(n *yaml.Node, path string, v reflect.Value, depth int) (null bool) {
	if !w.enter(n, path, depth) {
		return false
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	// An explicit key overrides a merged one, null included: null means
	// "left out", whatever a merged mapping said.
	delete(w.r.bad, path)
	if isNull(n) {
		delete(w.r.given, path)
		return true
	}
	w.r.given[path] = true
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(w.fresh(v.Type().Elem()).Addr())
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == durationType:
		w.scalar(n, path, v)
	case v.Type() == textOrMapType:
		if n.Kind == yaml.MappingNode {
			w.dict(n, path, v.Field(1), depth)
		} else {
			w.scalar(n, path, v.Field(0))
		}
	case v.Kind() == reflect.Struct:
		w.mapping(n, path, v, depth)
	case v.Kind() == reflect.Slice:
		w.sequence(n, path, v, depth)
	case v.Kind() == reflect.Map:
		w.dict(n, path, v, depth)
	default:
		w.scalar(n, path, v)
	}
	return false
}

// enter counts n against the limits and reports whether to decode it.
func (w *walker) enter(n *yaml.Node, path string, depth int) bool {
	w.budget--
	if depth <= maxDepth && w.budget >= 0 {
		return true
	}
	if !w.exhausted {
		w.exhausted = true
		w.r.At(n.Line, path, "too deeply nested or too many aliases")
	}
	return false
}

// atNode records a problem with node n, once however often n is merged or
// aliased in.
func (w *walker) atNode(n *yaml.Node, path, format string, args ...any) {
	if w.reported[n] {
		return
	}
	w.reported[n] = true
	w.r.At(n.Line, path, format, args...)
}

// fail records that the value at path could not be decoded.
func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.r.bad[path] = true
	w.atNode(n, path, format, args...)
}

// fresh returns a new addressable value of type t with its defaults.
func (w *walker) fresh(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if w.defaults != nil {
		w.defaults(p.Interface())
	}
	return p.Elem()
}

func (w *walker) scalar(n *yaml.Node, path string, v reflect.Value) {
	if msg := decodeScalar(n, v); msg != "" {
		w.fail(n, path, "%s", msg)
	}
}

func (w *walker) mapping(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	fields := fieldIndex(v.Type())
	var defaults reflect.Value // v's type with its defaults, made for the first null key
	for _, e := range w.entries(n, path, depth) {
		p := join(path, e.key.Value)
		f, ok := fields[e.key.Value]
		if !ok {
			w.atNode(e.key, p, "unknown key%s", suggest(e.key.Value, fields))
			continue
		}
		w.r.lines[p] = e.key.Line
		if w.value(e.val, p, v.FieldByIndex(f), depth+1) {
			if !defaults.IsValid() {
				defaults = w.fresh(v.Type())
			}
			v.FieldByIndex(f).Set(defaults.FieldByIndex(f))
		}
	}
}

// dict decodes a mapping of names chosen by the file (like fault kinds)
// into a map; the names are for validation, which knows them, to check.
// A name whose value is null or does not decode is left out of the map,
// even when a merged mapping gave it.
func (w *walker) dict(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		w.fail(n, path, "cannot decode into %s", v.Type()) // a schema bug, not a file problem
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, e := range w.entries(n, path, depth) {
		p := join(path, e.key.Value)
		w.r.lines[p] = e.key.Line
		key := reflect.ValueOf(e.key.Value).Convert(v.Type().Key())
		ev := w.fresh(v.Type().Elem())
		w.value(e.val, p, ev, depth+1)
		if w.r.given[p] && !w.r.bad[p] {
			m.SetMapIndex(key, ev)
		} else {
			m.SetMapIndex(key, reflect.Value{})
		}
	}
	v.Set(m)
}

func (w *walker) sequence(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		w.fail(n, path, "want a list, got %s", got(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := Index(path, i)
		w.r.lines[p] = item.Line
		s.Index(i).Set(w.fresh(v.Type().Elem()))
		w.value(item, p, s.Index(i), depth+1) // a null item keeps its defaults
	}
	v.Set(s)
}

// entry is one key and its value in a mapping.
type entry struct{ key, val *yaml.Node }

// entries returns the pairs of mapping n, those merged in by "<<" first so
// that the mapping's own keys override them, as YAML's merge key says. It
// reports keys that are not plain names and keys given twice.
func (w *walker) entries(n *yaml.Node, path string, depth int) []entry {
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			out = append(out, w.merged(n.Content[i+1], path, depth+1)...)
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.atNode(k, path, "want a plain key name, got %s", got(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.atNode(k, join(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{k, n.Content[i+1]})
	}
	return out
}

// merged returns the pairs of the mapping(s) a "<<" key names.
func (w *walker) merged(n *yaml.Node, path string, depth int) []entry {
	if !w.enter(n, path, depth) {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return w.entries(n, path, depth)
	case yaml.SequenceNode:
		// Earlier mappings in the list win, so their pairs come last.
		var out []entry
		for i := len(n.Content) - 1; i >= 0; i-- {
			m := n.Content[i]
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				w.atNode(m, path, "<< merges mappings, got %s", got(m))
				continue
			}
			out = append(out, w.merged(m, path, depth+1)...)
		}
		return out
	}
	w.atNode(n, path, "<< merges mappings, got %s", got(n))
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// fieldIndex maps the keys of struct type t to its fields' index paths;
// the keys of a struct embedded with `yaml:",inline"` are t's own, as
// yaml.v3 has them.
func fieldIndex(t reflect.Type) map[string][]int {
	fields := make(map[string][]int)
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" && sf.Type.Kind() == reflect.Struct && sf.IsExported() {
			for k, idx := range fieldIndex(sf.Type) {
				fields[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name != "" && name != "-" && sf.IsExported() {
			fields[name] = []int{i}
		}
	}
	return fields
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
