package i18n

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The codes the pages show as words, read from the gateway's own Go
// sources so that a new one without a word fails this package's tests:
// every kind of store.Event the code builds (a literal, a constant, a
// local variable given literals, a function returning literals, or
// string(x.Kind) of a typed kind, whose constants are read below), and
// the constants and functions named here. This table is the one place to
// name a new family of codes.
var (
	// typedConsts: the string constants of a named type (in any package
	// when pkg is "") are words under prefix.
	typedConsts = []struct{ pkg, typ, prefix string }{
		{"", "EventKind", "event."},           // billing/policy, billing/counter
		{"billing/policy", "State", "state."}, // account states
		{"billing/policy", "Hold", "hold."},   // what holds a due cut-off
		{"store", "Kind", "entry."},           // ledger entry kinds
		{"", "Role", "role."},                 // users' roles, once the web layer declares them
	}
	// namedConsts: these constants' values are words under prefix.
	namedConsts = []struct {
		pkg    string
		names  []string
		prefix string
	}{
		{"gateway/config", []string{"TenantMeter", "PublicMeter", "MainMeter"}, "meter_role."},
		{"gateway/poll", []string{"retriedKind"}, "poll_error."},
	}
	// prefixedConsts: the string constants of pkg whose names begin with
	// name are words under prefix; there may be none yet.
	prefixedConsts = []struct{ pkg, name, prefix string }{
		{"gateway/web", "Role", "role."}, // RoleViewer = "viewer", …
	}
	// funcReturns: the string literals these functions return are words
	// under prefix ("" returned is not a word).
	funcReturns = []struct{ pkg, fn, prefix string }{
		{"drivers/modbus", "ErrorKind", "poll_error."},
		{"drivers/meter", "RelayState.String", "relay."},
	}
	// mapKeys: the string keys of these package-level map literals are
	// words under prefix.
	mapKeys = []struct{ pkg, name, prefix string }{
		{"gateway/accounts", "channels", "channel."},
	}
	// extraWords are words of codes that live in no constant: the web
	// layer's "protected" and "archived" account marks, and relay states
	// (desired is closed or open, actual also unknown).
	extraWords = []string{"state.protected", "state.archived", "relay.open", "relay.closed", "relay.unknown",
		"role.viewer", "role.operator", "role.finance", "role.admin",
		// Alarms' states and severities (gateway/web alarms.go), the
		// languages' own names; the web tests check the quantities a meter
		// page names.
		"alarm.state.active", "alarm.state.acknowledged", "alarm.state.cleared",
		"alarm.severity.critical", "alarm.severity.warning", "lang.en", "lang.zh-CN",
		// The enforcer's reasons for a relay's state (enforce.Override).
		"relay.why.override", "relay.why.not_tenant", "relay.why.exhausted", "relay.why.may_draw"}
)

// source is what the scan keeps of the module's non-test Go files.
type source struct {
	fset    *token.FileSet
	files   map[string][]*ast.File                  // by package directory, relative to the root
	consts  map[string]map[string]constVal          // package → name → value
	funcs   map[string]map[string]*ast.FuncDecl     // package → "F" or "Type.Method"
	imports map[*ast.File]map[string]string         // file → local name → package directory
	vars    map[string]map[string]*ast.CompositeLit // package → var name → its literal
}

type constVal struct {
	typ, val string
	pos      token.Pos
}

const module = "mallgrid/"

