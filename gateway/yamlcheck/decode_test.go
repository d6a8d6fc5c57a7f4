package yamlcheck

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testFile is a schema with every kind of field a Decoder fills.
type testFile struct {
	Name    string             `yaml:"name"`
	Count   int                `yaml:"count"`
	Big     int64              `yaml:"big"`
	Ratio   float64            `yaml:"ratio"`
	On      bool               `yaml:"on"`
	Wait    time.Duration      `yaml:"wait"`
	Part    testPart           `yaml:"part"`
	Opt     *testPart          `yaml:"opt"`
	Parts   []testPart         `yaml:"parts"`
	Rates   map[string]float64 `yaml:"rates"`
	Skipped string             `yaml:"-"`
}

type testPart struct {
	Kind string `yaml:"kind"`
	Size int    `yaml:"size"`
}

// testDefaults gives every part a kind, as a schema's defaults would.
func testDefaults(ptr any) {
	if p, ok := ptr.(*testPart); ok {
		p.Kind = "plain"
	}
}

func decodeTest(t *testing.T, file string) (testFile, *Report, []string) {
	t.Helper()
	r := NewReport("t.yaml")
	var f testFile
	Decoder{Want: "a mapping with name", Defaults: testDefaults}.Decode(r, []byte(file), &f)
	var got []string
	if err := r.Err(); err != nil {
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("Err() = %T %v; want Problems", err, err)
		}
		for _, p := range ps {
			got = append(got, p.Error())
		}
	}
	return f, r, got
}

