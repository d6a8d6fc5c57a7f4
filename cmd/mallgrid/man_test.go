package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMan_WritesPages(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1764547200") // 2025-12-01
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"man", dir}, &out, &errOut); code != 0 {
		t.Fatalf("man: exit %d: %s", code, errOut.String())
	}
	for _, name := range []string{"mallgrid.1", "mallgrid-run.1", "mallgrid-config-check.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("page %s: %v", name, err)
		}
		if !strings.Contains(string(b), `.TH "MALLGRID" "1" "Dec 2025"`) {
			t.Errorf("%s: header %q; want the title, section 1 and the date of SOURCE_DATE_EPOCH", name, strings.SplitN(string(b), "\n", 3)[1])
		}
	}
	// The hidden command documents nothing, and no completion page.
	for _, name := range []string{"mallgrid-man.1", "mallgrid-completion.1"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("page %s written; want none", name)
		}
	}
}

func TestManDate(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }
	if got, err := manDate("", now); err != nil || !got.Equal(now()) {
		t.Errorf("manDate(\"\") = %v, %v; want now", got, err)
	}
	if got, err := manDate("0", now); err != nil || !got.Equal(time.Unix(0, 0)) {
		t.Errorf("manDate(0) = %v, %v; want the epoch", got, err)
	}
	if _, err := manDate("yesterday", now); err == nil {
		t.Error("manDate(yesterday): no error; want one")
	}
}
