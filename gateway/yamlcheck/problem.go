package yamlcheck

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a file: where it is and what is wrong.
// Line is 0 when the value did not come from the file (an environment
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

// Problems is every problem found in one file. Report.Err and ReadFile
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
// callers need not know that the error is a pointer.
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