// scan parses every non-test Go file under root (a module mallgrid).
func scan(root string) (*source, error) {
	s := &source{fset: token.NewFileSet(), files: map[string][]*ast.File{}, consts: map[string]map[string]constVal{},
		funcs: map[string]map[string]*ast.FuncDecl{}, imports: map[*ast.File]map[string]string{}, vars: map[string]map[string]*ast.CompositeLit{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(s.fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		s.add(filepath.ToSlash(rel), f)
		return nil
	})
	return s, err
}

func (s *source) add(pkg string, f *ast.File) {
	s.files[pkg] = append(s.files[pkg], f)
	imps := map[string]string{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if !strings.HasPrefix(p, module) {
			continue
		}
		p = strings.TrimPrefix(p, module)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		imps[name] = p
	}
	s.imports[f] = imps
	if s.consts[pkg] == nil {
		s.consts[pkg], s.funcs[pkg], s.vars[pkg] = map[string]constVal{}, map[string]*ast.FuncDecl{}, map[string]*ast.CompositeLit{}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				if id, ok := d.Recv.List[0].Type.(*ast.Ident); ok {
					name = id.Name + "." + name
				}
			}
			s.funcs[pkg][name] = d
		case *ast.GenDecl:
			var typ string // carried to later specs of a const block
			for _, sp := range d.Specs {
				vs, ok := sp.(*ast.ValueSpec)
				if !ok {
					continue
				}
				if d.Tok == token.VAR {
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if cl, ok := vs.Values[i].(*ast.CompositeLit); ok {
								s.vars[pkg][n.Name] = cl
							}
						}
					}
					continue
				}
				if d.Tok != token.CONST {
					continue
				}
				if id, ok := vs.Type.(*ast.Ident); ok {
					typ = id.Name
				} else if vs.Type == nil && len(vs.Values) > 0 {
					typ = ""
				}
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if v, ok := stringLit(vs.Values[i]); ok {
						s.consts[pkg][n.Name] = constVal{typ: typ, val: v, pos: n.Pos()}
					}
				}
			}
		}
	}
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(bl.Value)
	return v, err == nil
}

// words returns every word id the sources call for, each with where it
// comes from, and the problems of the scan: a kind it cannot read, a
// named source it cannot find.
func (s *source) words(withTables bool) (map[string]string, []string) {
	ids := map[string]string{}
	var problems []string
	add := func(id string, pos token.Pos) {
		if _, ok := ids[id]; !ok {
			ids[id] = s.fset.Position(pos).String()
		}
	}
	// Every store.Event literal's kind.
	for _, pkg := range slices.Sorted(maps.Keys(s.files)) {
		for _, f := range s.files[pkg] {
			for _, fd := range f.Decls {
				// Elements of a []store.Event literal may leave out their type.
				elided := map[*ast.CompositeLit]bool{}
				ast.Inspect(fd, func(n ast.Node) bool {
					cl, ok := n.(*ast.CompositeLit)
					if !ok {
						return true
					}
					if at, ok := cl.Type.(*ast.ArrayType); ok && s.isStoreEvent(pkg, f, at.Elt) {
						for _, el := range cl.Elts {
							if ecl, ok := el.(*ast.CompositeLit); ok && ecl.Type == nil {
								elided[ecl] = true
							}
						}
					}
					if !elided[cl] && !s.isStoreEvent(pkg, f, cl.Type) {
						return true
					}
					for _, el := range cl.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if k, _ := kv.Key.(*ast.Ident); !ok || k == nil || k.Name != "Kind" {
							continue
						}
						kinds, typed, err := s.kinds(pkg, f, fd, kv.Value)
						if err != nil {
							problems = append(problems, fmt.Sprintf("%s: the event's kind %s: %v; write it as a literal or a constant so that its word can be checked",
								s.fset.Position(kv.Value.Pos()), exprString(kv.Value), err))
						}
						if typed {
							continue // string(x.Kind): its constants are read as typed kinds
						}
						for _, k := range kinds {
							add("event."+k, kv.Value.Pos())
						}
					}
					return true
				})
			}
		}
	}
	for _, tc := range typedConsts {
		for _, pkg := range slices.Sorted(maps.Keys(s.consts)) {
			if tc.pkg != "" && pkg != tc.pkg {
				continue
			}
			for _, c := range s.consts[pkg] {
				if c.typ == tc.typ {
					add(tc.prefix+c.val, c.pos)
				}
			}
		}
	}
	if !withTables {
		return ids, problems
	}
	for _, nc := range namedConsts {
		for _, n := range nc.names {
			c, ok := s.consts[nc.pkg][n]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: no string constant %s (named in kinds_test.go)", nc.pkg, n))
				continue
			}
			add(nc.prefix+c.val, c.pos)
		}
	}
	for _, pc := range prefixedConsts {
		for name, c := range s.consts[pc.pkg] {
			if strings.HasPrefix(name, pc.name) {
				add(pc.prefix+c.val, c.pos)
			}
		}
	}
	for _, fr := range funcReturns {
		fd, ok := s.funcs[fr.pkg][fr.fn]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no function %s (named in kinds_test.go)", fr.pkg, fr.fn))
			continue
		}
		vals, err := returnedLiterals(fd)
		if err != nil || len(vals) == 0 {
			problems = append(problems, fmt.Sprintf("%s.%s: %v (want it to return string literals)", fr.pkg, fr.fn, err))
		}
		for _, v := range vals {
			add(fr.prefix+v, fd.Pos())
		}
	}
	for _, mk := range mapKeys {
		cl, ok := s.vars[mk.pkg][mk.name]
		n := 0
		for _, el := range eltsOf(cl) {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				if k, ok := stringLit(kv.Key); ok {
					add(mk.prefix+k, kv.Pos())
					n++
				}
			}
		}
		if !ok || n == 0 {
			problems = append(problems, fmt.Sprintf("%s: no map literal %s with string keys (named in kinds_test.go)", mk.pkg, mk.name))
		}
	}
	return ids, problems
}

