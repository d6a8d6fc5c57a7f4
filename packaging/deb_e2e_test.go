//go:build e2e

package packaging

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

// debArches maps each Debian architecture the package is built for to the
// ELF machine and the Go settings its binary must have.
var debArches = []struct {
	deb     string
	machine elf.Machine
	goarch  string
	goarm   string
}{
	{"amd64", elf.EM_X86_64, "amd64", ""},
	{"arm64", elf.EM_AARCH64, "arm64", ""},
	{"armhf", elf.EM_ARM, "arm", "7"},
}

// need returns the path of a tool; without it the test fails under CI
// (.ci/run installs it) and is skipped elsewhere.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (.ci/run installs it): %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// cmdOut runs a command and fails the test with its output if it fails.
func cmdOut(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debsBuilt holds the first buildDebs' result: `make deb` takes a minute,
// and the packages of one tree are the same for every test.
var debsBuilt struct {
	sync.Mutex
	version string
	debs    map[string]string
}

// buildDebs runs `make deb` once per test binary and returns the version and
// the packages by Debian architecture.
func buildDebs(t *testing.T) (string, map[string]string) {
	t.Helper()
	need(t, "make")
	debsBuilt.Lock()
	defer debsBuilt.Unlock()
	if debsBuilt.debs != nil {
		return debsBuilt.version, debsBuilt.debs
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(cmdOut(t, root, "packaging/version.sh"))
	debs := map[string]string{}
	for _, a := range debArches {
		debs[a.deb] = filepath.Join(root, "dist", "mallgrid_"+version+"_"+a.deb+".deb")
		os.Remove(debs[a.deb]) // a package of an earlier run proves nothing
	}
	cmdOut(t, root, "make", "deb")
	debsBuilt.version, debsBuilt.debs = version, debs
	return version, debs
}

// TestE2E_Deb builds the three packages and checks each: lintian clean of
// errors and warnings, the control fields, the files, the conffile, and a
// binary for its architecture.
func TestE2E_Deb(t *testing.T) {
	need(t, "dpkg-deb")
	need(t, "lintian")
	version, debs := buildDebs(t)
	for _, a := range debArches {
		t.Run(a.deb, func(t *testing.T) {
			deb := debs[a.deb]
			// --fail-on makes warnings fail the run too; the tags are
			// also read so that the failure names them.
			lint := exec.Command("lintian", "--fail-on", "error,warning", deb)
			out, err := lint.CombinedOutput()
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
					t.Errorf("lintian: %s", line)
				}
			}
			if err != nil {
				t.Errorf("lintian: %v\n%s", err, out)
			}

			for field, want := range map[string]string{
				"Package":      "mallgrid",
				"Version":      version,
				"Architecture": a.deb,
				"Depends":      "systemd",
			} {
				if got := strings.TrimSpace(cmdOut(t, "", "dpkg-deb", "-f", deb, field)); got != want {
					t.Errorf("%s: %s; want %s", field, got, want)
				}
			}

			list := cmdOut(t, "", "dpkg-deb", "-c", deb)
			for _, p := range []string{
				"-rwxr-xr-x root/root .* ./usr/bin/mallgrid$",
				"./lib/systemd/system/mallgrid.service$",
				"./etc/mallgrid/mallgrid.yaml$",
				"./usr/lib/sysusers.d/mallgrid.conf$",
				"./usr/lib/tmpfiles.d/mallgrid.conf$",
				"./usr/share/doc/mallgrid/copyright$",
				"./usr/share/doc/mallgrid/changelog.gz$",
				"./usr/share/doc/mallgrid/README.md$",
				"./usr/share/man/man1/mallgrid.1.gz$",
				"./usr/share/man/man1/mallgrid-run.1.gz$",
			} {
				if !regexp.MustCompile("(?m)" + p).MatchString(list) {
					t.Errorf("dpkg-deb -c: no line matching %q", p)
				}
			}
			// The package ships no database and no state directory:
			// postinst makes the directory, the gateway the file.
			if strings.Contains(list, "./var/lib/mallgrid") {
				t.Errorf("dpkg-deb -c: the package holds /var/lib/mallgrid; want it made by postinst only")
			}

			ctl := t.TempDir()
			cmdOut(t, "", "dpkg-deb", "-e", deb, ctl)
			conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/mallgrid/mallgrid.yaml" {
				t.Errorf("conffiles = %q, %v; want /etc/mallgrid/mallgrid.yaml", conffiles, err)
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				if _, err := os.Stat(filepath.Join(ctl, s)); err != nil {
					t.Errorf("maintainer script %s: %v", s, err)
				}
			}

			bin := filepath.Join(t.TempDir(), "mallgrid")
			extractFile(t, deb, "./usr/bin/mallgrid", bin)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("binary: %v", err)
			}
			defer f.Close()
			if f.Machine != a.machine {
				t.Errorf("binary for %v; want %v", f.Machine, a.machine)
			}
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatalf("binary build info: %v", err)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			if settings["GOARCH"] != a.goarch || settings["GOARM"] != a.goarm || settings["CGO_ENABLED"] != "0" {
				t.Errorf("built with GOARCH=%q GOARM=%q CGO_ENABLED=%q; want %q %q 0",
					settings["GOARCH"], settings["GOARM"], settings["CGO_ENABLED"], a.goarch, a.goarm)
			}
			// Every module linked into the binary has its license in
			// the copyright file, and Go its own.
			copyright := filepath.Join(t.TempDir(), "copyright")
			extractFile(t, deb, "./usr/share/doc/mallgrid/copyright", copyright)
			text, err := os.ReadFile(copyright)
			if err != nil {
				t.Fatal(err)
			}
			paragraphs := strings.Split(string(text), "\n\n")
			unlicensed := readUnlicensed(t)
			for _, dep := range append(bi.Deps, &debug.Module{Path: "go/src"}) {
				files := "Files: vendor/" + dep.Path + "/*\n"
				if dep.Path == "go/src" {
					files = "Files: go/src/*\n"
				}
				var p string
				for _, q := range paragraphs {
					if strings.HasPrefix(q, files) {
						p = q
					}
				}
				if p == "" {
					t.Errorf("copyright: no paragraph %q for %s %s", strings.TrimSpace(files), dep.Path, dep.Version)
					continue
				}
				if !licenseWithText.MatchString(p) {
					t.Errorf("copyright: %s has no license text:\n%s", dep.Path, p)
				}
				if m := unlicensedField.FindString(p); m != "" && !unlicensed[dep.Path+" "+dep.Version] {
					t.Errorf("copyright: %s %s has %q and is not in licenses/unlicensed.txt:\n%s", dep.Path, dep.Version, m, p)
				}
				if dep.Version != "" && !strings.Contains(p, dep.Path+" "+dep.Version+",") {
					t.Errorf("copyright: %s does not name version %s:\n%s", dep.Path, dep.Version, p)
				}
			}

			if a.goarch == runtime.GOARCH {
				if got := cmdOut(t, "", bin, "version"); got != "mallgrid "+version+"\n" {
					t.Errorf("mallgrid version: %q; want the package's %s", got, version)
				}
			}
		})
	}
}

// unlicensedField is a License field that names no license the tool
// recognised.
var unlicensedField = regexp.MustCompile(`(?m)^License: (unspecified|.*\bunknown\b.*)$`)

// readUnlicensed is licenses/unlicensed.txt: the modules allowed without a
// license the tool recognises, as "MODULE VERSION".
func readUnlicensed(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("licenses/unlicensed.txt")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			allowed[f[0]+" "+f[1]] = true
		}
	}
	return allowed
}

// licenseWithText is a DEP5 License field with its text (or, for
// Apache-2.0, the pointer to common-licenses) on the lines after it.
var licenseWithText = regexp.MustCompile(`(?m)^License: \S.*\n \S`)

// extractFile writes one file of a package's data to dst.
func extractFile(t *testing.T, deb, member, dst string) {
	t.Helper()
	fsys := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	tar := exec.Command("tar", "-xO", member)
	var err error
	if tar.Stdin, err = fsys.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	tar.Stdout, tar.Stderr = &out, &stderr
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Run(); err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile: %v", err)
	}
	if err := tar.Wait(); err != nil {
		t.Fatalf("tar -xO %s: %v %s", member, err, stderr.String())
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
}
