package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path, applies defaults and MALLGRID_*
// environment overrides (env is a list like os.Environ(); nil ignores the
// environment), decodes strictly and validates. On any problem, including
// a file that cannot be read, it returns a nil *Config and a *Problems
// holding every problem found, sorted by line.
func Load(path string, env []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() // the path is already the FILE of the message
		}
		return nil, &Problems{{File: path, Msg: "cannot read: " + msg}}
	}
	return Parse(path, data, env)
}

// Parse is Load for bytes already read; name is used as FILE in messages.
func Parse(name string, data []byte, env []string) (*Config, error) {
	r := newReport(name)
	cfg := &Config{}
	root := parseYAML(r, data)
	if root == nil {
		return nil, r.result()
	}
	r.lines[""] = root.Line
	newDecoder(r).value(root, "", reflect.ValueOf(cfg).Elem(), 0)
	layer(cfg, r, env)
	validate(cfg, r)
	if len(r.probs) > 0 {
		return nil, r.result()
	}
	return cfg, nil
}

func (r *report) result() error {
	ps := append(Problems(nil), r.probs...)
	ps.sort()
	return &ps
}

// parseYAML returns the root node of the file's one document, or nil after
// reporting why there is none.
func parseYAML(r *report, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.whole(1, "file is empty; want a mapping with site, buses, meters…")
		} else {
			line, msg := yamlError(err)
			if tabIndented(data, line) {
				msg += " (indent with spaces: YAML does not allow tabs)"
			}
			r.whole(line, "not YAML: %s", msg)
		}
		return nil
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			r.whole(1, "file is empty; want a mapping with site, buses, meters…")
			return nil
		}
		root = doc.Content[0]
	}
	if isNull(root) {
		r.whole(root.Line, "file is empty; want a mapping with site, buses, meters…")
		return nil
	}
	// A second document would be silently ignored: the technician would
	// edit a part of the file that changes nothing. An empty one (a
	// trailing ---) holds nothing to ignore.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, msg := yamlError(err)
			r.whole(line, "not YAML: %s", msg)
			break
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			r.whole(next.Line, "a second YAML document; the file must hold one")
			break
		}
	}
	return root
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError splits a yaml.v3 parser error into its line and message.
func yamlError(err error) (line int, msg string) {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, err.Error()
	}
	line, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return 0, err.Error()
	}
	return line, m[2]
}

// tabIndented reports whether line (1-based) of data starts its indentation
// with a tab, the commonest reason a hand-edited file stops being YAML.
func tabIndented(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return false
	}
	indent := lines[line-1][:len(lines[line-1])-len(bytes.TrimLeft(lines[line-1], " \t"))]
	return bytes.ContainsRune(indent, '\t')
}
