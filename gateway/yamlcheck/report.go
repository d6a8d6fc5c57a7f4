package yamlcheck

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Report collects the problems of one file and knows, for every key path,
// where its value came from: a line of the file, an origin outside it (an
// environment variable), or nowhere (a default). A Decoder fills it;
// validation names a key and the report finds its line.
//
// A Report is for one file and one goroutine at a time.
type Report struct {
	file   string
	lines  map[string]int    // key path → line of the key ("" → the document)
	given  map[string]bool   // key present in the file with a non-null value
	bad    map[string]bool   // key whose value could not be decoded
	origin map[string]string // key path → where its override came from
	probs  Problems
}

// NewReport returns an empty Report for the file called file, the FILE of
// every problem it records.
func NewReport(file string) *Report {
	return &Report{
		file:   file,
		lines:  make(map[string]int),
		given:  make(map[string]bool),
		bad:    make(map[string]bool),
		origin: make(map[string]string),
	}
}

// Add records a problem with key, at the line of key or of the nearest
// enclosing key the file has: a missing key is reported where it should
// have been. A key given by Override is reported without a line, its
// message starting with the origin. A key whose value, or an enclosing
// value, failed to decode gets no further problem: the technician sees one
// message per mistake.
func (r *Report) Add(key, format string, args ...any) {
	r.add(key, false, fmt.Sprintf(format, args...))
}

// Warn records a warning with key, where Add would record a problem: the
// value is legal but unwise. A warning is printed like a problem, with
// "warning: " before its text, but does not make Err return an error.
func (r *Report) Warn(key, format string, args ...any) {
	r.add(key, true, fmt.Sprintf(format, args...))
}

// WarnAt records a warning at line (0 for none) with key (empty for the
// file as a whole), as At records a problem.
func (r *Report) WarnAt(line int, key, format string, args ...any) {
	r.probs = append(r.probs, Problem{File: r.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func (r *Report) add(key string, warning bool, msg string) {
	for k := key; ; k = parent(k) {
		if r.bad[k] {
			return
		}
		if k == "" {
			break
		}
	}
	if origin, ok := r.origin[key]; ok {
		r.probs = append(r.probs, Problem{File: r.file, Key: key, Msg: origin + ": " + msg, Warning: warning})
		return
	}
	r.probs = append(r.probs, Problem{File: r.file, Line: r.Line(key), Key: key, Msg: msg, Warning: warning})
}

// At records a problem at line (0 for none) with key (empty for the file
// as a whole). Unlike Add, it is never left out: it is for problems that
// have a line of their own, like a key the schema does not know.
func (r *Report) At(line int, key, format string, args ...any) {
	r.probs = append(r.probs, Problem{File: r.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Append records problems found elsewhere, like those of another file this
// one names, as they are.
func (r *Report) Append(ps ...Problem) { r.probs = append(r.probs, ps...) }

// Override decodes text, the value of key from origin outside the file
// (like "env MALLGRID_HTTP_LISTEN"), into the value ptr points to, as a
// Decoder decodes a plain scalar. From then on, problems with key are
// reported without a line and start with origin, and a value of key in the
// file that failed to decode no longer silences them. It returns false,
// having recorded the problem, when text does not decode; key then gets no
// further problem.
func (r *Report) Override(key, origin, text string, ptr any) bool {
	r.origin[key] = origin
	delete(r.bad, key) // the override replaces a bad file value
	v := reflect.ValueOf(ptr)
	msg := fmt.Sprintf("cannot decode into %T", ptr) // a schema bug, not a value problem
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		msg = decodeScalar(&yaml.Node{Kind: yaml.ScalarNode, Value: text}, v.Elem())
	}
	if msg != "" {
		r.Add(key, "%s", msg)
		r.bad[key] = true
		return false
	}
	return true
}

// Given reports whether the file gives key a value other than null. A key
// under one written as null, which overrides a merged mapping, is not
// given however the merged mapping gave it.
func (r *Report) Given(key string) bool {
	for k := key; ; k = parent(k) {
		if !r.given[k] {
			return false
		}
		if k == "" {
			return true
		}
	}
}

// Bad reports whether the value of key, from the file or an override,
// failed to decode.
func (r *Report) Bad(key string) bool { return r.bad[key] }

// Line returns the line of key, or of the nearest enclosing key present in
// the file; 0 when there is none.
func (r *Report) Line(key string) int {
	for k := key; ; k = parent(k) {
		if l, ok := r.lines[k]; ok {
			return l
		}
		if k == "" {
			return 0
		}
	}
}

// Where describes the origin of key for messages that point elsewhere,
// like "line 12" or "env MALLGRID_HTTP_LISTEN".
func (r *Report) Where(key string) string {
	if origin, ok := r.origin[key]; ok {
		return origin
	}
	return "line " + strconv.Itoa(r.Line(key))
}

// Clean reports whether nothing at or under key has a problem (a warning
// does not count) or failed to decode, so that a value is used only once
// all of it is known good.
func (r *Report) Clean(key string) bool {
	under := func(k string) bool {
		return k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[")
	}
	for _, p := range r.probs {
		if !p.Warning && under(p.Key) {
			return false
		}
	}
	for k := range r.bad {
		if under(k) {
			return false
		}
	}
	return true
}

// Err returns nil when no problem other than a warning was recorded, else
// a *Problems holding every problem, warnings included (the technician
// sees all of them in one run), sorted by line.
func (r *Report) Err() error {
	if !slices.ContainsFunc(r.probs, func(p Problem) bool { return !p.Warning }) {
		return nil
	}
	ps := append(Problems(nil), r.probs...)
	ps.sort()
	return &ps
}

// Warnings returns the warnings recorded, sorted by line; nil when there
// are none. They are for a file whose Err is nil: a caller that goes on
// with the file prints or logs them.
func (r *Report) Warnings() Problems {
	var ws Problems
	for _, p := range r.probs {
		if p.Warning {
			ws = append(ws, p)
		}
	}
	ws.sort()
	return ws
}

// Index appends a list index to a key path: Index("meters", 3) is
// "meters[3]".
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// join appends a key name to a key path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// parent returns the enclosing key path: meters[3].faults.late →
// meters[3].faults → meters[3] → meters → "". A key name may hold a dash
// (a fault kind) but no dot, so the last dot or bracket is the boundary.
func parent(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}
