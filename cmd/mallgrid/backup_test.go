package main

import (
	"bytes"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/gateway/backup"
	"mallgrid/store"
)

// backupConfig writes a configuration for a gateway on dbPath with a till
// token (Bearer till-secret) and three tenants, listening on addr.
func backupConfig(t *testing.T, dbPath, addr string) string {
	t.Helper()
	cfg := "site: {name: Backup test}\nstorage: {path: '" + dbPath + "', lock_timeout: 200ms}\n" +
		"http:\n  listen: '" + addr + "'\n  tokens: [{name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}]\n" +
		"log: {format: json, level: warn}\nbuses:\n  - {name: lan, type: tcp, port: '127.0.0.1:1', interval: 1s}\n" +
		"meters:\n  - {id: M1, bus: lan, address: 1, model: kpm33b, tenant: T1}\n" +
		"tenants:\n  - {id: T1, name: Shop 1}\n  - {id: T2, name: Shop 2}\n  - {id: T3, name: Shop 3}\n"
	path := filepath.Join(t.TempDir(), "mallgrid.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// postTopUp credits ref to tenant and says whether the gateway
// acknowledged it (201).
func postTopUp(client *http.Client, base, tenant, ref string) bool {
	body := fmt.Sprintf(`{"amount":"10.00","ref":"%s","channel":"cash"}`, ref)
	req, err := http.NewRequest("POST", base+"/api/v1/accounts/"+tenant+"/topups", strings.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer till-secret")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

// TestBackup_RunningGateway takes backups from a real `mallgrid run` while
// a till posts top-ups: each copy verifies and holds every top-up
// acknowledged before it was asked for. Restore is refused while the
// gateway runs, and installs the copy once it is stopped.
func TestBackup_RunningGateway(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "mallgrid.db")
	addr := freeAddr(t)
	cfgPath := backupConfig(t, dbPath, addr)
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for !postTopUp(client, base, "T1", "PAY-0") {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not take a top-up within 10 s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := os.Stat(backup.SocketPath(dbPath))
	if err != nil || st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, %v; want a socket of mode 0600", st, err)
	}

	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	acked = append(acked, "PAY-0")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ref := fmt.Sprintf("PAY-%d", i)
			if postTopUp(client, base, fmt.Sprintf("T%d", 1+i%3), ref) {
				mu.Lock()
				acked = append(acked, ref)
				mu.Unlock()
			}
		}
	}()
	var out string
	for round := range 2 {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		before := append([]string(nil), acked...)
		mu.Unlock()
		out = filepath.Join(t.TempDir(), "backup.db")
		code, stdout, errOut := mallgrid(t, "backup", "-c", cfgPath, out)
		if code != 0 || !strings.Contains(stdout, "from the running gateway") {
			t.Fatalf("round %d: backup = %d\n%s%s", round, code, stdout, errOut)
		}
		if code, stdout, errOut := mallgrid(t, "verify", "--db", out); code != 0 {
			t.Fatalf("round %d: verify --db backup = %d\n%s%s", round, code, stdout, errOut)
		}
		refs := storedRefs(t, out)
		for _, ref := range before {
			if !refs[ref] {
				t.Errorf("round %d: top-up %s acknowledged before the backup is not in it", round, ref)
			}
		}
		if len(before) < 2 {
			t.Errorf("round %d: only %d top-ups acknowledged before the backup; want writes going on", round, len(before))
		}
	}
	close(stop)
	wg.Wait()

	code, _, errOut := mallgrid(t, "restore", "-c", cfgPath, out)
	if code != exitFailure || !strings.Contains(errOut, "stop the gateway: systemctl stop mallgrid") {
		t.Errorf("restore under the running gateway = %d %q; want 1 and stop the gateway: systemctl stop mallgrid", code, errOut)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway after SIGTERM: %v\n%s", err, stderr.String())
	}
	if _, err := os.Lstat(backup.SocketPath(dbPath)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("control socket after the gateway stopped: %v; want removed", err)
	}
	code, stdout, errOut := mallgrid(t, "restore", "-c", cfgPath, out)
	if code != 0 || !strings.Contains(stdout, "kept as "+dbPath+".replaced-") {
		t.Fatalf("restore = %d\n%s%s", code, stdout, errOut)
	}
	if code, stdout, errOut := mallgrid(t, "verify", "-c", cfgPath); code != 0 {
		t.Errorf("verify -c after restore = %d\n%s%s; want 0: the database the marker names", code, stdout, errOut)
	}
}

// storedRefs returns the payment references of the ledger at path.
func storedRefs(t *testing.T, path string) map[string]bool {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	refs := map[string]bool{}
	if err := db.EachEntry(func(e store.Entry) error { refs[e.Ref] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return refs
}

// backup with OUT the database or its marker exits 2, says why, and
// leaves both as they were: the next start takes the database.
func TestBackup_OutIsTheDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	ranDatabase(t, path)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(store.MarkerPath(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{path, store.MarkerPath(path)} {
		code, _, errOut := mallgrid(t, "backup", "--db", path, out)
		if code != exitConfig || !strings.Contains(errOut, "name a file elsewhere") {
			t.Errorf("backup --db %s %s = %d %q; want 2 saying to name a file elsewhere", path, out, code, errOut)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("database after the refused backups: %v; want mode 0640 as before", describeMode(st, err))
	}
	if after, err := os.ReadFile(store.MarkerPath(path)); err != nil || !bytes.Equal(after, before) {
		t.Errorf("marker after the refused backups = %d bytes %.40q, %v; want %q", len(after), after, err, before)
	}
	if code, stdout, errOut := mallgrid(t, "verify", "-c", gatewayConfig(t, path)); code != 0 {
		t.Errorf("verify -c after the refused backups = %d\n%s%s", code, stdout, errOut)
	}
}

func describeMode(st os.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return "mode " + st.Mode().Perm().String()
}

// A database from a newer gateway is refused by run, verify, backup and
// restore alike, with both versions and what to do.
func TestSchemaTooNew_EveryCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	ranDatabase(t, path)
	setSchemaVersion(t, path, store.SchemaVersion+1)
	want := fmt.Sprintf("the file is schema %d, this gateway knows schema %d at most", store.SchemaVersion+1, store.SchemaVersion)
	cfgPath := gatewayConfig(t, path)
	other := filepath.Join(t.TempDir(), "m.db")
	for _, args := range [][]string{
		{"run", "-c", cfgPath},
		{"verify", "--db", path},
		{"backup", "--db", path, filepath.Join(dir, "copy.db")},
		{"restore", "--db", other, path},
	} {
		code, _, errOut := mallgrid(t, args...)
		if code != exitRefused || !strings.Contains(errOut, want) || !strings.Contains(errOut, "restore a backup taken before the upgrade") {
			t.Errorf("%s: exit %d %q; want 4 saying %q and what to do", args[0], code, errOut, want)
		}
	}
}

// setSchemaVersion writes a schema version into the closed file at path
// with bbolt directly, as a newer gateway would have left it.
func setSchemaVersion(t *testing.T, path string, v int) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), be.BigEndian.AppendUint32(nil, uint32(v)))
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// `mallgrid run` on a database of an older schema copies it to the
// snapshot directory before upgrading it: the way back to the older
// package.
func TestRun_SnapshotBeforeUpgrade(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	ranDatabase(t, path)
	setSchemaVersion(t, path, store.SchemaVersion-1)
	cfgPath := gatewayConfig(t, path)
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr // the log is on stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(backup.SocketPath(path)); err == nil {
			break // the database is open, upgraded
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not start within 10 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", fmt.Sprintf("before-schema-%d-*.db", store.SchemaVersion-1)))
	if len(snaps) != 1 {
		t.Fatalf("snapshots before the upgrade: %v; want one\n%s", snaps, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway after SIGTERM: %v\n%s", err, stderr.String())
	}
	info, err := store.Inspect(snaps[0])
	if err != nil || info.Schema != store.SchemaVersion-1 || info.Entries != 1 {
		t.Errorf("snapshot %+v, %v; want schema %d with the ledger's 1 entry", info, err, store.SchemaVersion-1)
	}
	if !strings.Contains(stderr.String(), "the copy from before the upgrade is the way back") {
		t.Errorf("log lacks the snapshot's line:\n%s", stderr.String())
	}
	if code, _, errOut := mallgrid(t, "verify", "-c", cfgPath); code != 0 {
		t.Errorf("verify after the upgrade = %d %s", code, errOut)
	}

	// Started again on the upgraded file: no second snapshot; and the
	// temporaries of copies killed midway are removed at start.
	leftovers := []string{path + ".restoring-123", filepath.Join(dir, "snapshots", "daily-20261201T033000Z.db.tmp-456")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("half a copy"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stderr.Reset()
	again := exec.Command(binary, "run", "-c", cfgPath)
	again.Stdout, again.Stderr = &stderr, &stderr
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Process.Kill(); _ = again.Wait() })
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(backup.SocketPath(path)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not start again within 10 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := again.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := again.Wait(); err != nil {
		t.Fatalf("gateway started again, after SIGTERM: %v\n%s", err, stderr.String())
	}
	if all, _ := filepath.Glob(filepath.Join(dir, "snapshots", "before-schema-*.db")); len(all) != 1 {
		t.Errorf("snapshots before an upgrade after a second start: %v; want the one", all)
	}
	for _, p := range leftovers {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after a start: %v; want removed", p, err)
		}
	}
}
