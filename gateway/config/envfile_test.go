package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseEnvFile: each line as systemd reads it in an EnvironmentFile=
// (src/basic/env-file.c) — where a shell's `. FILE` reads it otherwise or
// runs part of it as a command.
func TestParseEnvFile(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"K = s3cret\n", "K=s3cret"},
		{`K="pa\"ss"` + "\n", `K=pa"ss`},
		{"K=trailing   \n", "K=trailing"},
		{"K=\"quoted\"  \n", "K=quoted"},
		{`K=a\\b` + "\n", `K=a\b`},
		{"K=crlf\r\n", "K=crlf"},
		{"K=a b\n", "K=a b"},
		{"K='single $x \\n'\n", `K=single $x \n`},
		{`K="a\nb\$c\\d"` + "\n", `K=a\nb$c\d`},
		{"K=\"one\\\ntwo\"\n", "K=onetwo"},
		{"K=one\\\ntwo\n", "K=onetwo"},
		{"K=\"a\"b'c'\n", "K=ab'c'"},
		{"  K=indented\n", "K=indented"},
		{"K=\n", "K="},
		{"K=no newline", "K=no newline"},
		{"K=a=b\n", "K=a=b"},
		{"# K=comment\n", ""},
		{"; K=comment\n", ""},
		{"not an assignment\n", ""},
		{"BAD-NAME=x\n", ""},
		{"1K=x\n", ""},
		{"export K=x\n", ""},
		{"K=first\nK=second\n", "K=first|K=second"},
	} {
		got, err := ParseEnvFile("environment", []byte(tc.in))
		if err != nil {
			t.Errorf("ParseEnvFile(%q): %v", tc.in, err)
			continue
		}
		var want []string
		if tc.want != "" {
			want = strings.Split(tc.want, "|")
		}
		if !slices.Equal(got, want) {
			t.Errorf("ParseEnvFile(%q) = %q; want %q", tc.in, got, want)
		}
	}
}

// TestReadEnvFile_Errors: a file that is not UTF-8 or not there is an
// error, as systemd will not start the service on it.
func TestReadEnvFile_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "environment")
	if err := os.WriteFile(bad, []byte("A=ok\nK=\xff\xfe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnvFile(bad); err == nil || !strings.Contains(err.Error(), bad+":2: not UTF-8") {
		t.Errorf("ReadEnvFile(not UTF-8) = %v; want %s:2: not UTF-8", err, bad)
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("ReadEnvFile(missing) = nil error; want one")
	}
	if _, err := ReadEnvFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadEnvFile(a directory) = %v; want not a regular file", err)
	}
}
