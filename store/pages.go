package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"
)

// The bbolt file layout (go.etcd.io/bbolt v1.5.0, internal/common), which
// checkPages reads without bbolt. Integers are in the machine's byte order,
// as bbolt writes them through unsafe pointers.
const (
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elementSize    = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeader   = 16 // a bucket's value: root pgid u64, sequence u64; an inline page follows if root is 0
	metaChecksumAt = 56 // the meta's checksum is FNV-64a of its first 56 bytes

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	leafIsBucket = 0x01

	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	minPageSize    = 512
	maxPageSize    = 16 << 20 // bbolt looks no further for the second meta page
	maxBucketDepth = 64       // pages and nested buckets; a real file has under ten
)

var native = binary.NativeEndian

// checkPages walks the page tree of the bbolt file at path the way bbolt
// will, but reading through ReadAt with every offset and length checked,
// before bbolt maps the file. bbolt trusts the file: a page id or an
// element offset garbled on disk makes it read outside the mapping, which
// is a fault the Go runtime cannot recover from (it kills the process),
// and bbolt's own consistency check runs in a goroutine of its own, where
// no recover of ours reaches. So every page reachable from the meta page
// bbolt will use must lie inside the file, say it is the page it should
// be, hold its elements inside itself, and be reached once; the freelist
// too. What remains (key order, pages neither reachable nor free) is
// bbolt's check's to find, which it then can without faulting.
//
// The file is read under the lock bbolt will take (exclusive for a
// read-write open): pages a running gateway is rewriting would look
// damaged, when the truth is that the file is in use.
//
// It returns nil, ErrLocked, or an error wrapping ErrCorrupt.
func checkPages(path string, exclusive bool, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // releases the lock
	if err := lockFile(f, exclusive, timeout); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w := &pageWalk{r: f, size: st.Size(), seen: make(map[uint64]bool)}
	if err := w.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

type pageWalk struct {
	r        io.ReaderAt
	size     int64
	pageSize int64
	hwm      uint64          // the high water mark: pages 0..hwm-1 exist
	seen     map[uint64]bool // every page already reached, overflow included
}

// meta is the part of a meta page the walk needs.
type meta struct {
	pageSize       int64
	root, freelist uint64
	hwm, txid      uint64
	sum            uint64 // the checksum it carries
	valid          bool
}

func (w *pageWalk) readAt(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > w.size || n > w.size-off {
		return nil, fmt.Errorf("%d bytes at offset %d: beyond the end of the file (%d bytes)", n, off, w.size)
	}
	buf := make([]byte, n)
	if _, err := w.r.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read %d bytes at offset %d: %w", n, off, err)
	}
	return buf, nil
}

// readMeta reads the meta page at off; valid is what bbolt's
// Meta.Validate would say.
func (w *pageWalk) readMeta(off int64) meta {
	buf, err := w.readAt(off, pageHeaderSize+64)
	if err != nil {
		return meta{}
	}
	m := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	return meta{
		pageSize: int64(native.Uint32(m[8:])),
		root:     native.Uint64(m[16:]),
		freelist: native.Uint64(m[32:]),
		hwm:      native.Uint64(m[40:]),
		txid:     native.Uint64(m[48:]),
		sum:      native.Uint64(m[metaChecksumAt:]),
		valid: native.Uint32(m[0:]) == boltMagic && native.Uint32(m[4:]) == boltVersion &&
			native.Uint64(m[metaChecksumAt:]) == h.Sum64(),
	}
}

func (w *pageWalk) check() error {
	// The page size comes from the first valid meta page, as in bbolt's
	// getPageSize: page 0, else page 1 looked for at every size it tries.
	first := w.readMeta(0)
	if !first.valid {
		for i := 0; i <= 14; i++ {
			pos := int64(1024) << i
			if pos >= w.size-1024 {
				break
			}
			if m := w.readMeta(pos); m.valid {
				first = m
				break
			}
		}
	}
	if !first.valid {
		return errors.New("no valid meta page: not a bbolt file, or both of its meta pages are damaged")
	}
	if first.pageSize < minPageSize || first.pageSize > maxPageSize {
		return fmt.Errorf("page size %d", first.pageSize)
	}
	w.pageSize = first.pageSize
	m, ok := w.newestMeta(w.pageSize)
	if !ok {
		return errors.New("no valid meta page")
	}
	if m.hwm < 3 || m.hwm > uint64(w.size/w.pageSize) {
		return fmt.Errorf("the meta page counts %d pages; the file holds %d", m.hwm, w.size/w.pageSize)
	}
	w.hwm = m.hwm
	w.seen[0], w.seen[1] = true, true
	if m.freelist != noFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return fmt.Errorf("freelist: %w", err)
		}
	}
	if err := w.tree(m.root, 0); err != nil {
		return fmt.Errorf("root bucket: %w", err)
	}
	return nil
}

// page reads page id and its overflow, checking its header says what it
// is and that no other reference reached it before.
func (w *pageWalk) page(id uint64) (buf []byte, flags uint16, count int, err error) {
	if id < 2 || id >= w.hwm {
		return nil, 0, 0, fmt.Errorf("page %d: outside 2..%d", id, w.hwm-1)
	}
	head, err := w.readAt(int64(id)*w.pageSize, pageHeaderSize)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("page %d: %w", id, err)
	}
	if got := native.Uint64(head); got != id {
		return nil, 0, 0, fmt.Errorf("page %d: says it is page %d", id, got)
	}
	flags, count = native.Uint16(head[8:]), int(native.Uint16(head[10:]))
	overflow := uint64(native.Uint32(head[12:]))
	if overflow >= w.hwm-id {
		return nil, 0, 0, fmt.Errorf("page %d: %d overflow pages run past page %d", id, overflow, w.hwm-1)
	}
	for p := id; p <= id+overflow; p++ {
		if w.seen[p] {
			return nil, 0, 0, fmt.Errorf("page %d: reached twice", p)
		}
		w.seen[p] = true
	}
	buf, err = w.readAt(int64(id)*w.pageSize, int64(overflow+1)*w.pageSize)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, flags, count, nil
}

