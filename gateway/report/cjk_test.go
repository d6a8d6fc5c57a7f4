package report

import (
	"reflect"
	"testing"
)

// Chinese goes to the CJK font, Latin to Helvetica, what neither draws is
// "?" — as in a statement.
func TestCJK_Runs(t *testing.T) {
	c, err := LoadCJK()
	if err != nil {
		t.Fatal(err)
	}
	got := c.Runs("扫码充值 Scan 😀 — 商铺")
	want := []TextRun{{CJK: true, Text: "扫码充值"}, {Text: " Scan ? — "}, {CJK: true, Text: "商铺"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Runs = %+v; want %+v", got, want)
	}
	if len(c.Font()) < 1<<20 {
		t.Errorf("Font() is %d bytes; want the embedded TrueType file", len(c.Font()))
	}
}
