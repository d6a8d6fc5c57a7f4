package yamlcheck

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reportOf decodes file into a testFile and returns its report.
func reportOf(t *testing.T, file string) *Report {
	t.Helper()
	r := NewReport("t.yaml")
	var f testFile
	if !(Decoder{Defaults: testDefaults}).Decode(r, []byte(file), &f) {
		t.Fatalf("Decode(%q) = false; want true", file)
	}
	return r
}

// messages returns the problems r holds, sorted, as printed.
func messages(t *testing.T, r *Report) []string {
	t.Helper()
	err := r.Err()
	if err == nil {
		return nil
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Err() = %T; want *Problems", err)
	}
	var got []string
	for _, p := range *ps {
		got = append(got, p.Error())
	}
	return got
}

func TestReport_Err_NilWhenClean(t *testing.T) {
	r := reportOf(t, "name: a\n")
	if err := r.Err(); err != nil {
		t.Errorf("Err() = %#v; want a nil error, not a nil *Problems", err)
	}
}

func TestReport_Add(t *testing.T) {
	r := reportOf(t, "name: a\nparts:\n  - kind: a\n  - size: x\n")
	r.Add("parts[0].size", "missing")   // no line of its own: its entry's
	r.Add("parts[1].size", "too small") // failed to decode: left out
	r.Add("parts[1]", "whole")          // the entry itself is fine
	r.Add("wait", "required")           // absent: the document's line
	r.At(0, "", "about the file")
	want := []string{
		"t.yaml: about the file",
		"t.yaml:1: wait: required",
		"t.yaml:3: parts[0].size: missing",
		`t.yaml:4: parts[1].size: want an integer, got "x"`,
		"t.yaml:4: parts[1]: whole",
	}
	if got := messages(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReport_Override(t *testing.T) {
	r := reportOf(t, "count: x\nwait: 1s\nname: a\n")
	var count int
	if !r.Override("count", "env T_COUNT", "7", &count) || count != 7 {
		t.Errorf("Override(count, 7) = %d; want true and 7", count)
	}
	r.IntIn("count", count, 10, 20) // no longer silenced by the file's bad value
	var wait time.Duration
	if r.Override("wait", "env T_WAIT", "5", &wait) {
		t.Errorf("Override(wait, 5) = true; want false: a duration needs its unit")
	}
	r.DurationIn("wait", wait, time.Second, time.Minute) // silenced: one message per mistake
	if got, want := r.Where("wait"), "env T_WAIT"; got != want {
		t.Errorf("Where(wait) = %q; want %q", got, want)
	}
	if got, want := r.Where("name"), "line 3"; got != want {
		t.Errorf("Where(name) = %q; want %q", got, want)
	}
	want := []string{
		"t.yaml: count: env T_COUNT: want 10..20, got 7",
		`t.yaml: wait: env T_WAIT: want a duration like 500ms, 5s or 1m, got "5"`,
		`t.yaml:1: count: want an integer, got "x"`,
	}
	if got := messages(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReport_Clean(t *testing.T) {
	r := reportOf(t, "parts:\n  - {size: x}\n  - {size: 1}\n  - {size: 2}\n")
	r.Add("parts[2].kind", "bad")
	for key, want := range map[string]bool{"parts": false, "parts[0]": false, "parts[1]": true, "parts[2]": false, "part": true} {
		if got := r.Clean(key); got != want {
			t.Errorf("Clean(%s) = %v; want %v", key, got, want)
		}
	}
}

func TestReport_Checks(t *testing.T) {
	r := reportOf(t, "name: ''\ncount: 3\n")
	if r.Need("name", "") || r.Need("part.kind", "") || !r.Need("part.kind", "x") {
		t.Errorf("Need passed an empty value or failed a set one")
	}
	if r.OneOf("name", "c", "a", "b") || !r.OneOf("name", "a", "a", "b") {
		t.Errorf("OneOf passed a value outside its set or failed one in it")
	}
	if r.IntOneOf("count", 3, 1, 2) || r.IntIn("count", 3, 4, 5) || r.IntIn("big", -1, 0, math.MaxInt32) {
		t.Errorf("IntOneOf or IntIn passed a value out of range")
	}
	if r.DurationIn("wait", 90*time.Minute, 0, time.Hour) {
		t.Errorf("DurationIn passed a value out of range")
	}
	// Sorted by line, in the order found within one.
	want := []string{
		"t.yaml:1: name: must not be empty",
		"t.yaml:1: part.kind: required, not set",
		`t.yaml:1: name: want one of a, b, got "c"`,
		"t.yaml:1: big: want an integer >= 0, got -1",
		"t.yaml:1: wait: want 0s..1h, got 1h30m",
		"t.yaml:2: count: want one of 1, 2, got 3",
		"t.yaml:2: count: want 4..5, got 3",
	}
	if got := messages(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadFile_Unreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := ReadFile(path)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("ReadFile(missing) = %v; want one Problem", err)
	}
	if got, want := ps[0].Error(), path+": cannot read: no such file or directory"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if err := os.WriteFile(path, []byte("name: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(path); err != nil || string(data) != "name: a\n" {
		t.Errorf("ReadFile = %q, %v; want the file", data, err)
	}
}
