package yamlcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDecoder_Decode_NotText(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // the one problem
	}{
		{"NUL byte", "name: a\ncount: 1\nwait: \x001s\n", "t.yaml:3: not a text file: NUL byte at column 7 (is this the right file?)"},
		{"invalid UTF-8", "name: a\nname2: caf\xe9\n", "t.yaml:2: not UTF-8 text: byte 0xe9 at column 11; save the file as UTF-8 (not GBK), or check that it is the right file"},
		{"truncated UTF-8", "name: \xe4\xb8", "t.yaml:1: not UTF-8 text: byte 0xe4 at column 7; save the file as UTF-8 (not GBK), or check that it is the right file"},
		{"control character", "name: a\x07\n", "t.yaml:1: control character U+0007 at column 8; YAML allows only printable characters, tabs and line breaks"},
		{"C1 control character", "name: a\u0090\n", "t.yaml:1: control character U+0090 at column 8; YAML allows only printable characters, tabs and line breaks"},
		{"columns count characters", "# 中文注释\r\nname: 商场\x7f\n", "t.yaml:2: control character U+007F at column 9; YAML allows only printable characters, tabs and line breaks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, got := decodeTest(t, tc.file)
			if want := []string{tc.want}; !reflect.DeepEqual(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

// Text YAML allows decodes: a byte-order mark, tabs inside values,
// CRLF line ends, and UTF-16 (which yaml.v3 reads itself).
func TestDecoder_Decode_Text(t *testing.T) {
	utf16 := []byte{0xFF, 0xFE}
	for _, c := range "name: a\r\n" {
		utf16 = append(utf16, byte(c), 0)
	}
	for file, name := range map[string]string{
		"\uFEFFname: a\n":                "a",
		"name: \"a\tb\"\r\ncount: 1\r\n": "a\tb",
		"name: 商场 🛒\n":                   "商场 🛒",
		string(utf16):                    "a",
	} {
		if f, _, got := decodeTest(t, file); got != nil || f.Name != name {
			t.Errorf("Decode(%q) = %q, %q; want %q and no problem", file, f.Name, got, name)
		}
	}
}

func TestDecoder_Decode_TooBig(t *testing.T) {
	fill := func(n int) string { return "name: a\n#" + strings.Repeat("x", n-10) + "\n" }
	if _, _, got := decodeTest(t, fill(MaxFileSize)); got != nil {
		t.Errorf("a file of MaxFileSize bytes: %q; want it decoded", got)
	}
	_, _, got := decodeTest(t, fill(MaxFileSize+1))
	want := []string{"t.yaml: file is 1048577 bytes; a configuration file may hold at most 1 MiB (1048576 bytes): is this the right file?"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestReadFile_TooBig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.yaml")
	// Sparse: the size is what is checked, before any byte is read.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 50<<20); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("ReadFile(50 MB) = %v; want one Problem", err)
	}
	if got, want := ps[0].Error(), path+": file is 52428800 bytes; a configuration file may hold at most 1 MiB (1048576 bytes): is this the right file?"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if _, err := ReadFile(dir); err == nil || !strings.HasSuffix(err.Error(), ": cannot read: is a directory") {
		t.Errorf("ReadFile(a directory) = %v; want cannot read: is a directory", err)
	}
}

func TestReport_Warn(t *testing.T) {
	r := reportOf(t, "name: a\ncount: 3\nparts:\n  - {size: 1}\n")
	r.Warn("count", "unwise")
	r.WarnAt(0, "", "env T_X: unknown")
	r.Warn("parts[0].size", "small")
	if err := r.Err(); err != nil {
		t.Fatalf("Err() = %v; want nil: warnings do not refuse a file", err)
	}
	if !r.Clean("parts[0]") {
		t.Errorf("Clean(parts[0]) = false; want true: a warning leaves a value usable")
	}
	warnings := []string{
		"t.yaml: warning: env T_X: unknown",
		"t.yaml:2: count: warning: unwise",
		"t.yaml:4: parts[0].size: warning: small",
	}
	var got []string
	for _, w := range r.Warnings() {
		got = append(got, w.Error())
	}
	if !reflect.DeepEqual(got, warnings) {
		t.Errorf("Warnings():\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(warnings, "\n"))
	}
	// With a problem, the file is refused and every warning is listed too.
	r.Add("name", "bad")
	want := []string{
		"t.yaml: warning: env T_X: unknown",
		"t.yaml:1: name: bad",
		"t.yaml:2: count: warning: unwise",
		"t.yaml:4: parts[0].size: warning: small",
	}
	if got := messages(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProblems_Error_Limited(t *testing.T) {
	var ps Problems
	for i := range MaxListed + 5 {
		ps = append(ps, Problem{File: "t.yaml", Line: MaxListed + 5 - i, Key: "k", Msg: "x"})
	}
	lines := strings.Split(ps.Error(), "\n")
	if len(lines) != MaxListed+1 {
		t.Fatalf("got %d lines; want %d", len(lines), MaxListed+1)
	}
	if got, want := lines[0], "t.yaml:1: k: x"; got != want {
		t.Errorf("first line %q; want %q (sorted before cut)", got, want)
	}
	if got, want := lines[MaxListed], "t.yaml: … and 5 more problems, not listed (is this the right file?)"; got != want {
		t.Errorf("last line %q; want %q", got, want)
	}
	if n := len(strings.Split(ps[:MaxListed].Error(), "\n")); n != MaxListed {
		t.Errorf("%d problems print as %d lines; want all of them", MaxListed, n)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"HTTP_LISTEN", "LOG_LEVEL", "STORAGE_PATH"}
	for name, want := range map[string]string{
		"HTTP_LISTN": "HTTP_LISTEN", "http_listen": "HTTP_LISTEN", "STORAGE_PAHT": "STORAGE_PATH", "COLOUR": "", "": "",
	} {
		if got := Suggest(name, known); got != want {
			t.Errorf("Suggest(%q) = %q; want %q", name, got, want)
		}
	}
}

func ExampleSuggest() {
	fmt.Println(Suggest("paritty", []string{"baud", "parity", "stop_bits"}))
	// Output: parity
}
