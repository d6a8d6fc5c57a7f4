package report

// CJK is the statements' Chinese font (Droid Sans Fallback) for the
// gateway's other PDFs, such as the tenants' QR sticker sheets
// (gateway/paycode): the binary carries one copy of its 4 MB. Make it
// with LoadCJK; it is safe for concurrent use.
type CJK struct{ glyphs *glyphSet }

// TextRun is a stretch of text that one font sets: the CJK font, or the
// PDF's built-in Helvetica (cp1252), which has the Latin letters and
// digits the CJK font lacks.
type TextRun struct {
	CJK  bool
	Text string
}

// LoadCJK reads which characters the font draws (a few milliseconds).
func LoadCJK() (*CJK, error) {
	g, err := fontGlyphs(cjkFont)
	if err != nil {
		return nil, err
	}
	return &CJK{glyphs: g}, nil
}

// Font returns the TrueType file, for fpdf's AddUTF8FontFromBytes. It is
// shared: the caller must not change it.
func (c *CJK) Font() []byte { return cjkFont }

// Runs splits s as a statement's text is split: where it changes between
// Helvetica's characters and the CJK font's; a character neither has is
// "?", a control character a space.
func (c *CJK) Runs(s string) []TextRun {
	rs := c.glyphs.runs(s)
	out := make([]TextRun, len(rs))
	for i, r := range rs {
		out[i] = TextRun{CJK: r.cjk, Text: r.text}
	}
	return out
}
