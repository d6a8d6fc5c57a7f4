package yamlcheck

import (
	"fmt"
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
	// Warning marks what is legal but unwise, like a status page open to
	// the whole network: it is reported, but does not stop a load.
	Warning bool
}

// Error returns "FILE:LINE: key: msg", leaving out the line and the key
// when they are not known; a warning's msg starts with "warning: ".
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
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one file. Report.Err and ReadFile
// return it as a *Problems; it is never empty then, and it holds at least
// one problem that is not a warning.
type Problems []Problem

// MaxListed is how many problems Problems.Error lists. A file that is not
// the configuration at all can hold a problem on every line; past the
// first screenful the rest say nothing new, so only their number is given.
const MaxListed = 100

// Error returns one problem per line, sorted by line number, problems
// without a line first: at most MaxListed of them, then a line saying how
// many more there are.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sorted.sort()
	n := min(len(sorted), MaxListed)
	lines := make([]string, n, n+1)
	for i, p := range sorted[:n] {
		lines[i] = p.Error()
	}
	if more := len(sorted) - n; more > 0 {
		lines = append(lines, fmt.Sprintf("%s: … and %d more problems, not listed (is this the right file?)", sorted[0].File, more))
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
