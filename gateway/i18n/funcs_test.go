package i18n

import (
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"mallgrid/billing"
)

func TestLocalizer_Funcs(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	const page = `<h1>{{t "nav.meters"}}</h1>` +
		`<p>{{money .Balance}} {{money .Owed}} {{kwh .Import}} {{kwh .Wh}} {{kwh ""}} {{number .Count}}</p>` +
		`<p>{{time .At}} {{date .At}} {{clock .At}} {{time .Never}} {{ago .Seen .Now}}</p>` +
		`<p>{{state .State}} {{relay "open"}} {{event "bus_down"}} {{role "admin"}} {{online false}}</p>` +
		`<p>{{t "login.too_many" "wait" .Wait}}</p>`
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seen := at.Add(-90 * time.Second)
	data := map[string]any{
		"Balance": "1234.5", "Owed": billing.Money(-12_300_000), "Import": "1234.567", "Wh": int64(1500), "Count": 2000,
		"At": at, "Never": (*time.Time)(nil), "Seen": &seen, "Now": at, "State": "cut_off", "Wait": 3 * time.Minute,
	}
	want := map[Lang]string{
		En: `<h1>Meters</h1><p>¥1,234.50 -¥12.30 1,234.567 1.500 — 2,000</p>` +
			`<p>2026-01-02 11:04:05 2026-01-02 11:04:05 — 1 min ago</p>` +
			`<p>Cut off Open (power off) Bus down Administrator Offline</p>` +
			`<p>Too many failed logins: try again in 3 min.</p>`,
		ZhCN: `<h1>电表</h1><p>¥1,234.50 -¥12.30 1,234.567 1.500 — 2,000</p>` +
			`<p>2026-01-02 11:04:05 2026-01-02 11:04:05 — 1 分钟前</p>` +
			`<p>已断电 分闸（断电） 总线故障 管理员 离线</p>` +
			`<p>登录失败次数过多，请 3 分钟后再试。</p>`,
	}
	for _, lang := range Langs() {
		l := New(lang, sh)
		tpl := template.Must(template.New("p").Funcs(l.Funcs()).Parse(page))
		var b strings.Builder
		if err := tpl.Execute(&b, data); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if got := b.String(); got != want[lang] {
			t.Errorf("%s:\n got %s\nwant %s", lang, got, want[lang])
		}
	}
	// Values that are not what they claim fail the page rather than show
	// a guess.
	for _, bad := range []string{`{{money "1,234.50"}}`, `{{money 1.5}}`, `{{kwh "1.2345"}}`, `{{kwh 12}}`, `{{time "today"}}`, `{{number "7"}}`} {
		tpl := template.Must(template.New("bad").Funcs(New(En, nil).Funcs()).Parse(bad))
		if err := tpl.Execute(&strings.Builder{}, nil); err == nil {
			t.Errorf("%s: got no error; want one", bad)
		}
	}
}

func TestParseKWh(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1234.567": 1234567, "1.5": 1500, "-0.005": -5, "007.10": 7100} {
		if got, err := parseKWh(in); err != nil || got != want {
			t.Errorf("parseKWh(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", ".5", "1.", "1.2345", "1,000", "1e3", "--1", " 1", "1234567890123456"} {
		if got, err := parseKWh(in); err == nil {
			t.Errorf("parseKWh(%q) = %d; want an error", in, got)
		}
	}
}

func TestCheckTemplates(t *testing.T) {
	fsys := fstest.MapFS{
		"good.html": {Data: []byte(`{{define "x"}}{{t "nav.meters"}}{{end}}` +
			`{{if .A}}{{t "login.too_many" "wait" .M}}{{else}}{{range .B}}{{with .C}}{{printf "%s" (t "nav.tenants")}}{{end}}{{end}}{{end}}` +
			`{{template "x" .}}{{fmtValue . "power"}}`)},
		"bad.html": {Data: []byte("<p>\n" +
			`{{t "nav.nowhere"}}` + "\n" + // line 2
			`{{t .ID}}` + "\n" +
			`{{t "login.too_many"}}` + "\n" +
			`{{t "nav.meters" "n" 1}}` + "\n" +
			`{{t "login.too_many" .Name 5}}` + "\n" +
			`{{if .X}}{{len (t "no.such")}}{{end}}` + "\n" +
			`{{"nav.meters" | t}}` + "\n")},
		"broken.html": {Data: []byte(`{{if}}`)},
	}
	if err := CheckTemplates(fsys, "good.html"); err != nil {
		t.Errorf("good.html: %v", err)
	}
	err := CheckTemplates(fsys, "bad.html")
	if err == nil {
		t.Fatal("bad.html: got no error")
	}
	for _, want := range []string{
		`bad.html:2:`, `"nav.nowhere": no such message in [en zh-CN]`,
		`bad.html:3:`, `t .ID: the message id must be a literal string`,
		`bad.html:4:`, `"login.too_many": gives placeholders []; the message has [wait]`,
		`bad.html:5:`, `"nav.meters": gives placeholders [n]; the message has []`,
		`bad.html:6:`, `placeholder name .Name must be a literal string`,
		`bad.html:7:`, `"no.such": no such message`,
		`bad.html:8:`, `t needs a literal message id`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant it to contain %q", err, want)
		}
	}
	t.Logf("bad.html:\n%v", err)
	if got := strings.Count(err.Error(), "\n") + 1; got != 7 {
		t.Errorf("got %d problems; want 7:\n%v", got, err)
	}
	if err := CheckTemplates(fsys, "broken.html"); err == nil {
		t.Error("broken.html: got no error")
	}
	if err := CheckTemplates(fsys, "pages/*.html"); err == nil || !strings.Contains(err.Error(), "no template matches") {
		t.Errorf("a pattern matching nothing: got %v; want an error", err)
	}
}

// TestCheckTemplates_Gateway checks the t calls of every template under
// gateway/, wherever the web layer keeps them.
func TestCheckTemplates_Gateway(t *testing.T) {
	root := filepath.Join("..")
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "vendor" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".html") || strings.HasSuffix(path, ".tmpl")) {
			rel, _ := filepath.Rel(root, path)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no template found under gateway/; the walk is broken")
	}
	if err := CheckTemplates(os.DirFS(root), names...); err != nil {
		t.Error(err)
	}
	t.Logf("checked %s", strings.Join(names, ", "))
}
