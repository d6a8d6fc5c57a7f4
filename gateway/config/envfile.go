package config

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// maxEnvFileSize bounds what ReadEnvFile reads: a file of a few secrets is
// a few hundred bytes.
const maxEnvFileSize = 1 << 20

// ReadEnvFile reads the file a unit names in EnvironmentFile= the way
// systemd does (src/basic/env-file.c, parse_env_file_internal, then the
// assignments with an invalid name dropped) and returns its assignments as
// KEY=VALUE strings in file order, a later one for the same key winning
// when the list is appended to os.Environ() and given to Load. It is how
// `config check --env-file` sees the configuration as the service will,
// without a shell ever evaluating the file: a line a shell would run as a
// command (KEY=a b) or read otherwise (spaces around =, backslashes, a
// quote inside quotes, a carriage return) is read as systemd reads it.
//
// The rules: a line starting (after blanks) with # or ; is a comment; a key
// runs to the =, blanks around it dropped; a line without = is ignored; a
// value is unquoted, 'single quoted' (nothing escaped) or "double quoted"
// (\" \\ \` \$ unescaped, any other backslash kept, backslash-newline
// joining lines), an unquoted part after a quoted one joining it (quotes
// after an unquoted part are kept as they are); unquoted, a
// backslash takes the next character as it is (backslash-newline joins
// lines) and blanks at the end are dropped; \r ends a line as \n does. A key
// that is not a valid name ([A-Za-z_][A-Za-z0-9_]*; "export KEY" is not) is
// dropped, as systemd drops it. A file that is not UTF-8 is an error, as
// systemd refuses to start the service on it; so is a missing file.
func ReadEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxEnvFileSize {
		return nil, fmt.Errorf("%s: file is %d bytes; an environment file may hold at most %d", path, fi.Size(), maxEnvFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFileSize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ParseEnvFile(path, data)
}

// ParseEnvFile is ReadEnvFile on data already read; name is used in errors.
func ParseEnvFile(name string, data []byte) ([]string, error) {
	const (
		preKey = iota
		inKey
		preValue
		inValue
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	isNewline := func(c byte) bool { return c == '\n' || c == '\r' }
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	var (
		out                  []string
		key, value           []byte
		keyTrail, valueTrail = -1, -1 // where trailing blanks start, -1 if none
		line                 = 1
		state                = preKey
		errs                 []string
	)
	push := func() {
		if keyTrail >= 0 {
			key = key[:keyTrail]
		}
		k, v := string(key), string(value)
		switch {
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			errs = append(errs, fmt.Sprintf("%s:%d: not UTF-8 text", name, line))
		case validEnvName(k):
			out = append(out, k+"="+v)
		}
		key, value = key[:0], nil
	}
	for _, c := range data {
		switch state {
		case preKey:
			if c == '#' || c == ';' {
				state = comment
			} else if !isSpace(c) {
				state = inKey
				keyTrail = -1
				key = append(key, c)
			}
		case inKey:
			switch {
			case isNewline(c):
				state = preKey
				line++
				key = key[:0]
			case c == '=':
				state = preValue
				valueTrail = -1
			default:
				if !isSpace(c) {
					keyTrail = -1
				} else if keyTrail < 0 {
					keyTrail = len(key)
				}
				key = append(key, c)
			}
		case preValue:
			switch {
			case isNewline(c):
				state = preKey
				push()
				line++
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !isSpace(c):
				state = inValue
				value = append(value, c)
			}
		case inValue:
			switch {
			case isNewline(c):
				state = preKey
				if valueTrail >= 0 {
					value = value[:valueTrail]
				}
				push()
				line++
			case c == '\\':
				state = valueEscape
				valueTrail = -1
			default:
				if !isSpace(c) {
					valueTrail = -1
				} else if valueTrail < 0 {
					valueTrail = len(value)
				}
				value = append(value, c)
			}
		case valueEscape:
			state = inValue
			if !isNewline(c) {
				value = append(value, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				value = append(value, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				value = append(value, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case strings.IndexByte("\"\\`$", c) >= 0:
				value = append(value, c)
			case c != '\n':
				value = append(value, '\\', c)
			}
		case comment:
			if c == '\\' {
				state = commentEscape
			} else if isNewline(c) {
				state = preKey
				line++
			}
		case commentEscape:
			if isNewline(c) {
				state = preKey
				line++
			} else {
				state = comment
			}
		}
	}
	switch state {
	case preValue, inValue, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		if state == inValue && valueTrail >= 0 {
			value = value[:valueTrail]
		}
		push()
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, nil
}

// validEnvName is systemd's env_name_is_valid: [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
