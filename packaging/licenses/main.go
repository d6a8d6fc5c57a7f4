// Command licenses writes the Debian package's
// /usr/share/doc/mallgrid/copyright (deb.sh runs it for each architecture):
// packaging/copyright, then one paragraph for each Go module linked into
// /usr/bin/mallgrid for that architecture and one for Go's standard library
// and runtime, each with the module's license text and its NOTICE and
// PATENTS files. The binary links them all statically, so their texts go
// with it: the MIT and BSD licenses ask for the notice in every copy, the
// Apache license for the NOTICE file. The full Apache-2.0 text is left to
// /usr/share/common-licenses/Apache-2.0, as Debian wants (lintian refuses it
// in a copyright file).
//
// The modules are those `go list -deps ./cmd/mallgrid` names for
// GOOS=linux and the architecture given, and the texts come from the module
// cache: run it where the binary is built.
//
//	go run ./packaging/licenses -goarch arm -goarm 7 > copyright
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	goarch := flag.String("goarch", "", "GOARCH of the binary (required)")
	goarm := flag.String("goarm", "", "GOARM of the binary (arm only)")
	header := flag.String("header", "packaging/copyright", "the copyright file of mallgrid itself, printed first")
	unlicensed := flag.String("unlicensed", "packaging/licenses/unlicensed.txt", "the modules accepted without a license the tool recognises")
	flag.Parse()
	if *goarch == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: licenses -goarch GOARCH [-goarm N] [-header FILE] [-unlicensed FILE]")
		os.Exit(2)
	}
	if err := run(os.Stdout, *header, *unlicensed, *goarch, *goarm); err != nil {
		fmt.Fprintln(os.Stderr, "licenses:", err)
		os.Exit(1)
	}
}

// module is one Go module linked into the binary, or Go itself.
type module struct {
	path, version, dir string
}

// run writes the copyright file to w; it writes nothing and fails if a
// module, or Go, has no license it recognises and unlicensed does not list
// it.
func run(w io.Writer, header, unlicensed, goarch, goarm string) error {
	head, err := os.ReadFile(header)
	if err != nil {
		return err
	}
	list, err := os.ReadFile(unlicensed)
	if err != nil {
		return err
	}
	allowed, err := unlicensedList(string(list))
	if err != nil {
		return fmt.Errorf("%s: %w", unlicensed, err)
	}
	mods, err := linkedModules(goarch, goarm)
	if err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	goversion, err := goEnv("GOVERSION")
	if err != nil {
		return err
	}
	var out bytes.Buffer
	var refused []error
	out.Write(head)
	for _, m := range mods {
		files, err := readNotices(m.dir)
		if err != nil {
			return fmt.Errorf("module %s %s: %w", m.path, m.version, err)
		}
		if err := checkLicense(m.path, m.version, files, allowed); err != nil {
			refused = append(refused, err)
		}
		out.WriteString("\n")
		out.WriteString(paragraph("vendor/"+m.path+"/*", "the Go module "+m.path+" "+m.version, files))
	}
	files, err := readNotices(goroot)
	if err != nil {
		return fmt.Errorf("the Go installation's notices: %w", err)
	}
	if err := checkLicense("go/src", goversion, files, allowed); err != nil {
		refused = append(refused, err)
	}
	if len(refused) > 0 {
		return errors.Join(refused...)
	}
	out.WriteString("\n")
	out.WriteString(paragraph("go/src/*", "Go's standard library and runtime, "+goversion, files))
	_, err = w.Write(out.Bytes())
	return err
}

// goCommand is the go tool deb.sh uses ($GO), or go.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

func goEnv(name string) (string, error) {
	out, err := exec.Command(goCommand(), "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// linkedModules lists the modules of the packages ./cmd/mallgrid is built
// from for linux/goarch (a module may be linked on one architecture and not
// another), sorted by path, each with its directory in the module cache.
func linkedModules(goarch, goarm string) ([]module, error) {
	cmd := exec.Command(goCommand(), "list", "-deps", "-f",
		`{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{with .Replace}}{{.Dir}}{{else}}{{.Dir}}{{end}}{{end}}{{end}}`,
		"./cmd/mallgrid")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	seen := map[string]module{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) < 2 {
			continue
		}
		m := module{path: f[0], version: f[1]}
		if len(f) == 3 {
			m.dir = f[2]
		}
		if m.dir == "" {
			return nil, fmt.Errorf("module %s %s is not in the module cache (go mod download)", m.path, m.version)
		}
		seen[m.path] = m
	}
	mods := make([]module, 0, len(seen))
	for _, m := range seen {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].path < mods[j].path })
	return mods, nil
}

// notice is one license or notice file of a module's root.
type notice struct {
	name string
	text string
}

// readNotices reads the license files at the root of dir: the license
// first (LICENSE, LICENCE or COPYING, with any extension), then NOTICE,
// PATENTS and the texts a dual license names (paho's epl-v20, edl-v10), in
// name order.
func readNotices(dir string) ([]notice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var license, others []notice
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		kind := noticeKind(e.Name())
		if kind == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		n := notice{name: e.Name(), text: string(b)}
		if kind == "license" && len(license) == 0 {
			license = append(license, n)
		} else {
			others = append(others, n)
		}
	}
	return append(license, others...), nil
}

// noticeKind says whether a file name is a license ("license"), another
// notice ("notice") or neither ("").
func noticeKind(name string) string {
	base := strings.ToLower(name)
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	switch {
	case base == "license" || base == "licence" || base == "copying":
		return "license"
	case base == "notice" || base == "patents" || strings.HasPrefix(base, "epl-v") || strings.HasPrefix(base, "edl-v"):
		return "notice"
	}
	return ""
}
