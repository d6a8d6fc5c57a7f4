package yamlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// ReadFile reads the file at path for a Decoder. A file that cannot be
// read, or holds more than MaxFileSize bytes, is a *Problems holding one
// Problem that says why. The size is checked before the file is read, and
// a file whose size is not known beforehand (a pipe, a device) is read no
// further than the limit: memory stays small whatever path names.
func ReadFile(path string) ([]byte, error) {
	cannot := func(err error) error {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() // the path is already the FILE of the message
		}
		return &Problems{{File: path, Msg: "cannot read: " + msg}}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, cannot(err)
	}
	defer f.Close() // read-only: Close has nothing to report
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileSize {
		return nil, &Problems{{File: path, Msg: tooBig(st.Size())}}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, cannot(err)
	}
	if len(data) > MaxFileSize {
		return nil, &Problems{{File: path, Msg: fmt.Sprintf("more than 1 MiB (%d bytes) to read; a configuration file may hold at most that: is this the right file?", MaxFileSize)}}
	}
	return data, nil
}

// parse returns the root node of data's one document, or nil after
// recording why there is none; want completes the problem of an empty file.
func parse(r *Report, data []byte, want string) *yaml.Node {
	if len(data) > MaxFileSize {
		r.At(0, "", "%s", tooBig(int64(len(data))))
		return nil
	}
	if line, msg := notText(data); msg != "" {
		r.At(line, "", "%s", msg)
		return nil
	}
	empty := "file is empty"
	if want != "" {
		empty += "; want " + want
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.At(1, "", "%s", empty)
		} else {
			line, msg := yamlError(err)
			if tabIndented(data, line) {
				msg += " (indent with spaces: YAML does not allow tabs)"
			}
			r.At(line, "", "not YAML: %s", msg)
		}
		return nil
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			r.At(1, "", "%s", empty)
			return nil
		}
		root = doc.Content[0]
	}
	if isNull(root) {
		r.At(root.Line, "", "%s", empty)
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
			r.At(line, "", "not YAML: %s", msg)
			break
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			r.At(next.Line, "", "a second YAML document; the file must hold one")
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
