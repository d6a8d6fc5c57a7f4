package config

import (
	"errors"
	"fmt"
	"testing"
)

func TestProblem_Error(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "m.yaml", Line: 7, Key: "buses[1].parity", Msg: "bad"}, "m.yaml:7: buses[1].parity: bad"},
		{Problem{File: "m.yaml", Key: "http.listen", Msg: "env MALLGRID_HTTP_LISTEN: bad"}, "m.yaml: http.listen: env MALLGRID_HTTP_LISTEN: bad"},
		{Problem{File: "m.yaml", Line: 3, Msg: "not YAML: x"}, "m.yaml:3: not YAML: x"},
		{Problem{File: "m.yaml", Msg: "cannot read: x"}, "m.yaml: cannot read: x"},
	}
	for _, tc := range cases {
		if got := tc.p.Error(); got != tc.want {
			t.Errorf("got %q; want %q", got, tc.want)
		}
	}
}

func TestProblems_Error_SortedByLine(t *testing.T) {
	ps := Problems{
		{File: "m", Line: 9, Key: "c", Msg: "3"},
		{File: "m", Line: 2, Key: "a", Msg: "1"},
		{File: "m", Key: "env", Msg: "0"},
		{File: "m", Line: 2, Key: "b", Msg: "2"},
	}
	want := "m: env: 0\nm:2: a: 1\nm:2: b: 2\nm:9: c: 3"
	if got := ps.Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if ps[0].Line != 9 {
		t.Errorf("Error reordered its receiver; want it left alone")
	}
}

func TestProblems_As(t *testing.T) {
	err := fmt.Errorf("config check: %w", error(&Problems{{File: "m", Line: 1, Key: "k", Msg: "x"}}))
	var ptr *Problems
	if !errors.As(err, &ptr) || len(*ptr) != 1 {
		t.Errorf("errors.As(*Problems): got %v; want the one problem", ptr)
	}
	var val Problems
	if !errors.As(err, &val) || len(val) != 1 {
		t.Errorf("errors.As(Problems): got %v; want the one problem", val)
	}
	var other *Problem
	if errors.As(err, &other) {
		t.Errorf("errors.As(*Problem): got true; want false")
	}
}
