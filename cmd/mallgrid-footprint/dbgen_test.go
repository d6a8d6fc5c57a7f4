package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// small is a mall and a database size that make the cache in a second.
func small(t *testing.T) options {
	return options{buses: 2, perBus: 10, bigDB: 1 << 20, cache: t.TempDir()}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(raw)
}

// The gateway runs on a copy: what it writes (here a top-up, in a run the
// readings and charges, after a store change an upgrade and its
// before-schema copy of the whole file) leaves the cache as it was made,
// and the next run takes the cache without making it again.
func TestBigDB_RunOnACopy(t *testing.T) {
	o := small(t)
	cached, made, err := bigDB(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if made == "" {
		t.Errorf("first bigDB: made %q; want how long the making took", made)
	}
	sum := fileSum(t, cached)
	run := t.TempDir()
	cp, err := runCopy(t.Context(), cached, run)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(cp) == filepath.Dir(cached) || !isUnder(cp, run) {
		t.Errorf("copy at %s; want it in the run's directory %s", cp, run)
	}
	// As the gateway opens it: with its marker.
	db, err := store.Open(cp, store.Options{Marker: true})
	if err != nil {
		t.Fatalf("the gateway's open of the copy: %v", err)
	}
	if _, _, err := db.PostTopUp(store.Entry{Time: time.Now(), Account: tenantID(1, 1), Kind: store.TopUp,
		Amount: 5 * billing.Yuan, Ref: "RUN-1", Channel: "cash", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, cached) != sum {
		t.Error("the cached database changed while the gateway wrote to its copy")
	}
	again, made, err := bigDB(t.Context(), o)
	if err != nil || again != cached || made != "" {
		t.Errorf("second bigDB = %s, %q, %v; want the cache %s as it is", again, made, err, cached)
	}
}

func isUnder(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && !filepath.IsAbs(rel) && !strings.HasPrefix(rel, "..")
}

// A file where the cache should be that the gateway would not open as it
// is — of an older schema, which it would first upgrade and copy whole to
// a before-schema snapshot — is made again, of this store's schema.
func TestBigDB_OlderSchemaMadeAgain(t *testing.T) {
	o := small(t)
	o.bigDB = 64 << 10 // the fixture's size: only the schema is wrong
	path := cachePath(o)
	raw, err := os.ReadFile(filepath.Join("..", "..", "store", "testdata", "schema", "v8.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// Caches of this mall and size for another schema, or from before the
	// schema was in the name (with a before-schema snapshot in it), are
	// never used again; another size's is.
	base := filepath.Join(o.cache, "2x10-65536")
	gone := []string{base, base + "-schema7"}
	kept := filepath.Join(o.cache, "2x10-655360-schema"+strconv.Itoa(store.SchemaVersion))
	for _, d := range append(gone, kept) {
		if err := os.MkdirAll(filepath.Join(d, "snapshots"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "snapshots", "before-schema-8.db"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, made, err := bigDB(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range gone {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v; want it removed", d, err)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("another size's cache: %v; want it kept", err)
	}
	info, err := store.Inspect(got)
	if err != nil {
		t.Fatal(err)
	}
	if made == "" || info.Schema != store.SchemaVersion {
		t.Errorf("bigDB over a schema 8 file: made %q, schema %d; want it made again, schema %d", made, info.Schema, store.SchemaVersion)
	}
}

// Ctrl-C while the large database is made stops the making at once, and
// leaves no half-made file for the next run to take.
func TestBigDB_Cancelled(t *testing.T) {
	o := small(t)
	o.bigDB = 1 << 30
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := bigDB(ctx, o)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 10*time.Second {
		t.Errorf("bigDB cancelled after 300 ms: %v after %s; want the context's error within seconds", err, took)
	}
	for _, f := range []string{cachePath(o), store.MarkerPath(cachePath(o))} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v; want no file left", f, err)
		}
	}
	// A copy is cancelled too, unless the file system made it at once (a
	// reflink, checked before the context).
	src := filepath.Join(t.TempDir(), "g.db")
	if err := prepareDB(t.Context(), src, 1, 5, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	cp, err := runCopy(ctx, src, t.TempDir())
	switch {
	case err == nil && fileSum(t, cp) != fileSum(t, src):
		t.Error("runCopy cancelled returned a copy unlike its source")
	case err != nil && !errors.Is(err, context.Canceled):
		t.Errorf("runCopy cancelled: %v; want context.Canceled", err)
	}
}
