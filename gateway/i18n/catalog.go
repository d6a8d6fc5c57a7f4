package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

//go:embed locales/*.json
var localeFiles embed.FS

// catalog is one language's messages by id.
type catalog map[string]string

// catalogs holds the embedded catalogs, parsed once when the program
// starts and never changed after. They are part of the program, not data
// from outside: a broken one fails every test of this package, so
// mustLoad cannot panic in a built gateway.
var catalogs = mustLoad()

func mustLoad() map[Lang]catalog {
	out := make(map[Lang]catalog)
	for _, l := range Langs() {
		f, err := localeFiles.Open("locales/" + string(l) + ".json")
		if err != nil {
			panic(fmt.Sprintf("i18n: %v", err))
		}
		c, err := parseCatalog(f)
		f.Close()
		if err != nil {
			panic(fmt.Sprintf("i18n: locales/%s.json: %v", l, err))
		}
		out[l] = c
	}
	return out
}

// parseCatalog reads a flat JSON object of id → text. It refuses an id
// given twice (encoding/json would silently keep the last), a value that is
// not a string, and anything after the object.
func parseCatalog(r io.Reader) (catalog, error) {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object of message id to text (%v)", err)
	}
	c := make(catalog)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		id := tok.(string) // inside an object, a key is always a string
		var text string
		if err := dec.Decode(&text); err != nil {
			return nil, fmt.Errorf("%q: %w", id, err)
		}
		if _, dup := c[id]; dup {
			return nil, fmt.Errorf("%q is given twice", id)
		}
		c[id] = text
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("text after the catalog's object")
	}
	return c, nil
}

// IDs returns every message id, sorted. Both catalogs hold the same ids
// (the tests prove it).
func IDs() []string { return slices.Sorted(maps.Keys(catalogs[En])) }

// Has reports whether id is a message of lang's catalog.
func Has(lang Lang, id string) bool {
	_, ok := catalogs[lang][id]
	return ok
}

// placeholders returns the names of the {name} placeholders of text in
// the order they appear, each once. A brace that does not open a
// placeholder (a name of lowercase letters, digits and '_' closed by '}')
// is text.
func placeholders(text string) []string {
	var out []string
	for rest := text; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return out
		}
		rest = rest[i+1:]
		j := strings.IndexByte(rest, '}')
		if j > 0 && isName(rest[:j]) {
			if !slices.Contains(out, rest[:j]) {
				out = append(out, rest[:j])
			}
			rest = rest[j+1:]
		}
	}
}

func isName(s string) bool {
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// fill replaces each {name} placeholder of text by its value in args, a
// list of name, value pairs; a placeholder without a value stays as it is,
// visible, rather than vanishing from the sentence.
func fill(text string, args map[string]string) string {
	if len(args) == 0 || !strings.Contains(text, "{") {
		return text
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(text, '{')
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		text = text[i:]
		j := strings.IndexByte(text, '}')
		if j > 1 && isName(text[1:j]) {
			if v, ok := args[text[1:j]]; ok {
				b.WriteString(v)
				text = text[j+1:]
				continue
			}
		}
		b.WriteByte('{')
		text = text[1:]
	}
}
