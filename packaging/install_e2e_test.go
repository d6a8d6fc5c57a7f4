//go:build e2e

package packaging

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	confPath  = "/etc/mallgrid/mallgrid.yaml"
	stateDir  = "/var/lib/mallgrid"
	unitWants = "/etc/systemd/system/multi-user.target.wants/mallgrid.service"
)

// safeToInstall says why installing into this machine is not safe, or "".
// Only a throwaway container (CI's, this one) without systemd as PID 1 and
// without any trace of a mallgrid qualifies: the test creates and then
// deletes the user and the state directory, which on a real gateway hold the
// ledger.
func safeToInstall() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := os.Stat("/.dockerenv"); err != nil {
		return "not a container (/.dockerenv)"
	}
	if comm, _ := os.ReadFile("/proc/1/comm"); strings.TrimSpace(string(comm)) == "systemd" {
		return "systemd is PID 1: a real system"
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		return "no dpkg"
	}
	if exec.Command("dpkg", "-s", "mallgrid").Run() == nil {
		return "mallgrid is installed here"
	}
	for _, p := range []string{stateDir, "/etc/mallgrid"} {
		if _, err := os.Lstat(p); err == nil {
			return p + " exists"
		}
	}
	if exec.Command("getent", "passwd", "mallgrid").Run() == nil {
		return "the user mallgrid exists"
	}
	return ""
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestE2E_DebInstall installs the host's package into this container and
// takes it through a technician's life: install (user, state directory,
// conffile, unit not enabled), a database made by the service's user, the
// file edited and the unit enabled, a reinstall and an unattended upgrade to
// a newer package whose example changed too, each keeping both, remove and
// purge — and the database, the ledger, unchanged through all of it.
func TestE2E_DebInstall(t *testing.T) {
	if why := safeToInstall(); why != "" {
		t.Skipf("not installing into this machine: %s", why)
	}
	if exec.Command("dpkg", "-s", "systemd").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the package depends on systemd, which is not installed")
		}
		t.Skip("systemd (the package's dependency) not installed")
	}
	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf"}[runtime.GOARCH]
	if debArch == "" {
		t.Skipf("no package for %s", runtime.GOARCH)
	}
	_, debs := buildDebs(t)
	deb := debs[debArch]
	t.Cleanup(func() {
		// Everything this test made: the checks above found none of it.
		exec.Command("dpkg", "-P", "mallgrid").Run()
		os.RemoveAll(stateDir)
		exec.Command("userdel", "mallgrid").Run()
		exec.Command("groupdel", "mallgrid").Run()
	})

	out := cmdOut(t, "", "dpkg", "-i", deb)
	for _, want := range []string{"checking " + confPath, confPath + ": ok (", "systemctl enable --now mallgrid"} {
		if !strings.Contains(out, want) {
			t.Errorf("dpkg -i said:\n%s\nwant %q", out, want)
		}
	}

	// The user: a system user, home the state directory, no login, its own
	// group and dialout for the RS-485 adapters.
	pw := strings.Split(strings.TrimSpace(cmdOut(t, "", "getent", "passwd", "mallgrid")), ":")
	uid, _ := strconv.Atoi(pw[2])
	if uid == 0 || uid >= 1000 || pw[5] != stateDir || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("passwd entry %q; want a system uid, home %s, shell /usr/sbin/nologin", pw, stateDir)
	}
	groups := strings.Fields(cmdOut(t, "", "id", "-nG", "mallgrid"))
	if strings.Join(groups, " ") != "mallgrid dialout" {
		t.Errorf("groups of mallgrid: %v; want mallgrid dialout", groups)
	}
	gid, _ := strconv.Atoi(pw[3])
	checkStat(t, stateDir, os.ModeDir|0o750, uid, gid)
	checkStat(t, confPath, 0o640, 0, gid)
	if !strings.Contains(cmdOut(t, "", "dpkg-query", "-W", "-f=${Conffiles}", "mallgrid"), confPath) {
		t.Errorf("dpkg does not list %s as a conffile", confPath)
	}
	if _, err := os.Stat("/lib/systemd/system/mallgrid.service"); err != nil {
		t.Errorf("unit: %v", err)
	}
	if _, err := os.Lstat(unitWants); err == nil {
		t.Errorf("%s exists: the first install enabled the service; want it left to the technician", unitWants)
	}

	// The service's user makes the database, as the service would.
	cmdOut(t, "", "runuser", "-u", "mallgrid", "--", "mallgrid", "db", "init", "-c", confPath)
	db := filepath.Join(stateDir, "mallgrid.db")
	ledger := sha(t, db)

	// The technician edits the file and enables the unit; an upgrade keeps
	// both.
	f, err := os.OpenFile(confPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("# edited by the technician\n")
	f.Close()
	edited := sha(t, confPath)
	cmdOut(t, "", "systemctl", "enable", "mallgrid")
	cmdOut(t, "", "dpkg", "-i", deb)
	if got := sha(t, confPath); got != edited {
		t.Errorf("the upgrade changed the edited %s", confPath)
	}
	checkStat(t, confPath, 0o640, 0, gid)
	if _, err := os.Lstat(unitWants); err != nil {
		t.Errorf("the upgrade disabled the service: %v", err)
	}
	if got := sha(t, db); got != ledger {
		t.Errorf("the upgrade changed the database")
	}

	// A newer package whose example changed too, as nearly every release's
	// does: dpkg would ask about the edited conffile, and with no terminal
	// fail the upgrade. Unattended, as README "Upgrade" says, the edited
	// file is kept and the package's beside it as .dpkg-dist.
	next, nextVersion := nextDeb(t, deb)
	upgrade := exec.Command("apt-get", "install", "-y", "-o", "Dpkg::Options::=--force-confold", next)
	upgrade.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := upgrade.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install -o Dpkg::Options::=--force-confold %s: %v\n%s", next, err, out)
	}
	if got := strings.TrimSpace(cmdOut(t, "", "dpkg-query", "-W", "-f=${Version} ${Status}", "mallgrid")); got != nextVersion+" install ok installed" {
		t.Errorf("after the upgrade: %q; want %s installed", got, nextVersion)
	}
	if got := sha(t, confPath); got != edited {
		t.Errorf("the upgrade to %s changed the edited %s", nextVersion, confPath)
	}
	if dist, err := os.ReadFile(confPath + ".dpkg-dist"); err != nil || !strings.Contains(string(dist), nextExampleLine) {
		t.Errorf("%s.dpkg-dist: %v; want the new package's example beside the kept file", confPath, err)
	}
	checkStat(t, confPath, 0o640, 0, gid)
	if _, err := os.Lstat(unitWants); err != nil {
		t.Errorf("the upgrade to %s disabled the service: %v", nextVersion, err)
	}
	if got := sha(t, db); got != ledger {
		t.Errorf("the upgrade to %s changed the database", nextVersion)
	}
	os.Remove(confPath + ".dpkg-dist")

	cmdOut(t, "", "dpkg", "-r", "mallgrid")
	if _, err := os.Stat("/usr/bin/mallgrid"); err == nil {
		t.Error("remove left /usr/bin/mallgrid")
	}
	if got := sha(t, confPath); got != edited {
		t.Errorf("remove changed %s; want it kept until purge", confPath)
	}
	if got := sha(t, db); got != ledger {
		t.Errorf("remove changed the database")
	}

	out = cmdOut(t, "", "dpkg", "-P", "mallgrid")
	if !strings.Contains(out, "kept in "+stateDir) {
		t.Errorf("purge said:\n%s\nwant where the database is kept", out)
	}
	if _, err := os.Stat(confPath); err == nil {
		t.Errorf("purge left %s", confPath)
	}
	if _, err := os.Lstat(unitWants); err == nil {
		t.Errorf("purge left %s", unitWants)
	}
	if exec.Command("dpkg-statoverride", "--list", confPath).Run() == nil {
		t.Errorf("purge left the statoverride of %s", confPath)
	}
	if got := sha(t, db); got != ledger {
		t.Errorf("purge changed or deleted the database")
	}
}

