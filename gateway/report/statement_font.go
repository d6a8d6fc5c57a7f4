package report

import (
	"encoding/binary"
	"errors"
)

// glyphSet says which characters of the Basic Multilingual Plane a font
// draws: one bit a character.
type glyphSet [1 << 16 / 64]uint64

func (g *glyphSet) has(r rune) bool {
	return r >= 0 && r <= 0xFFFF && g[r/64]&(1<<(r%64)) != 0
}

// errCmap is returned for a TrueType file without a readable Unicode BMP
// character map.
var errCmap = errors.New("report: font has no readable Unicode (3,1) format 4 cmap")

// fontGlyphs reads the characters a TrueType font maps to a glyph from its
// Windows Unicode BMP character map (platform 3, encoding 1, format 4), so
// that a statement sets what the font lacks in another font or as "?"
// rather than as an empty box. Every offset is checked: a damaged file
// gives errCmap, never a panic.
func fontGlyphs(ttf []byte) (*glyphSet, error) {
	u16 := func(off int) (int, bool) {
		if off < 0 || off+2 > len(ttf) {
			return 0, false
		}
		return int(binary.BigEndian.Uint16(ttf[off:])), true
	}
	u32 := func(off int) (int, bool) {
		if off < 0 || off+4 > len(ttf) {
			return 0, false
		}
		return int(binary.BigEndian.Uint32(ttf[off:])), true
	}
	tables, ok := u16(4)
	if !ok {
		return nil, errCmap
	}
	cmap := -1
	for i := 0; i < tables; i++ {
		rec := 12 + 16*i
		if rec+16 > len(ttf) {
			return nil, errCmap
		}
		if string(ttf[rec:rec+4]) == "cmap" {
			cmap, _ = u32(rec + 8)
		}
	}
	subtables, ok := u16(cmap + 2)
	if cmap < 0 || !ok {
		return nil, errCmap
	}
	sub := -1
	for i := 0; i < subtables; i++ {
		platform, ok1 := u16(cmap + 4 + 8*i)
		encoding, ok2 := u16(cmap + 6 + 8*i)
		off, ok3 := u32(cmap + 8 + 8*i)
		if !ok1 || !ok2 || !ok3 {
			return nil, errCmap
		}
		if platform == 3 && encoding == 1 {
			sub = cmap + off
		}
	}
	if format, ok := u16(sub); sub < 0 || !ok || format != 4 {
		return nil, errCmap
	}
	segX2, ok := u16(sub + 6)
	if !ok {
		return nil, errCmap
	}
	ends, starts := sub+14, sub+16+segX2
	deltas, ranges := starts+segX2, starts+2*segX2
	var g glyphSet
	for i := 0; i < segX2/2; i++ {
		end, ok1 := u16(ends + 2*i)
		start, ok2 := u16(starts + 2*i)
		delta, ok3 := u16(deltas + 2*i)
		rangeOff, ok4 := u16(ranges + 2*i)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, errCmap
		}
		for c := start; c <= end && c <= 0xFFFF; c++ {
			glyph := (c + delta) & 0xFFFF
			if rangeOff != 0 {
				// idRangeOffset counts from its own place in the table.
				v, ok := u16(ranges + 2*i + rangeOff + 2*(c-start))
				if !ok {
					return nil, errCmap
				}
				glyph = 0
				if v != 0 {
					glyph = (v + delta) & 0xFFFF
				}
			}
			if glyph != 0 && c != 0xFFFF {
				g[c/64] |= 1 << (c % 64)
			}
		}
	}
	return &g, nil
}

// cp1252Extra are the characters above Latin-1 that Helvetica sets through
// the cp1252 encoding: dashes, curly quotes, the euro, the ellipsis.
var cp1252Extra = map[rune]bool{
	'€': true, '‚': true, 'ƒ': true, '„': true, '…': true, '†': true, '‡': true, 'ˆ': true, '‰': true,
	'Š': true, '‹': true, 'Œ': true, 'Ž': true, '‘': true, '’': true, '“': true, '”': true, '•': true,
	'–': true, '—': true, '˜': true, '™': true, 'š': true, '›': true, 'œ': true, 'ž': true, 'Ÿ': true,
}
