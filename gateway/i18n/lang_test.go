package i18n

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept, cookie string
		want           Lang
	}{
		{"", "", En},
		{"zh-CN,zh;q=0.9,en;q=0.8", "", ZhCN}, // Chrome in China
		{"zh", "", ZhCN},
		{"zh-Hans", "", ZhCN},
		{"zh-Hans-CN", "", ZhCN},
		{"zh-SG", "", ZhCN},
		{"ZH-cn", "", ZhCN},
		{"en-US,en;q=0.9", "", En},
		{"en-US,en;q=0.9,zh-CN;q=0.8", "", En},
		{"fr-FR,fr;q=0.9,zh-CN;q=0.5", "", ZhCN}, // the best language there is a catalog for
		{"fr-FR,de", "", En},
		{"zh-TW,zh-HK;q=0.9", "", En}, // traditional script: no catalog
		{"zh-TW,zh-CN;q=0.5", "", ZhCN},
		{"en;q=0.5,zh-CN;q=0.8", "", ZhCN}, // by q-value, not by order
		{"en;q=0.8,zh-CN;q=0.8", "", En},   // equal q: the first listed
		{"zh-CN;q=0.8,en;q=0.8", "", ZhCN},
		{"zh-CN;q=0,en;q=0.1", "", En}, // q=0 refuses
		{"zh-CN;q=0", "", En},
		{"*;q=0.5,zh-CN;q=0.4", "", En},
		{"zh-CN;q=0.6,*;q=0.5", "", ZhCN},
		{"!!bad!!,zh-CN;q=0.7", "", ZhCN}, // a bad entry spoils only itself
		{"zh-CN;q=abc,en;q=0.2", "", En},  // a bad weight too
		{" zh-CN ; q=0.9 , , en;q=0.1", "", ZhCN},
		{"en", "zh-CN", ZhCN}, // the user's choice wins
		{"zh-CN", "en", En},
		{"zh-CN", "zh_cn", ZhCN},
		{"zh-CN", "klingon", ZhCN}, // a cookie that names nothing is ignored
		{"zh-CN", "zh-TW", ZhCN},
		{strings.Repeat("fr,", 500) + "zh-CN", "", En}, // not a browser's header
	}
	for _, c := range cases {
		if got := Negotiate(c.accept, c.cookie); got != c.want {
			t.Errorf("Negotiate(%q, %q) = %q; want %q", c.accept, c.cookie, got, c.want)
		}
	}
}

func TestParseLang(t *testing.T) {
	for in, want := range map[string]Lang{"en": En, "en-GB": En, "zh-CN": ZhCN, "zh": ZhCN, "zh-hans": ZhCN, " zh-CN ": ZhCN} {
		if got, ok := ParseLang(in); !ok || got != want {
			t.Errorf("ParseLang(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "zh-TW", "zh-Hant", "zh-HK", "fr", "x", "*", "en-", strings.Repeat("a", 100)} {
		if got, ok := ParseLang(in); ok {
			t.Errorf("ParseLang(%q) = %q; want refused", in, got)
		}
	}
	// Each language's own tag names it: the cookie a page sets reads back.
	for _, l := range Langs() {
		if got, ok := ParseLang(l.String()); !ok || got != l {
			t.Errorf("ParseLang(%q) = %q, %v; want itself", l, got, ok)
		}
	}
}
