package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// gitRepo makes a repository of three commits holding version.sh and
// VERSION, and returns its directory.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := filepath.Join(t.TempDir(), "origin")
	if err := os.MkdirAll(filepath.Join(dir, "packaging"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"version.sh", "VERSION"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "packaging", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "-q")
	git(t, dir, "add", ".")
	for i := 0; i < 3; i++ {
		git(t, dir, "commit", "-q", "--allow-empty", "-m", "commit")
	}
	return dir
}

// git runs git in dir with a fixed identity and no user configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestVersion_ShallowCloneRefused: a `git clone --depth 1` counts one
// commit, which would version the package below every one installed before
// (apt: a downgrade); version.sh refuses it and says how to fetch the rest.
// A full clone gets the count of every commit.
func TestVersion_ShallowCloneRefused(t *testing.T) {
	origin := gitRepo(t)
	base, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}

	full := filepath.Join(t.TempDir(), "full")
	git(t, "", "clone", "-q", origin, full)
	out, err := exec.Command(filepath.Join(full, "packaging", "version.sh")).CombinedOutput()
	want := regexp.MustCompile(`^` + regexp.QuoteMeta(strings.TrimSpace(string(base))) + `\+git3\.[0-9a-f]{7}\n$`)
	if err != nil || !want.Match(out) {
		t.Errorf("version.sh in a full clone: %q, %v; want %s", out, err, want)
	}

	shallow := filepath.Join(t.TempDir(), "shallow")
	git(t, "", "clone", "-q", "--depth", "1", "file://"+origin, shallow)
	cmd := exec.Command(filepath.Join(shallow, "packaging", "version.sh"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil {
		t.Errorf("version.sh in a shallow clone: %q, exit 0; want a refusal", stdout.String())
	}
	if stdout.String() != "" {
		t.Errorf("version.sh in a shallow clone printed the version %q; want none", stdout.String())
	}
	if !strings.Contains(stderr.String(), "git fetch --unshallow") {
		t.Errorf("version.sh in a shallow clone said %q; want how to fetch the whole history", stderr.String())
	}
}
