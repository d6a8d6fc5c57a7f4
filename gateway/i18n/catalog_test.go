package i18n

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// catalogProblems lists what makes a set of catalogs unfit: an id one
// has and another lacks, an empty text, placeholders that differ between
// languages for one id.
func catalogProblems(cs map[Lang]catalog) []string {
	var out []string
	langs := slices.Sorted(maps.Keys(cs))
	for _, a := range langs {
		for _, id := range slices.Sorted(maps.Keys(cs[a])) {
			if strings.TrimSpace(cs[a][id]) == "" {
				out = append(out, fmt.Sprintf("%s: %q is empty", a, id))
			}
			for _, b := range langs {
				text, ok := cs[b][id]
				if !ok {
					out = append(out, fmt.Sprintf("%q is in %s but has no translation in %s", id, a, b))
					continue
				}
				pa, pb := placeholders(cs[a][id]), placeholders(text)
				slices.Sort(pa)
				slices.Sort(pb)
				if a < b && !slices.Equal(pa, pb) {
					out = append(out, fmt.Sprintf("%q: placeholders %v in %s, %v in %s", id, pa, a, pb, b))
				}
			}
		}
	}
	return out
}

func TestCatalogs_Complete(t *testing.T) {
	if len(catalogs) != len(Langs()) {
		t.Fatalf("got %d catalogs; want one per language %v", len(catalogs), Langs())
	}
	for _, p := range catalogProblems(catalogs) {
		t.Error(p)
	}
	if n := len(IDs()); n < 100 {
		t.Errorf("got %d messages; the catalogs did not load whole", n)
	}
}

// TestCatalogProblems_FindsEach proves the completeness check fails on
// each defect it is there for.
func TestCatalogProblems_FindsEach(t *testing.T) {
	good := catalog{"a": "A {n}", "b": "B"}
	cases := []struct {
		name string
		zh   catalog
		want string
	}{
		{"missing", catalog{"a": "甲 {n}"}, `"b" is in en but has no translation in zh-CN`},
		{"extra", catalog{"a": "甲 {n}", "b": "乙", "c": "丙"}, `"c" is in zh-CN but has no translation in en`},
		{"empty", catalog{"a": "甲 {n}", "b": " "}, `zh-CN: "b" is empty`},
		{"placeholder renamed", catalog{"a": "甲 {count}", "b": "乙"}, `"a": placeholders [n] in en, [count] in zh-CN`},
		{"placeholder lost", catalog{"a": "甲", "b": "乙"}, `"a": placeholders [n] in en, [] in zh-CN`},
	}
	for _, c := range cases {
		got := catalogProblems(map[Lang]catalog{En: good, ZhCN: c.zh})
		if !slices.Contains(got, c.want) {
			t.Errorf("%s: got %q; want it to contain %q", c.name, got, c.want)
		}
	}
	if got := catalogProblems(map[Lang]catalog{En: good, ZhCN: {"a": "{n} 甲", "b": "乙"}}); len(got) != 0 {
		t.Errorf("a sound pair: got %q; want no problem", got)
	}
}

func TestParseCatalog(t *testing.T) {
	c, err := parseCatalog(strings.NewReader(`{"a": "A", "b.c": "{x} y"}`))
	if err != nil || len(c) != 2 || c["b.c"] != "{x} y" {
		t.Fatalf("got %v, %v; want two messages", c, err)
	}
	for _, bad := range []string{
		`{"a": "A", "a": "B"}`, // encoding/json alone would keep "B"
		`{"a": 1}`,
		`["a"]`,
		`{"a": "A"} {}`,
		`{"a": "A"`,
		``,
	} {
		if c, err := parseCatalog(strings.NewReader(bad)); err == nil {
			t.Errorf("parseCatalog(%q) = %v; want an error", bad, c)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"no placeholder", nil},
		{"{a} and {b_2} and {a}", []string{"a", "b_2"}},
		{"{} {A} {2x} {a b} {", nil},
		{"{{n}}", []string{"n"}},
		{"余额 {balance}，{time} 断电", []string{"balance", "time"}},
	}
	for _, c := range cases {
		if got := placeholders(c.text); !slices.Equal(got, c.want) {
			t.Errorf("placeholders(%q) = %q; want %q", c.text, got, c.want)
		}
	}
}

func TestFill(t *testing.T) {
	args := map[string]string{"n": "5", "who": "{n}"}
	cases := []struct{ text, want string }{
		{"{n} s", "5 s"},
		{"{who} {n}", "{n} 5"}, // a value is not filled again
		{"{missing} {n}", "{missing} 5"},
		{"{ n } {{n}} {", "{ n } {5} {"},
		{"共 {n} 块", "共 5 块"},
	}
	for _, c := range cases {
		if got := fill(c.text, args); got != c.want {
			t.Errorf("fill(%q) = %q; want %q", c.text, got, c.want)
		}
	}
}
