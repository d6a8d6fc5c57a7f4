// Package yamlcheck decodes a hand-written YAML file strictly into a Go
// struct and reports every problem in it at once, each as a Problem that
// prints as
//
//	FILE:LINE: key: problem
//
// where key is a path like buses[1].parity or meters[3].faults.late. It
// serves the files a technician edits: the gateway's configuration
// (gateway/config) and the simulator's bus file (gateway/demo's sim file), so
// that both point at lines and word their problems alike.
//
// A Decoder fills the struct from go.yaml.in/yaml/v3's node tree rather
// than with yaml's own decoder, whose KnownFields stops at the first
// unknown key and names no key path. Every unknown key (with a "did you
// mean"), duplicate key, key that is not a plain name, and value of the
// wrong type is one problem, and decoding goes on with the next key. Merge
// keys (<<) work as YAML says: the mapping's own keys override merged ones,
// and earlier mappings in a merged list override later ones. A key written
// with no value (null) counts as left out, even over a merged value, and
// takes its default. A node met again through an alias or a merge reports
// its problem once. Nesting deeper than 32, or more than 2^20 nodes
// visited (a file that merges itself, or aliases that multiply), is one
// problem, and what lies beyond is not decoded. Integers must be written as integers (1.5 is not
// one) and a duration needs its unit, except a bare 0.
//
// A file over MaxFileSize (1 MiB) is refused before it is parsed, by
// ReadFile before it is read. A file that is not text (a NUL byte, bytes
// that are not UTF-8, a control character YAML does not allow) is one
// problem at the line of the first such byte.
//
// A Report collects the problems and remembers, for every key path, its
// line and whether the file gave it a value, so that validation after
// decoding names a key and the report finds its line: a missing key is
// reported at the line of the nearest enclosing key. A key whose value did
// not decode gets that one problem and no more. A value from outside the
// file (an environment variable) is given with Report.Override; its
// problems carry no line and name where the value came from.
//
// Validation may also record a warning (Report.Warn): what is legal but
// unwise. It prints like a problem, with "warning: " before its text, but
// does not make a file fail: Report.Err returns nil when there are only
// warnings, else every problem and warning as a *Problems sorted by line;
// Report.Warnings returns the warnings of a file that passed. Problems
// prints at most MaxListed of them, then how many more there are.
// Nothing in the package is shared between calls: Reports and Decoders may
// be used from several goroutines as long as each Report is used by one.
//
// It imports nothing of ours.
package yamlcheck
