package yamlcheck

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// MaxFileSize is the largest file ReadFile reads and a Decoder decodes:
// 1 MiB. 3,900 meters and their 3,900 tenants, one line each, are 522 KiB
// (and take 36 MiB and 0.1 s to check); a file beyond the limit is not a
// hand-written one (a log, a database, a disk image named by mistake), and
// parsing it would cost some 70 times its size in memory and a problem on
// nearly every line.
const MaxFileSize = 1 << 20

// tooBig is the problem of a file over MaxFileSize; size is what is known
// of it (at least MaxFileSize+1 bytes when it was read, not stat'ed).
func tooBig(size int64) string {
	return fmt.Sprintf("file is %d bytes; a configuration file may hold at most 1 MiB (%d bytes): is this the right file?",
		size, MaxFileSize)
}

// notText finds the first byte of data that cannot be in a YAML file and
// returns its line (1-based) and what is wrong, or 0 and "" when data is
// text. yaml.v3 refuses the same characters but says so without a line;
// binary garbage deserves one problem that points at it. A file with a
// UTF-16 byte-order mark is left to yaml.v3, which reads UTF-16 itself.
func notText(data []byte) (line int, msg string) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return 0, ""
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		c, size := utf8.DecodeRune(data[i:])
		switch {
		case c == utf8.RuneError && size <= 1:
			return line, fmt.Sprintf("not UTF-8 text: byte 0x%02x at column %d; save the file as UTF-8 (not GBK), or check that it is the right file", data[i], col)
		case c == 0:
			return line, fmt.Sprintf("not a text file: NUL byte at column %d (is this the right file?)", col)
		case !printable(c):
			return line, fmt.Sprintf("control character U+%04X at column %d; YAML allows only printable characters, tabs and line breaks", c, col)
		case c == '\n':
			line, col = line+1, 0
		}
		i += size
		col++
	}
	return 0, ""
}

// printable reports whether YAML allows c in a file: YAML 1.2's
// c-printable, which yaml.v3's reader checks.
func printable(c rune) bool {
	return c == '\t' || c == '\n' || c == '\r' ||
		(c >= 0x20 && c <= 0x7E) || c == 0x85 ||
		(c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
		(c >= 0x10000 && c <= 0x10FFFF)
}
