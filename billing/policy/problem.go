package policy

import "fmt"

// Problem is one thing wrong with a RatingSpec or a ProtectedSpec. Field is
// a path inside the spec built from its yaml keys, like "warning_2",
// "daily[1].to" or "holidays[3]", so that the config loader can prefix the
// spec's own path ("ratings[2].") and point at the YAML line; it is empty
// for the spec as a whole.
type Problem struct {
	Field, Msg string
}

// String writes "field: msg", or msg alone when Field is empty.
func (p Problem) String() string {
	if p.Field == "" {
		return p.Msg
	}
	return p.Field + ": " + p.Msg
}

// problems collects Problems in the order they are found, so that the
// answer is deterministic and a config check reads top to bottom.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// indexed is the path of element i of the list at path: "daily[2]".
func indexed(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