func TestDecoder_Decode_Problems(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // every problem, sorted by line
	}{
		{"empty", "", []string{"t.yaml:1: file is empty; want a mapping with name"}},
		{"null document", "~\n", []string{"t.yaml:1: file is empty; want a mapping with name"}},
		{"not YAML", "name: [\n", []string{"t.yaml:1: not YAML: did not find expected node content"}},
		{"tab indent", "part:\n\tkind: x\n", []string{
			"t.yaml:2: not YAML: found character that cannot start any token (indent with spaces: YAML does not allow tabs)"}},
		{"second document after an empty one", "name: a\n---\n---\nname: b\n", []string{
			"t.yaml:3: a second YAML document; the file must hold one"}},
		{"not a mapping", "- name\n", []string{"t.yaml:1: want a mapping of keys, got a list"}},
		{"unknown keys", "nme: a\nzzz: 1\n", []string{
			"t.yaml:1: nme: unknown key (did you mean name?)",
			"t.yaml:2: zzz: unknown key (allowed: big, count, name, on, opt, part, parts, rates, ratio, wait)"}},
		{"unknown key in the wrong case", "Name: a\n", []string{"t.yaml:1: Name: unknown key (did you mean name?)"}},
		{"duplicate key", "name: a\nname: b\n", []string{"t.yaml:2: name: duplicate key (first at line 1)"}},
		{"key not a name", "[a]: 1\n", []string{"t.yaml:1: want a plain key name, got a list"}},
		{"wrong types", "count: 1.5\nbig: x\nratio: '1'\non: maybe\nwait: 500\nname: [a]\n", []string{
			`t.yaml:1: count: want an integer, got "1.5"`,
			`t.yaml:2: big: want an integer, got "x"`,
			`t.yaml:3: ratio: want a number, got "1"`,
			`t.yaml:4: on: want true or false, got "maybe"`,
			`t.yaml:5: wait: want a duration like 500ms, 5s or 1m, got "500"`,
			"t.yaml:6: name: want a string, got a list"}},
		{"int beyond int32", "count: 3000000000\n", []string{`t.yaml:1: count: want an integer, got "3000000000"`}},
		{"wrong shapes", "part: x\nparts: x\nrates: [1]\nopt: 1\n", []string{
			`t.yaml:1: part: want a mapping of keys, got "x"`,
			`t.yaml:2: parts: want a list, got "x"`,
			"t.yaml:3: rates: want a mapping, got a list",
			`t.yaml:4: opt: want a mapping of keys, got "1"`}},
		{"nested key paths", "parts:\n  - {kind: a}\n  - {size: x, colour: red}\nrates: {a: x}\n", []string{
			`t.yaml:3: parts[1].size: want an integer, got "x"`,
			"t.yaml:3: parts[1].colour: unknown key (allowed: kind, size)",
			`t.yaml:4: rates.a: want a number, got "x"`}},
		{"merge of a scalar", "<<: 1\nname: a\n", []string{`t.yaml:1: << merges mappings, got "1"`}},
		{"merge of a list holding a scalar", "<<: [{name: a}, 1]\n", []string{`t.yaml:1: << merges mappings, got "1"`}},
		{"problem in a merged mapping, reported once", "part: &p {kind: a, size: x, colour: red}\nparts:\n  - <<: *p\n  - <<: *p\n", []string{
			`t.yaml:1: part.size: want an integer, got "x"`,
			"t.yaml:1: part.colour: unknown key (allowed: kind, size)"}},
		{"problem in an aliased value, reported once", "name: &n [x]\nparts: [{kind: *n}, {kind: *n}]\n", []string{
			"t.yaml:1: name: want a string, got a list"}},
		{"alias loop", "part: &p\n  kind: a\n  <<: *p\n", []string{"t.yaml:3: part: too deeply nested or too many aliases"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, got := decodeTest(t, tt.file)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDecoder_Decode_Values(t *testing.T) {
	const file = `name: 101
count: 0x10
big: 9000000000
ratio: 2
on: true
wait: 0
opt: {size: 3}
parts: [{size: 1}, ~, {kind: k}]
rates: {a: 0.5, b: 1}
`
	got, r, probs := decodeTest(t, file)
	if probs != nil {
		t.Fatalf("got problems %v; want none", probs)
	}
	want := testFile{
		Name: "101", Count: 16, Big: 9_000_000_000, Ratio: 2, On: true,
		Opt:   &testPart{Kind: "plain", Size: 3},
		Parts: []testPart{{Kind: "plain", Size: 1}, {Kind: "plain"}, {Kind: "k"}},
		Rates: map[string]float64{"a": 0.5, "b": 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v; want %+v", got, want)
	}
	for key, want := range map[string]bool{"wait": true, "part": false, "parts[1]": false, "parts[2].kind": true, "rates.b": true} {
		if got := r.Given(key); got != want {
			t.Errorf("Given(%s) = %v; want %v", key, got, want)
		}
	}
	if got, want := r.Line("parts[2].size"), 8; got != want {
		t.Errorf("Line(parts[2].size) = %d; want %d (the entry's)", got, want)
	}
}

// YAML's merge key: own keys override merged ones, earlier merged mappings
// override later ones, and null means "left out" even over a merged value.
func TestDecoder_Decode_Merge(t *testing.T) {
	const file = `part: &a {kind: a, size: 1}
opt: &b {kind: b, size: 2}
parts:
  - <<: [*a, *b]
  - <<: *a
    size: 5
  - <<: *a
    kind: ~
rates: &r {x: 0.5, y: 0.25}
`
	got, r, probs := decodeTest(t, file)
	if probs != nil {
		t.Fatalf("got problems %v; want none", probs)
	}
	wantParts := []testPart{{Kind: "a", Size: 1}, {Kind: "a", Size: 5}, {Kind: "plain", Size: 1}}
	if !reflect.DeepEqual(got.Parts, wantParts) {
		t.Errorf("got parts %+v; want %+v", got.Parts, wantParts)
	}
	if r.Given("parts[2].kind") || !r.Given("parts[2].size") {
		t.Errorf("Given(parts[2].kind) %v, Given(parts[2].size) %v; want false, true",
			r.Given("parts[2].kind"), r.Given("parts[2].size"))
	}
	if got, want := r.Line("parts[1].size"), 6; got != want {
		t.Errorf("Line(parts[1].size) = %d; want %d (the own key's)", got, want)
	}
}

func TestDecoder_Decode_NullOverMergedMapping(t *testing.T) {
	const file = "<<: {opt: {size: 1}, rates: {x: 1, y: 0.5}, name: a}\nopt: ~\nrates: {x: ~}\n"
	got, r, probs := decodeTest(t, file)
	if probs != nil {
		t.Fatalf("got problems %v; want none", probs)
	}
	if got.Opt != nil || r.Given("opt") || r.Given("opt.size") {
		t.Errorf("opt = %+v, given %v, opt.size given %v; want nil and neither given", got.Opt, r.Given("opt"), r.Given("opt.size"))
	}
	// A map is replaced, not merged into, as YAML's merge key says.
	if want := map[string]float64{}; !reflect.DeepEqual(got.Rates, want) {
		t.Errorf("rates = %v; want %v", got.Rates, want)
	}
}

func TestDecoder_Decode_NotAPointer(t *testing.T) {
	r := NewReport("t.yaml")
	if (Decoder{}).Decode(r, []byte("name: a\n"), testFile{}) {
		t.Errorf("Decode(struct value) = true; want false")
	}
	if err := r.Err(); err == nil || err.Error() != "t.yaml: cannot decode into yamlcheck.testFile" {
		t.Errorf("Err() = %v; want the schema problem", err)
	}
}

// Work is bounded however the merges multiply: here a million merged
// mappings.
func TestDecoder_Decode_MergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("part:\n  x0: &x0 {size: 1}\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "  x%d: &x%d {<<: [%s]}\n", i, i, strings.Repeat(fmt.Sprintf("*x%d, ", i-1), 9)+fmt.Sprintf("*x%d", i-1))
	}
	b.WriteString("opt: {<<: *x6}\n")
	_, _, got := decodeTest(t, b.String())
	const want = "opt: too deeply nested or too many aliases"
	if !slices.ContainsFunc(got, func(p string) bool { return strings.HasSuffix(p, want) }) || len(got) > 10 {
		t.Errorf("got %d problems:\n%s\nwant a few, among them %q", len(got), strings.Join(got, "\n"), want)
	}
}

// inlined has the keys of an embedded struct as its own, as yaml.v3 does
// with `yaml:",inline"`.
type inlined struct {
	InlinePart `yaml:",inline"`
	Limit      *float64 `yaml:"limit"`
}

// InlinePart is exported: only an exported embedded struct is inlined.
type InlinePart struct {
	Kind string `yaml:"kind"`
	Size int    `yaml:"size"`
}

func TestDecoder_Decode_Inline(t *testing.T) {
	var v struct {
		Rule inlined `yaml:"rule"`
	}
	r := NewReport("t.yaml")
	Decoder{}.Decode(r, []byte("rule:\n  kind: fast\n  size: 3\n  limit: 2.5\n  sise: 4\n"), &v)
	if v.Rule.Kind != "fast" || v.Rule.Size != 3 || v.Rule.Limit == nil || *v.Rule.Limit != 2.5 {
		t.Errorf("decoded %+v; want the inlined keys and limit", v.Rule)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "t.yaml:5: rule.sise: unknown key (did you mean size?)") {
		t.Errorf("problems %v; want sise at line 5 with size suggested", err)
	}
}

// TestDecoder_Decode_TextOrMap: one key takes a word or a mapping; a list
// is refused at its line.
func TestDecoder_Decode_TextOrMap(t *testing.T) {
	type file struct {
		Basis []TextOrMap `yaml:"basis"`
	}
	var f file
	r := NewReport("t.yaml")
	Decoder{}.Decode(r, []byte("basis:\n  - area\n  - {area: 50%, consumption: 50%}\n  - [area]\n"), &f)
	if len(f.Basis) != 3 || f.Basis[0].Text != "area" || f.Basis[0].Map != nil {
		t.Fatalf("got %+v; want the word area first", f.Basis)
	}
	if m := f.Basis[1].Map; len(m) != 2 || m["area"] != "50%" || m["consumption"] != "50%" || f.Basis[1].Text != "" {
		t.Errorf("got %+v; want the mapping second", f.Basis[1])
	}
	if got := r.Line("basis[1].consumption"); got != 3 {
		t.Errorf("line of basis[1].consumption: got %d; want 3", got)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "t.yaml:4: basis[2]") {
		t.Errorf("got %v; want the list refused at t.yaml:4: basis[2]", err)
	}
}
