package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is and what is
// wrong. Line is 0 when the value did not come from the file (an environment
// override) or the file has no line to point at; Key is empty for problems
// with the file as a whole (not YAML, empty).
type Problem struct {
	File string
	Line int
	Key  string // path like buses[1].parity or http.listen
	Msg  string
}

// Error returns "FILE:LINE: key: msg", leaving out the line and the key
// when they are not known.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one configuration. Load and Parse
// return it as a *Problems; it is never empty then.
type Problems []Problem

// Error returns one problem per line, sorted by line number, problems
// without a line first.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sorted.sort()
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// As lets errors.As fill a Problems as well as a *Problems target, so
// callers need not know that Load returns a pointer.
func (ps Problems) As(target any) bool {
	switch t := target.(type) {
	case *Problems:
		*t = ps
		return true
	case **Problems:
		c := ps
		*t = &c
		return true
	}
	return false
}

// sort orders ps by line, keeping the order of discovery within a line.
func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

// report collects problems and knows, for every key path, where its value
// came from: a line of the file, an environment variable, or nowhere (a
// default). Validation names a key; report finds its line.
type report struct {
	file  string
	lines map[string]int    // key path → line of the key ("" → the document)
	set   map[string]bool   // key present in the file with a non-null value
	bad   map[string]bool   // key whose value could not be decoded
	env   map[string]string // key path → the environment variable that set it
	probs Problems
}

func newReport(file string) *report {
	return &report{
		file:  file,
		lines: make(map[string]int),
		set:   make(map[string]bool),
		bad:   make(map[string]bool),
		env:   make(map[string]string),
	}
}

// add records a problem with key. A key whose value (or an enclosing
// value) already failed to decode gets no further problem: the technician
// sees one message per mistake.
func (r *report) add(key, format string, args ...any) {
	for k := key; ; k = parent(k) {
		if r.bad[k] {
			return
		}
		if k == "" {
			break
		}
	}
	msg := fmt.Sprintf(format, args...)
	if name, ok := r.env[key]; ok {
		r.probs = append(r.probs, Problem{File: r.file, Key: key, Msg: "env " + name + ": " + msg})
		return
	}
	r.probs = append(r.probs, Problem{File: r.file, Line: r.line(key), Key: key, Msg: msg})
}

// whole records a problem with the file as a whole.
func (r *report) whole(line int, format string, args ...any) {
	r.probs = append(r.probs, Problem{File: r.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of key, or of the nearest enclosing key present in
// the file: a missing required key is reported where it should have been.
func (r *report) line(key string) int {
	for k := key; ; k = parent(k) {
		if l, ok := r.lines[k]; ok {
			return l
		}
		if k == "" {
			return 0
		}
	}
}

// where describes key's origin for messages that point elsewhere, like
// "line 12" or "env MALLGRID_HTTP_LISTEN".
func (r *report) where(key string) string {
	if name, ok := r.env[key]; ok {
		return "env " + name
	}
	return "line " + strconv.Itoa(r.line(key))
}

// parent returns the enclosing key path: meters[3].bus → meters[3] →
// meters → "".
func parent(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

// join appends a field name to a key path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index appends a list index to a key path.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
