package packaging

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The maintainer scripts run here as dpkg runs them — sh, the script's
// arguments — with every tool they call replaced by a stub on PATH that logs
// its arguments, and the absolute paths they test (/run/systemd/system,
// /etc/mallgrid, /var/lib/mallgrid) moved under a temporary directory. Only
// sh and coreutils are needed, and nothing on the machine is touched.

// scriptPaths are the absolute paths the scripts use, each moved under the
// test's root.
var scriptPaths = []string{"/run/systemd/system", "/etc/mallgrid", "/var/lib/mallgrid"}

// maintEnv is one machine as the maintainer scripts see it.
type maintEnv struct {
	t    *testing.T
	root string // where scriptPaths live
	bin  string // the stubs, first on PATH
	log  string // one line per stub call: name and arguments
}

// stubbedTools are the commands the scripts call; each stub logs its call
// and succeeds unless a test gives it a body.
var stubbedTools = []string{
	"systemd-sysusers", "systemd-tmpfiles", "dpkg-statoverride",
	"deb-systemd-helper", "deb-systemd-invoke", "systemctl", "mallgrid",
}

func newMaintEnv(t *testing.T) *maintEnv {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	root := t.TempDir()
	e := &maintEnv{t: t, root: root, bin: filepath.Join(root, "stubs"), log: filepath.Join(root, "calls")}
	for _, d := range []string{e.bin, e.path("/etc/mallgrid")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range stubbedTools {
		e.stub(name, "exit 0")
	}
	// No statoverride yet: --list finds none.
	e.stub("dpkg-statoverride", `case $1 in --list) exit 1 ;; esac`)
	e.stub("mallgrid", `echo "$4: ok (1 buses, 1 meters, 1 tenants)"`)
	return e
}

// path is p (one of scriptPaths or below one) on this test's machine.
func (e *maintEnv) path(p string) string { return filepath.Join(e.root, p) }

// systemdRunning makes /run/systemd/system exist: systemd is PID 1.
func (e *maintEnv) systemdRunning() {
	if err := os.MkdirAll(e.path("/run/systemd/system"), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// stub replaces the tool name by a script that logs its call, then runs
// body (sh).
func (e *maintEnv) stub(name, body string) {
	e.t.Helper()
	script := "#!/bin/sh\necho \"" + name + " $*\" >>'" + e.log + "'\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(e.bin, name), []byte(script), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// run runs the maintainer script name (postinst, prerm, postrm) with args
// and returns what it printed and its error.
func (e *maintEnv) run(name string, args ...string) (string, error) {
	e.t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		e.t.Fatal(err)
	}
	script := string(src)
	for _, p := range scriptPaths {
		script = strings.ReplaceAll(script, p, e.path(p))
	}
	copied := filepath.Join(e.root, name)
	if err := os.WriteFile(copied, []byte(script), 0o755); err != nil {
		e.t.Fatal(err)
	}
	// A script that blocks (on a FIFO, say) fails the test rather than
	// hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{copied}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = []string{"PATH=" + e.bin + ":/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustRun is run for a script that must succeed.
func (e *maintEnv) mustRun(name string, args ...string) string {
	e.t.Helper()
	out, err := e.run(name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// calls are the stub calls so far, one "name args" each.
func (e *maintEnv) calls() []string {
	e.t.Helper()
	b, err := os.ReadFile(e.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// called says whether a stub call starts with prefix.
func (e *maintEnv) called(prefix string) bool {
	for _, c := range e.calls() {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// pathsRecord is where prerm records, at removal, where the database is.
const pathsRecord = "/var/lib/mallgrid-package.paths"

const (
	upgradeFrom = "0.16.0+git600.abc1234"
	tryRestart  = "deb-systemd-invoke try-restart mallgrid.service"
)

// TestPostinst_Upgrade_ConfigRefused: an upgrade whose binary refuses the
// file in place leaves the running gateway alone — a try-restart would stop
// it and start a program that exits at once — and says what to do.
func TestPostinst_Upgrade_ConfigRefused(t *testing.T) {
	e := newMaintEnv(t)
	e.systemdRunning()
	e.stub("mallgrid", `echo "$4:12: storage.path: too long" >&2; exit 2`)
	out := e.mustRun("postinst", "configure", upgradeFrom)
	if e.called(tryRestart) {
		t.Errorf("postinst called %q with a refused configuration; calls:\n%s", tryRestart, strings.Join(e.calls(), "\n"))
	}
	for _, want := range []string{"storage.path: too long", "has problems", "not restarted", "systemctl restart mallgrid"} {
		if !strings.Contains(out, want) {
			t.Errorf("postinst said:\n%s\nwant %q", out, want)
		}
	}
	if !e.called("systemctl --system daemon-reload") {
		t.Errorf("no daemon-reload: the new unit file is not loaded")
	}
}

// TestPostinst_Upgrade_ConfigOK: an upgrade with a file the new binary
// accepts restarts the service (if it runs: try-restart).
func TestPostinst_Upgrade_ConfigOK(t *testing.T) {
	e := newMaintEnv(t)
	e.systemdRunning()
	out := e.mustRun("postinst", "configure", upgradeFrom)
	if !e.called(tryRestart) {
		t.Errorf("postinst did not call %q; calls:\n%s", tryRestart, strings.Join(e.calls(), "\n"))
	}
	if strings.Contains(out, "not restarted") || strings.Contains(out, "has problems") {
		t.Errorf("postinst said:\n%s\nwant no problem reported", out)
	}
}

// TestPostinst_Upgrade_NoSystemd: without systemd running (a chroot, an
// image being built) nothing is restarted, whatever the check says.
func TestPostinst_Upgrade_NoSystemd(t *testing.T) {
	e := newMaintEnv(t)
	e.mustRun("postinst", "configure", upgradeFrom)
	if e.called("deb-systemd-invoke") || e.called("systemctl") {
		t.Errorf("postinst called systemd without systemd running; calls:\n%s", strings.Join(e.calls(), "\n"))
	}
}

// TestPostinst_FirstInstall: the example file's problems are printed, the
// service is neither started nor enabled, and the script succeeds.
func TestPostinst_FirstInstall(t *testing.T) {
	for _, check := range []string{"exit 0", "exit 2"} {
		e := newMaintEnv(t)
		e.systemdRunning()
		e.stub("mallgrid", check)
		out := e.mustRun("postinst", "configure")
		if e.called("deb-systemd-invoke") || e.called("systemctl enable") || e.called("systemctl start") {
			t.Errorf("check %s: the first install started or enabled the service; calls:\n%s", check, strings.Join(e.calls(), "\n"))
		}
		if strings.Contains(out, "not restarted") {
			t.Errorf("check %s: postinst said:\n%s\nwant nothing about a restart on a first install", check, out)
		}
		if !strings.Contains(out, "systemctl enable --now mallgrid") {
			t.Errorf("check %s: postinst said:\n%s\nwant the next step", check, out)
		}
		if got := strings.Contains(out, "has problems"); got != (check == "exit 2") {
			t.Errorf("check %s: postinst said:\n%s\nwant \"has problems\" %v", check, out, !got)
		}
		if !e.called("dpkg-statoverride --update --add root mallgrid 0640 " + e.path("/etc/mallgrid/mallgrid.yaml")) {
			t.Errorf("check %s: no statoverride root:mallgrid 0640; calls:\n%s", check, strings.Join(e.calls(), "\n"))
		}
	}
}

// useRealMallgrid puts the mallgrid binary built from this tree where the
// stub was: the tests that need the environment file read as systemd reads
// it (the binary's --env-file) run the real thing.
func (e *maintEnv) useRealMallgrid() {
	e.t.Helper()
	if testing.Short() {
		e.t.Skip("builds mallgrid")
	}
	bin := filepath.Join(e.bin, "mallgrid")
	if err := os.Remove(bin); err != nil {
		e.t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", bin, "../cmd/mallgrid")
	if out, err := build.CombinedOutput(); err != nil {
		e.t.Fatalf("go build: %v\n%s", err, out)
	}
}

// serviceEnvLines are an environment file's lines that systemd and a shell
// read differently: spaces around =, an escaped quote, blanks after a
// quoted value, a carriage return, and variables (PATH, conf) that, had
// the script's own shell taken them, would change which mallgrid runs as
// root and which file it checks.
var serviceEnvLines = []string{
	"# the uplink",
	"MALLGRID_UPLINK_QR_SECRET = \"a secret of 32 bytes \\\"and\\\" more, $pace\"   \r",
	"PATH=/nowhere",
	"conf=/nowhere/mallgrid.yaml",
	"; a comment too",
	"MALLGRID_STORAGE_PATH = /srv/ledger\\ A/mallgrid.db  ",
	"not an assignment",
	"BAD-NAME=x",
}

// serviceConf is a configuration the check passes only with the uplink's
// QR secret, which the environment file holds.
const serviceConf = `site: {name: Env Plaza}
buses: [{name: b1, port: /dev/ttyUSB0}]
uplink:
  site_id: env-plaza
  qr: {url: "https://pay.example/m/{site}?t={tenant}&k={key}&s={sig}"}
`

// writeServiceFiles puts serviceConf and serviceEnvLines where the scripts
// look for the configuration and the unit's environment file.
func (e *maintEnv) writeServiceFiles() {
	e.t.Helper()
	if err := os.WriteFile(e.path("/etc/mallgrid/mallgrid.yaml"), []byte(serviceConf), 0o640); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.path("/etc/mallgrid/environment"), []byte(strings.Join(serviceEnvLines, "\n")), 0o640); err != nil {
		e.t.Fatal(err)
	}
}

// TestPostinst_CheckReadsEnvironmentFile: the check sees the variables of
// the unit's EnvironmentFile=, read as systemd reads it, so that a file
// whose secrets live there is not refused (and the service left
// unrestarted) for want of them; the script's own shell neither reads nor
// runs the file.
func TestPostinst_CheckReadsEnvironmentFile(t *testing.T) {
	e := newMaintEnv(t)
	e.systemdRunning()
	e.useRealMallgrid()
	e.writeServiceFiles()
	out := e.mustRun("postinst", "configure", upgradeFrom)
	if !strings.Contains(out, e.path("/etc/mallgrid/mallgrid.yaml")+": ok (") || strings.Contains(out, "has problems") || !e.called(tryRestart) {
		t.Errorf("postinst said:\n%s\nwant the check to see the environment file's variables and the service restarted", out)
	}

	// Without the file the same configuration is refused: the check did
	// read it.
	os.Remove(e.path("/etc/mallgrid/environment"))
	out = e.mustRun("postinst", "configure", upgradeFrom)
	if !strings.Contains(out, "uplink.qr.secret") || !strings.Contains(out, "has problems") {
		t.Errorf("postinst without the environment file said:\n%s\nwant uplink.qr.secret refused", out)
	}
}

// TestMaintScripts_NoShellReadsEnvironmentFile: neither script sources,
// reads or evaluates the environment file: only the binary reads it.
func TestMaintScripts_NoShellReadsEnvironmentFile(t *testing.T) {
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{`<"$envfile"`, `< "$envfile"`, `. "$envfile"`, "eval ", "export "} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s holds %q: the shell reads the environment file", name, bad)
			}
		}
	}
}

// TestPrerm_RecordReadsEnvironmentFile: the record of where the database
// is takes the environment file's MALLGRID_STORAGE_PATH as systemd reads it.
func TestPrerm_RecordReadsEnvironmentFile(t *testing.T) {
	e := newMaintEnv(t)
	e.useRealMallgrid()
	e.writeServiceFiles()
	if err := os.MkdirAll(e.path("/var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.mustRun("prerm", "remove")
	got, err := os.ReadFile(e.path(pathsRecord))
	if want := "database /srv/ledger A/mallgrid.db\nsnapshots /srv/ledger A/snapshots\n"; err != nil || string(got) != want {
		t.Errorf("prerm remove recorded %q, %v; want %q", got, err, want)
	}
}

// TestPurge_SaysWhereTheDatabaseIs: prerm records, at removal, where the
// configuration keeps the database and snapshots (storage.path may name
// another place than /var/lib/mallgrid, and the environment file may
// override it); the purge, which runs after dpkg deleted the configuration,
// says so and drops the record.
func TestPurge_SaysWhereTheDatabaseIs(t *testing.T) {
	e := newMaintEnv(t)
	e.systemdRunning()
	if err := os.MkdirAll(e.path("/var/lib/mallgrid"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("/etc/mallgrid/environment"), []byte("MALLGRID_STORAGE_PATH=/srv/ledger/mallgrid.db\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// The file holds one plain line: the stub can read it so.
	e.stub("mallgrid", `[ "$1 $2 $5" = "config paths --env-file" ] || exit 64
. "$6"
db=${MALLGRID_STORAGE_PATH:-/var/lib/mallgrid/mallgrid.db}
echo "database $db"; echo "snapshots ${db%/*}/snapshots"`)
	e.mustRun("prerm", "remove")
	if !e.called("deb-systemd-invoke stop mallgrid.service") {
		t.Errorf("prerm remove did not stop the service; calls:\n%s", strings.Join(e.calls(), "\n"))
	}
	record := e.path(pathsRecord)
	got, err := os.ReadFile(record)
	if want := "database /srv/ledger/mallgrid.db\nsnapshots /srv/ledger/snapshots\n"; err != nil || string(got) != want {
		t.Errorf("prerm remove recorded %q, %v; want %q", got, err, want)
	}

	// dpkg deletes the binary and the configuration before postrm purge.
	e.stub("mallgrid", "exit 127")
	os.Remove(e.path("/etc/mallgrid/environment"))
	e.mustRun("postrm", "remove")
	out := e.mustRun("postrm", "purge")
	for _, want := range []string{"kept in /srv/ledger/mallgrid.db", "snapshots are kept in /srv/ledger/snapshots", "back them up"} {
		if !strings.Contains(out, want) {
			t.Errorf("postrm purge said:\n%s\nwant %q", out, want)
		}
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("purge left the record %s: %v", record, err)
	}
	if _, err := os.Stat(e.path("/var/lib/mallgrid")); err != nil {
		t.Errorf("purge touched the state directory: %v", err)
	}
}

// TestPurge_NothingRecorded: a configuration the binary refused at removal
// records nothing (and a record of an earlier removal is not left to
// mislead); the purge names the state directory and how to find a database
// kept elsewhere.
func TestPurge_NothingRecorded(t *testing.T) {
	e := newMaintEnv(t)
	if err := os.MkdirAll(e.path("/var/lib/mallgrid"), 0o750); err != nil {
		t.Fatal(err)
	}
	record := e.path(pathsRecord)
	if err := os.WriteFile(record, []byte("database /old/place.db\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.stub("mallgrid", `echo "$4:3: buses[0].parity: want one of N, E, O" >&2; exit 2`)
	e.mustRun("prerm", "remove")
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("prerm left a record with a refused configuration: %v", err)
	}
	out := e.mustRun("postrm", "purge")
	for _, want := range []string{"kept in " + e.path("/var/lib/mallgrid"), "storage.path", "*.db.id"} {
		if !strings.Contains(out, want) {
			t.Errorf("postrm purge said:\n%s\nwant %q", out, want)
		}
	}
	if strings.Contains(out, "/old/place.db") {
		t.Errorf("postrm purge said:\n%s\nwant nothing of the earlier removal's record", out)
	}
}

// TestPrerm_Upgrade: an upgrade neither stops the service (postinst
// restarts it) nor records anything.
func TestPrerm_Upgrade(t *testing.T) {
	e := newMaintEnv(t)
	e.systemdRunning()
	if err := os.MkdirAll(e.path("/var/lib/mallgrid"), 0o750); err != nil {
		t.Fatal(err)
	}
	e.mustRun("prerm", "upgrade", "0.16.0+git700.def5678")
	if len(e.calls()) != 0 {
		t.Errorf("prerm upgrade called:\n%s\nwant nothing", strings.Join(e.calls(), "\n"))
	}
	if _, err := os.Stat(e.path(pathsRecord)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("prerm upgrade recorded the paths: %v", err)
	}
}

// TestMaintScripts_OneServiceEnv: postinst and prerm run mallgrid with the
// environment file with the same function (each maintainer script stands alone, as
// dpkg runs it).
func TestMaintScripts_OneServiceEnv(t *testing.T) {
	var funcs []string
	for _, name := range []string{"postinst", "prerm"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i := strings.Index(s, "\nservice_mallgrid() {\n")
		j := strings.Index(s[max(i, 0):], "\n}\n")
		if i < 0 || j < 0 {
			t.Fatalf("%s has no service_mallgrid function", name)
		}
		funcs = append(funcs, s[i:i+j])
	}
	if funcs[0] != funcs[1] {
		t.Errorf("service_env differs:\npostinst:%s\nprerm:%s", funcs[0], funcs[1])
	}
}

// TestPrerm_RecordNothingFollowed: the state directory belongs to the user
// mallgrid, who can put anything at any name in it; prerm and postrm run as
// root and neither write nor read there. Where the record goes (a place
// only root writes), whatever is found at its name — a symbolic link, a
// directory, a FIFO — is neither written through nor read: the removal and
// the purge succeed and do not block, and a file the link points to is left
// as it was.
func TestPrerm_RecordNothingFollowed(t *testing.T) {
	const oldRecord = "/var/lib/mallgrid/removed-package.paths"
	for _, place := range []string{oldRecord, oldRecord + ".new", pathsRecord} {
		for _, kind := range []string{"symlink", "directory", "fifo"} {
			t.Run(filepath.Base(place)+"/"+kind, func(t *testing.T) {
				e := newMaintEnv(t)
				e.systemdRunning()
				if err := os.MkdirAll(e.path("/var/lib/mallgrid"), 0o750); err != nil {
					t.Fatal(err)
				}
				victim := e.path("/etc/shadow-of-the-machine")
				const victimText = "root:secret:1:0:99999:7:::\n"
				if err := os.WriteFile(victim, []byte(victimText), 0o600); err != nil {
					t.Fatal(err)
				}
				planted := e.path(place)
				switch kind {
				case "symlink":
					if err := os.Symlink(victim, planted); err != nil {
						t.Fatal(err)
					}
				case "directory":
					if err := os.Mkdir(planted, 0o755); err != nil {
						t.Fatal(err)
					}
				case "fifo":
					if err := syscall.Mkfifo(planted, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				e.stub("mallgrid", `[ "$1 $2" = "config paths" ] || exit 64
echo "database /srv/ledger/mallgrid.db"; echo "snapshots /srv/ledger/snapshots"`)
				e.mustRun("prerm", "remove")
				if got, err := os.ReadFile(victim); err != nil || string(got) != victimText {
					t.Errorf("after prerm remove the file the link points to holds %q, %v; want %q", got, err, victimText)
				}
				record, err := os.Lstat(e.path(pathsRecord))
				switch {
				case place == pathsRecord && kind == "directory":
					// Only root makes one there; prerm leaves it, records
					// nothing, and the removal goes on.
					if err != nil || !record.IsDir() {
						t.Errorf("prerm remove changed the directory at the record's name: %v, %v", record, err)
					}
				case err != nil || !record.Mode().IsRegular():
					t.Errorf("prerm remove left at the record's name %v, %v; want a regular file", record, err)
				}
				if place != pathsRecord {
					if _, err := os.Lstat(planted); err != nil {
						t.Errorf("prerm remove touched %s in the state directory: %v", place, err)
					}
				}

				e.stub("mallgrid", "exit 127")
				e.mustRun("postrm", "remove")
				out := e.mustRun("postrm", "purge")
				if strings.Contains(out, "root:secret") {
					t.Errorf("postrm purge said:\n%s\nwant nothing of the file the link points to", out)
				}
				want := "kept in /srv/ledger/mallgrid.db"
				if place == pathsRecord && kind == "directory" {
					want = "kept in " + e.path("/var/lib/mallgrid")
				}
				if !strings.Contains(out, want) {
					t.Errorf("postrm purge said:\n%s\nwant %q", out, want)
				}
				if got, err := os.ReadFile(victim); err != nil || string(got) != victimText {
					t.Errorf("after the purge the file the link points to holds %q, %v; want %q", got, err, victimText)
				}
			})
		}
	}
}

// TestPurge_SaysEnvironmentFileKept: the environment file, which the
// technician made and which holds the site's secrets, outlives a purge,
// and the purge says so; without one it says nothing of it.
func TestPurge_SaysEnvironmentFileKept(t *testing.T) {
	e := newMaintEnv(t)
	env := e.path("/etc/mallgrid/environment")
	if err := os.WriteFile(env, []byte("MALLGRID_UPLINK_PASSWORD=s3cret\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	out := e.mustRun("postrm", "purge")
	if want := env + " (its secrets) is kept"; !strings.Contains(out, want) {
		t.Errorf("postrm purge said:\n%s\nwant %q", out, want)
	}
	if got, err := os.ReadFile(env); err != nil || string(got) != "MALLGRID_UPLINK_PASSWORD=s3cret\n" {
		t.Errorf("after the purge the environment file holds %q, %v; want it kept", got, err)
	}
	os.Remove(env)
	if out := e.mustRun("postrm", "purge"); strings.Contains(out, "environment") {
		t.Errorf("postrm purge without an environment file said:\n%s\nwant nothing of one", out)
	}
}
