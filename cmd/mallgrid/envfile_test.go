package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mallgrid/gateway/config"
)

// envFile is where the unit reads the secrets the configuration leaves to
// the environment (MALLGRID_UPLINK_PASSWORD, MALLGRID_UPLINK_QR_SECRET, …).
const envFile = "/etc/mallgrid/environment"

// The example, the group's and the stickers' documents tell the technician
// to put secrets in "the service's environment file": the unit must read
// one, optional (a mall without secrets has none, and the service must
// still start), and every such document must say where it is.
func TestUnit_EnvironmentFile(t *testing.T) {
	if got := unitKeys(t)["EnvironmentFile"]; !slices.Equal(got, []string{"-" + envFile}) {
		t.Errorf("EnvironmentFile = %q; want [-%s] (optional: - before the path)", got, envFile)
	}
	for _, f := range []string{"../../README.md", "../../docs/GROUP.md", "../../docs/QR.md", "../../configs/mallgrid.example.yaml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "environment file") && !strings.Contains(string(raw), envFile) {
			t.Errorf("%s speaks of the service's environment file but never says it is %s", f, envFile)
		}
	}
}

// The README's way to check the configuration as the service will see
// it — with the environment file's variables, read as systemd reads them
// (spaces around =, a quote escaped in double quotes) — passes a file whose sticker secret is only there; the
// plain check, without them, refuses it.
func TestUnit_EnvironmentFile_ReadmeCheck(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^sudo (mallgrid config check --env-file ` + regexp.QuoteMeta(envFile) + ` -c /etc/mallgrid/mallgrid\.yaml)$`).FindSubmatch(raw)
	if line == nil {
		t.Fatalf("README.md has no line `sudo mallgrid config check --env-file %s -c /etc/mallgrid/mallgrid.yaml`", envFile)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "mallgrid.yaml")
	env := filepath.Join(dir, "environment")
	if err := os.WriteFile(conf, []byte(`site: {name: Env Plaza}
buses: [{name: b1, port: /dev/ttyUSB0}]
uplink:
  site_id: env-plaza
  qr: {url: "https://pay.example/m/{site}?t={tenant}&k={key}&s={sig}"}
`), 0o640); err != nil {
		t.Fatal(err)
	}
	// Spaces around = and a quote inside quotes: systemd reads them; a
	// shell's `. FILE` would run the line as a command.
	if err := os.WriteFile(env, []byte("# the stickers' secret\n"+config.QRSecretVar+" = \"a secret of 32 bytes and \\\"more\\\", $pace\"\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(strings.NewReplacer(envFile, env, "/etc/mallgrid/mallgrid.yaml", conf).Replace(string(line[1])))[1:]
	var withoutSecret []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, config.QRSecretVar+"=") {
			withoutSecret = append(withoutSecret, kv)
		}
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = withoutSecret
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), ": ok (") {
		t.Errorf("mallgrid %s: %v\n%s\nwant ok", strings.Join(args, " "), err, out)
	}
	cmd = exec.Command(binary, "config", "check", "-c", conf)
	cmd.Env = withoutSecret
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "uplink.qr.secret: required") {
		t.Errorf("config check without the environment file: %v\n%s\nwant exit 2, uplink.qr.secret required", err, out)
	}
}
