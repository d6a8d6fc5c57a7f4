package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mallgrid/billing"
)

// damageBase builds a small real database — 30 accounts with top-ups,
// charges and adjustments, bus cycles of readings and interval energy,
// meter states, enforcement state and events — closes it and returns its
// bytes. The entries bucket spans several pages under a branch page, and
// every account's index is an inline bucket: the shapes bbolt reads.
func damageBase(tb testing.TB, dir string) []byte {
	tb.Helper()
	path := filepath.Join(dir, "base.db")
	db, err := Open(path, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 120 {
		acct := fmt.Sprintf("T-%02d", i%30)
		if _, _, err := db.PostTopUp(topUp(acct, fmt.Sprintf("PAY-%d", i), billing.Money(i+1)*billing.Yuan)); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Minute)
		meter := fmt.Sprintf("M-%02d", i%10)
		c := Cycle{
			Readings:   []Reading{{Meter: meter, Time: at, ImportWh: int64(1000 + i), Values: []Value{{"power", 1200}}, Relay: "closed"}},
			Energy:     []IntervalEnergy{{Meter: meter, Time: at, Wh: 7}},
			Charges:    []Entry{{Account: fmt.Sprintf("T-%02d", i%30), Kind: Charge, Amount: -billing.Fen, Meter: meter, FromWh: int64(1000 + i), ToWh: int64(1007 + i), Wh: 7, Time: at}},
			MeterState: map[string][]byte{meter: []byte(`{"counter":1007}`)},
			Events:     []Event{{Time: at, Kind: "reading", Meter: meter, Text: "a reading"}},
		}
		if _, err := db.CommitCycle(c); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.PostEntry(Entry{Account: "T-01", Kind: Adjustment, Amount: -billing.Yuan, Actor: "ann", Note: "meter test", Time: t0}); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.PutControl(map[string][]byte{"meter/M-01": []byte(`{"desired":"open"}`)}, Event{Kind: "cut_off", Tenant: "T-01", Text: "cut off"}); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// damageOutcome opens the file at path read-only (as verify does) and
// read-write (as the daemon does), makes every read verify and the
// daemon's start make, and one write; it returns the first error of each
// open. Any panic fails the caller: no file may cause one.
func damageOutcome(tb testing.TB, path string) (readOnly, readWrite error) {
	tb.Helper()
	readOnly = openAndRead(path, Options{ReadOnly: true, LockTimeout: time.Second}, false)
	readWrite = openAndRead(path, Options{LockTimeout: time.Second}, true)
	return readOnly, readWrite
}

func openAndRead(path string, opts Options, write bool) error {
	db, err := Open(path, opts)
	if err != nil {
		return err
	}
	defer db.Close()
	accounts, err := db.Accounts()
	for _, a := range accounts {
		if err == nil {
			_, err = db.Entries(a.ID, 0, 1000)
		}
	}
	reads := []func() error{
		func() error { return err },
		func() error { return db.EachEntry(func(Entry) error { return nil }) },
		func() error { _, err := db.MeterStates(); return err },
		func() error { _, err := db.Breaks(); return err },
		func() error { _, err := db.LatestReadings(); return err },
		func() error { _, err := db.Controls(); return err },
		func() error { _, err := db.LastEvents(1000); return err },
		func() error { _, err := db.EventsAfter(0, 1000); return err },
		func() error { _, err := db.Intervals("M-01", t0.Add(-time.Hour), t0.Add(time.Hour)); return err },
		func() error { _, err := db.UsedBytes(); return err },
	}
	if write {
		reads = append(reads, func() error {
			_, _, err := db.PostTopUp(topUp("T-new", "PAY-after-damage", billing.Yuan))
			return err
		})
	}
	for _, r := range reads {
		if err := r(); err != nil {
			return err
		}
	}
	return nil
}

// documented are the errors a damaged file may give besides ErrCorrupt,
// each one a sentinel of this package: an empty file, a schema number
// garbled into another, a write refused by a ledger rule on garbled data.
var documented = []error{ErrCorrupt, ErrEmpty, ErrSchemaTooNew, ErrSchemaOld, ErrRefConflict, ErrBadEntry, ErrNoAccount}

func isDocumented(err error) bool {
	if err == nil {
		return true
	}
	for _, d := range documented {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

// damage is one way to spoil a copy of a database file.
type damage struct {
	name     string
	truncate int    // keep only this many bytes; -1 keeps all
	at       int    // where patch is written (modulo the length kept)
	patch    []byte // bytes written over the file; xor is false
	xor      bool   // patch bytes are xor-ed into the file instead
}

func (d damage) apply(base []byte) []byte {
	b := append([]byte(nil), base...)
	if d.truncate >= 0 && d.truncate < len(b) {
		b = b[:d.truncate]
	}
	if len(b) == 0 || len(d.patch) == 0 {
		return b
	}
	at := d.at % len(b)
	for i, p := range d.patch {
		if at+i >= len(b) {
			break
		}
		if d.xor {
			b[at+i] ^= p
		} else {
			b[at+i] = p
		}
	}
	return b
}

// damages lists the deterministic test's cases over base, whose pages are
// pageSize bytes: truncation at every half page and a few odd lengths,
// every page zeroed and garbled, every page's header and first elements
// hit, and bytes flipped at random offsets (a fixed seed, so a failure
// repeats).
func damages(base []byte, pageSize int) []damage {
	var out []damage
	for _, n := range []int{0, 1, 15, 100, pageSize - 1, pageSize + 1, 2*pageSize - 1, 2*pageSize + 16} {
		out = append(out, damage{name: fmt.Sprintf("truncated to %d", n), truncate: n})
	}
	for n := 2 * pageSize; n < len(base); n += pageSize / 2 {
		out = append(out, damage{name: fmt.Sprintf("truncated to %d", n), truncate: n})
	}
	rng := rand.New(rand.NewPCG(8, 5))
	pages := len(base) / pageSize
	for p := range pages {
		out = append(out, damage{name: fmt.Sprintf("page %d zeroed", p), truncate: -1, at: p * pageSize, patch: make([]byte, pageSize)})
		garble := make([]byte, pageSize)
		for i := range garble {
			garble[i] = byte(rng.Uint32())
		}
		out = append(out, damage{name: fmt.Sprintf("page %d garbled", p), truncate: -1, at: p * pageSize, patch: garble})
		for i := range 4 { // the header and the first elements: ids, flags, counts, offsets
			off := rng.IntN(16 + 4*16)
			out = append(out, damage{name: fmt.Sprintf("page %d header byte %d (%d)", p, off, i), truncate: -1, at: p*pageSize + off,
				patch: []byte{byte(1 + rng.IntN(255))}, xor: true})
		}
	}
	for i := range 400 {
		flip := make([]byte, 1+rng.IntN(4))
		for j := range flip {
			flip[j] = byte(1 + rng.IntN(255))
		}
		at := rng.IntN(len(base))
		out = append(out, damage{name: fmt.Sprintf("flip %d: %d bytes at %d", i, len(flip), at), truncate: -1, at: at, patch: flip, xor: true})
	}
	return out
}

// basePageSize reads the page size from the first meta page of a bbolt file.
func basePageSize(tb testing.TB, base []byte) int {
	tb.Helper()
	if len(base) < 64 {
		tb.Fatal("base file too small")
	}
	return int(binary.NativeEndian.Uint32(base[pageHeaderSize+8:]))
}

// TestOpen_DamagedFiles runs a real small database through about a
// thousand kinds of damage — truncation at many lengths, whole pages zeroed
// or garbled, page headers and elements hit, random bytes flipped — and
// requires of each that opening it read-only and read-write, every read
// verify and the daemon make, and a write, never panic and either succeed
// or fail with ErrCorrupt or another documented sentinel. A file cut short
// of its last page, or with a page of the tree gone, must be refused.
func TestOpen_DamagedFiles(t *testing.T) {
	dir := t.TempDir()
	base := damageBase(t, dir)
	pageSize := basePageSize(t, base)
	hwm := int(binary.NativeEndian.Uint64(base[pageHeaderSize+40:])) // meta 0's page count
	if m1 := base[pageSize+pageHeaderSize:]; binary.NativeEndian.Uint64(m1[48:]) > binary.NativeEndian.Uint64(base[pageHeaderSize+48:]) {
		hwm = int(binary.NativeEndian.Uint64(m1[40:]))
	}
	path := filepath.Join(dir, "damaged.db")
	var refused, opened int
	for _, d := range damages(base, pageSize) {
		if err := os.WriteFile(path, d.apply(base), 0o600); err != nil {
			t.Fatal(err)
		}
		ro, rw := damageOutcome(t, path)
		for _, err := range []error{ro, rw} {
			if !isDocumented(err) {
				t.Errorf("%s: err = %v; want nil, ErrCorrupt or a documented sentinel", d.name, err)
			}
		}
		if d.truncate >= 0 && d.truncate < hwm*pageSize && !errors.Is(ro, ErrCorrupt) && !errors.Is(ro, ErrEmpty) {
			t.Errorf("%s (the data ends at %d): read-only open err = %v; want ErrCorrupt", d.name, hwm*pageSize, ro)
		}
		if ro != nil {
			refused++
		} else {
			opened++
		}
	}
	t.Logf("%d damaged files: %d refused read-only, %d opened (damage that only changed data or free pages)", refused+opened, refused, opened)
	if refused == 0 || opened == 0 {
		t.Errorf("refused %d, opened %d: the cases do not reach both outcomes", refused, opened)
	}
}

// FuzzOpen damages a real small database — the fuzzer picks a length to
// cut it to (0: keep it whole), an offset and bytes to write there — and
// requires that opening, checking and reading it, as verify and the daemon
// do, never panic and either succeed or fail with a documented sentinel.
// The seeds are the damage kinds of TestOpen_DamagedFiles.
func FuzzOpen(f *testing.F) {
	base := damageBase(f, f.TempDir())
	pageSize := basePageSize(f, base)
	f.Add(uint32(0), uint32(pageSize+pageHeaderSize), []byte{0xff})         // meta 1 flipped
	f.Add(uint32(0), uint32(2*pageSize), make([]byte, pageSize))            // freelist zeroed
	f.Add(uint32(0), uint32(3*pageSize+8), []byte{0x10})                    // a page's flags
	f.Add(uint32(0), uint32(4*pageSize+16), []byte{0xff, 0xff, 0xff, 0x7f}) // an element's offset
	f.Add(uint32(3*pageSize+100), uint32(0), []byte(nil))                   // cut mid-page
	f.Add(uint32(0), uint32(len(base)/2), []byte("garbage garbage garbage"))
	f.Fuzz(func(t *testing.T, cut, at uint32, patch []byte) {
		truncate := -1
		if cut > 0 {
			truncate = int(cut % uint32(len(base)))
		}
		d := damage{truncate: truncate, at: int(at), patch: patch}
		path := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(path, d.apply(base), 0o600); err != nil {
			t.Fatal(err)
		}
		ro, rw := damageOutcome(t, path)
		for _, err := range []error{ro, rw} {
			if !isDocumented(err) {
				t.Errorf("err = %v; want nil, ErrCorrupt or a documented sentinel", err)
			}
		}
	})
}