func (w *pageWalk) freelist(id uint64) error {
	buf, flags, count, err := w.page(id)
	if err != nil {
		return err
	}
	if flags != flagFreelist {
		return fmt.Errorf("page %d: flags %#x, want a freelist page", id, flags)
	}
	ids := buf[pageHeaderSize:]
	if count == 0xFFFF { // more ids than a uint16 counts: the first id slot holds the count
		if len(ids) < 8 {
			return fmt.Errorf("page %d: no room for its count", id)
		}
		n := native.Uint64(ids)
		ids = ids[8:]
		if n > uint64(len(ids)/8) {
			return fmt.Errorf("page %d: %d free ids do not fit", id, n)
		}
		count = int(n)
	}
	if count > len(ids)/8 {
		return fmt.Errorf("page %d: %d free ids do not fit", id, count)
	}
	for i := range count {
		if free := native.Uint64(ids[8*i:]); free < 2 || free >= w.hwm {
			return fmt.Errorf("page %d: free page id %d outside 2..%d", id, free, w.hwm-1)
		}
	}
	return nil
}

// tree checks the b-tree rooted at page id, and every bucket under it.
func (w *pageWalk) tree(id uint64, depth int) error {
	if depth > maxBucketDepth {
		return fmt.Errorf("page %d: deeper than %d levels", id, maxBucketDepth)
	}
	buf, flags, count, err := w.page(id)
	if err != nil {
		return err
	}
	switch flags {
	case flagBranch:
		// bbolt's cursor reads a branch's first element without looking at
		// the count: an empty branch would send it to a garbage page id.
		if count == 0 {
			return fmt.Errorf("page %d: a branch page with no elements", id)
		}
		if pageHeaderSize+count*elementSize > len(buf) {
			return fmt.Errorf("page %d: %d elements do not fit", id, count)
		}
		for i := range count {
			at := pageHeaderSize + i*elementSize
			e := buf[at:]
			if _, err := span(buf, at, native.Uint32(e), native.Uint32(e[4:])); err != nil {
				return fmt.Errorf("page %d, element %d: key %w", id, i, err)
			}
			if err := w.tree(native.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		}
		return nil
	case flagLeaf:
		return w.leaf(buf, count, depth, fmt.Sprintf("page %d", id))
	}
	return fmt.Errorf("page %d: flags %#x, want a branch or leaf page", id, flags)
}

// leaf checks the elements of a leaf page held in buf (a page of the file,
// or an inline bucket's page inside its parent's value) and the buckets
// they hold.
func (w *pageWalk) leaf(buf []byte, count, depth int, where string) error {
	if pageHeaderSize+count*elementSize > len(buf) {
		return fmt.Errorf("%s: %d elements do not fit", where, count)
	}
	for i := range count {
		at := pageHeaderSize + i*elementSize
		e := buf[at:]
		flags, pos, ksize, vsize := native.Uint32(e), native.Uint32(e[4:]), native.Uint32(e[8:]), native.Uint32(e[12:])
		end, err := span(buf, at, pos, ksize)
		if err != nil {
			return fmt.Errorf("%s, element %d: key %w", where, i, err)
		}
		if uint64(end)+uint64(vsize) > uint64(len(buf)) {
			return fmt.Errorf("%s, element %d: a value of %d bytes runs past its page", where, i, vsize)
		}
		if flags&leafIsBucket == 0 {
			continue
		}
		value := buf[end : end+int(vsize)]
		if len(value) < bucketHeader {
			return fmt.Errorf("%s, element %d: a bucket of %d bytes", where, i, len(value))
		}
		if root := native.Uint64(value); root != 0 {
			if err := w.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		// An inline bucket: its leaf page is the rest of the value.
		inline := value[bucketHeader:]
		if len(inline) < pageHeaderSize {
			return fmt.Errorf("%s, element %d: an inline bucket without its page", where, i)
		}
		if f := native.Uint16(inline[8:]); f != flagLeaf {
			return fmt.Errorf("%s, element %d: an inline bucket's page has flags %#x", where, i, f)
		}
		if depth+1 > maxBucketDepth {
			return fmt.Errorf("%s: deeper than %d levels", where, maxBucketDepth)
		}
		if err := w.leaf(inline, int(native.Uint16(inline[10:])), depth+1, fmt.Sprintf("%s, element %d (inline bucket)", where, i)); err != nil {
			return err
		}
	}
	return nil
}

// span checks that n bytes at pos past the element at elem lie in buf, and
// returns where they end.
func span(buf []byte, elem int, pos, n uint32) (int, error) {
	start := uint64(elem) + uint64(pos)
	end := start + uint64(n)
	if end > uint64(len(buf)) {
		return 0, fmt.Errorf("of %d bytes at %d runs past its page (%d bytes)", n, start, len(buf))
	}
	return int(end), nil
}

// newestMeta is the meta page bbolt uses (DB.meta): of the two at page 0
// and pageSize, the valid one with the higher transaction id, else the
// other valid one; false when neither is valid.
func (w *pageWalk) newestMeta(pageSize int64) (meta, bool) {
	m0, m1 := w.readMeta(0), w.readMeta(pageSize)
	switch {
	case m0.valid && m1.valid && m1.txid > m0.txid, !m0.valid && m1.valid:
		return m1, true
	case m0.valid:
		return m0, true
	}
	return meta{}, false
}