func eltsOf(cl *ast.CompositeLit) []ast.Expr {
	if cl == nil {
		return nil
	}
	return cl.Elts
}

// isStoreEvent reports whether a composite literal's type is store.Event.
func (s *source) isStoreEvent(pkg string, f *ast.File, typ ast.Expr) bool {
	switch t := typ.(type) {
	case *ast.SelectorExpr:
		x, ok := t.X.(*ast.Ident)
		return ok && t.Sel.Name == "Event" && s.imports[f][x.Name] == "store"
	case *ast.Ident:
		return pkg == "store" && t.Name == "Event"
	}
	return false
}

// kinds reads the values an event's Kind expression can take in function
// fd of file f. typed is true for string(x.Kind), a conversion of a typed
// kind.
func (s *source) kinds(pkg string, f *ast.File, fd ast.Decl, e ast.Expr) (vals []string, typed bool, err error) {
	if v, ok := stringLit(e); ok {
		return []string{v}, false, nil
	}
	switch e := e.(type) {
	case *ast.Ident:
		if c, ok := s.consts[pkg][e.Name]; ok {
			return []string{c.val}, false, nil
		}
		vals, err := assignedLiterals(fd, e.Name)
		return vals, false, err
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			if c, ok := s.consts[s.imports[f][x.Name]][e.Sel.Name]; ok {
				return []string{c.val}, false, nil
			}
		}
	case *ast.CallExpr:
		switch fn := e.Fun.(type) {
		case *ast.Ident:
			if fn.Name == "string" && len(e.Args) == 1 {
				if sel, ok := e.Args[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "Kind" {
					return nil, true, nil
				}
				break
			}
			if d, ok := s.funcs[pkg][fn.Name]; ok {
				vals, err := returnedLiterals(d)
				return vals, false, err
			}
		case *ast.SelectorExpr:
			if x, ok := fn.X.(*ast.Ident); ok {
				if d, ok := s.funcs[s.imports[f][x.Name]][fn.Sel.Name]; ok {
					vals, err := returnedLiterals(d)
					return vals, false, err
				}
			}
		}
	}
	return nil, false, fmt.Errorf("not a literal, a constant, a variable given literals or a function returning them")
}

// assignedLiterals returns the literals a local variable is given in fd;
// it fails if it is ever given anything else, or nothing.
func assignedLiterals(fd ast.Decl, name string) ([]string, error) {
	var vals []string
	var bad error
	ast.Inspect(fd, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		for i, l := range as.Lhs {
			if id, ok := l.(*ast.Ident); ok && id.Name == name && i < len(as.Rhs) {
				if v, ok := stringLit(as.Rhs[i]); ok {
					vals = append(vals, v)
				} else {
					bad = fmt.Errorf("%s is given %s", name, exprString(as.Rhs[i]))
				}
			}
		}
		return true
	})
	if bad == nil && len(vals) == 0 {
		bad = fmt.Errorf("%s is given no literal here", name)
	}
	return vals, bad
}

