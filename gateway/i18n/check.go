package i18n

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"text/template/parse"
)

// CheckTemplates parses the templates in fsys that match patterns (as
// fs.Glob reads them) and returns every problem with their {{t …}} calls,
// joined, or nil when there is none. A call must name its message with a
// literal id that both catalogs hold, so a page never shows an id; and it
// must give exactly the placeholders the message has, as literal names
// ({{t "login.too_many" "wait" .Wait}}). Each problem begins with the
// template's file, line and column. A pattern matching no file is a
// problem too: a check of nothing proves nothing.
//
// A package with templates calls it from a test; functions other than t
// need not be known here.
func CheckTemplates(fsys fs.FS, patterns ...string) error {
	var errs []error
	for _, pat := range patterns {
		names, err := fs.Glob(fsys, pat)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			errs = append(errs, fmt.Errorf("%s: no template matches", pat))
		}
		for _, name := range names {
			text, err := fs.ReadFile(fsys, name)
			if err != nil {
				return err
			}
			errs = append(errs, checkTemplate(name, string(text))...)
		}
	}
	return errors.Join(errs...)
}

// checkTemplate checks the t calls of one template file.
func checkTemplate(name, text string) []error {
	t := parse.New(name)
	t.Mode = parse.SkipFuncCheck
	trees := make(map[string]*parse.Tree)
	if _, err := t.Parse(text, "", "", trees); err != nil {
		return []error{err}
	}
	var errs []error
	for _, tn := range slices.Sorted(maps.Keys(trees)) {
		tree := trees[tn]
		walk(tree.Root, func(c *parse.CommandNode) {
			if err := checkCall(c); err != nil {
				loc, _ := tree.ErrorContext(c)
				errs = append(errs, fmt.Errorf("%s: %w", loc, err))
			}
		})
	}
	return errs
}

// checkCall checks one command; only calls of t have anything to check.
func checkCall(c *parse.CommandNode) error {
	if len(c.Args) == 0 {
		return nil
	}
	if fn, ok := c.Args[0].(*parse.IdentifierNode); !ok || fn.Ident != "t" {
		return nil
	}
	if len(c.Args) < 2 {
		return errors.New(`t needs a literal message id: {{t "nav.meters"}}`)
	}
	idNode, ok := c.Args[1].(*parse.StringNode)
	if !ok {
		return fmt.Errorf("t %s: the message id must be a literal string, so that it can be checked", c.Args[1])
	}
	id := idNode.Text
	var missing []Lang
	for _, l := range Langs() {
		if !Has(l, id) {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("t %q: no such message in %v", id, missing)
	}
	rest := c.Args[2:]
	if len(rest)%2 != 0 {
		return fmt.Errorf("t %q: placeholders come as name, value pairs; %d arguments given", id, len(rest))
	}
	var given []string
	for i := 0; i < len(rest); i += 2 {
		n, ok := rest[i].(*parse.StringNode)
		if !ok {
			return fmt.Errorf("t %q: placeholder name %s must be a literal string", id, rest[i])
		}
		given = append(given, n.Text)
	}
	want := placeholders(catalogs[En][id])
	slices.Sort(want)
	slices.Sort(given)
	if !slices.Equal(want, given) {
		return fmt.Errorf("t %q: gives placeholders %v; the message has %v", id, given, want)
	}
	return nil
}

// walk calls f on every command under n, including those in parenthesized
// pipelines and in the branches of if, range and with.
func walk(n parse.Node, f func(*parse.CommandNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, f)
		}
	case *parse.ActionNode:
		walk(n.Pipe, f)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, f)
		}
	case *parse.CommandNode:
		f(n)
		for _, a := range n.Args {
			walk(a, f)
		}
	case *parse.IfNode:
		walkBranch(&n.BranchNode, f)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, f)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, f)
	case *parse.TemplateNode:
		walk(n.Pipe, f)
	}
}

func walkBranch(b *parse.BranchNode, f func(*parse.CommandNode)) {
	walk(b.Pipe, f)
	walk(b.List, f)
	walk(b.ElseList, f)
}