// nextExampleLine is what the next package adds to the example
// configuration.
const nextExampleLine = "# a line the next release added to the example"

// nextDeb makes the package that follows deb: the same files, a higher
// version, and an example configuration (the conffile) that changed. It
// returns the package and its version.
func nextDeb(t *testing.T, deb string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "pkg")
	cmdOut(t, "", "dpkg-deb", "-R", deb, root)
	control := filepath.Join(root, "DEBIAN", "control")
	b, err := os.ReadFile(control)
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(cmdOut(t, "", "dpkg-deb", "-f", deb, "Version"))
	next := version + "+next1"
	b = []byte(strings.Replace(string(b), "\nVersion: "+version+"\n", "\nVersion: "+next+"\n", 1))
	if err := os.WriteFile(control, b, 0o644); err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(root, "etc", "mallgrid", "mallgrid.yaml")
	f, err := os.OpenFile(example, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(nextExampleLine + "\n")
	f.Close()
	// dpkg checks the files against md5sums: the example's changed.
	sums := filepath.Join(root, "DEBIAN", "md5sums")
	if old, err := os.ReadFile(sums); err == nil {
		sum := strings.Fields(cmdOut(t, root, "md5sum", "etc/mallgrid/mallgrid.yaml"))[0]
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(old)), "\n") {
			if strings.HasSuffix(l, " etc/mallgrid/mallgrid.yaml") {
				l = sum + "  etc/mallgrid/mallgrid.yaml"
			}
			lines = append(lines, l)
		}
		if err := os.WriteFile(sums, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "mallgrid_"+next+".deb")
	cmdOut(t, "", "dpkg-deb", "--root-owner-group", "-b", root, out)
	return out, next
}

// checkStat fails the test unless path has exactly this mode and owner.
func checkStat(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v %d:%d; want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}
