package tariff

import "fmt"

// Problem is one thing wrong with a Spec. Field is a path inside the spec
// built from its yaml keys, like "days[1].windows[2].to", "rates.peak" or
// "blocks[0].price", so that the config loader can prefix the tariff's own
// path and point at the YAML line; it is empty for the spec as a whole.
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

// problems collects Problems in the order they are found, so that New's
// answer is deterministic and a config check reads top to bottom.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}