// returnedLiterals returns the non-empty string literals fd returns; it
// fails on a return of anything else.
func returnedLiterals(fd *ast.FuncDecl) ([]string, error) {
	var vals []string
	var bad error
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		r, ok := n.(*ast.ReturnStmt)
		if !ok || len(r.Results) != 1 {
			return true
		}
		if v, ok := stringLit(r.Results[0]); !ok {
			bad = fmt.Errorf("%s returns %s", fd.Name.Name, exprString(r.Results[0]))
		} else if v != "" {
			vals = append(vals, v)
		}
		return true
	})
	return vals, bad
}

func exprString(e ast.Expr) string {
	var b strings.Builder
	if err := printer.Fprint(&b, token.NewFileSet(), e); err != nil {
		return fmt.Sprintf("%T", e)
	}
	return b.String()
}

// TestWords_EveryCodeHasAWord fails when the gateway stores an event kind,
// or declares a state, hold, role, entry kind, meter role, polling error,
// relay state or channel, that has no word in both catalogs.
func TestWords_EveryCodeHasAWord(t *testing.T) {
	src, err := scan(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ids, problems := src.words(true)
	for _, p := range problems {
		t.Error(p)
	}
	for _, id := range extraWords {
		if _, ok := ids[id]; !ok {
			ids[id] = "kinds_test.go extraWords"
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		for _, l := range Langs() {
			if !Has(l, id) {
				t.Errorf("%s: %q has no word in locales/%s.json", ids[id], id, l)
			}
			// An event kind is also told as a sentence (EventText).
			if kind, ok := strings.CutPrefix(id, "event."); ok && !Has(l, EventTextID(kind, "")) {
				t.Errorf("%s: event kind %q has no sentence %s in locales/%s.json", ids[id], kind, EventTextID(kind, ""), l)
			}
		}
	}
	// A sentence of a kind nothing stores is a leftover (or a typo of a
	// kind): it would never be shown.
	for _, id := range IDs() {
		if rest, ok := strings.CutPrefix(id, "event_text."); ok {
			kind, _, _ := strings.Cut(rest, ".")
			if _, known := ids["event."+kind]; !known {
				t.Errorf("%s: no event of kind %q is stored", id, kind)
			}
		}
	}
	// The scan must reach each way a kind is written, or it proves nothing.
	for _, id := range []string{
		"event.topup_receipt",     // a literal (gateway/accounts)
		"event.relay_opened",      // a local variable (gateway/enforce)
		"event.meter_offline",     // another package's constant (gateway/health)
		"event.billing_stopped",   // a function's result (gateway/pipeline)
		"event.warning_1",         // a typed constant (billing/policy)
		"event.spike_quarantined", // a typed constant (billing/counter)
		"state.cut_off", "hold.protected_hours", "entry.reversal",
		"meter_role.public", "poll_error.timeout_retried", "poll_error.crc", "relay.unknown", "channel.alipay",
	} {
		if _, ok := ids[id]; !ok {
			t.Errorf("the scan did not find %q; it is broken", id)
		}
	}
	t.Logf("%d words checked", len(ids))
}

// TestWords_NewKindFails proves the scan fails a store.Event whose kind
// has no word, and one whose kind it cannot read.
func TestWords_NewKindFails(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("store/events.go", "package store\n\ntype Event struct{ Kind string }\n")
	write("gateway/x/x.go", `package x

import st "mallgrid/store"

const kindGone = "meter_offline"

func a() []st.Event { return []st.Event{{Kind: "in_a_slice"}} }
func b() st.Event   { return st.Event{Kind: "brand_new_kind"} }
func c() st.Event   { return st.Event{Kind: kindGone} }
func d(k string) st.Event { return st.Event{Kind: k} }
`)
	src, err := scan(root)
	if err != nil {
		t.Fatal(err)
	}
	ids, problems := src.words(false)
	for _, id := range []string{"event.brand_new_kind", "event.in_a_slice", "event.meter_offline"} {
		if _, ok := ids[id]; !ok {
			t.Errorf("got %v; want %s found", ids, id)
		}
	}
	if Has(En, "event.brand_new_kind") {
		t.Fatal("the catalog has the made-up kind; pick another")
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "x.go:10") || !strings.Contains(problems[0], "the event's kind k") {
		t.Errorf("got problems %q; want one, for the kind k of x.go:10", problems)
	}
}
