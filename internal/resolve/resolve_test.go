package resolve

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

type tree map[string]Node

func (t tree) lstat(p string) (Node, error) {
	if n, ok := t[p]; ok {
		return n, nil
	}
	return Node{}, fs.ErrNotExist
}

func TestPath(t *testing.T) {
	d := Node{Dir: true}
	link := func(to string) Node { return Node{Symlink: true, Target: to} }
	tr := tree{
		"/": d, "/bin": link("usr/bin"), "/usr": d, "/usr/bin": d, "/usr/bin/sh": {},
		"/usr/bin/ash": link("sh"), "/abs": link("/usr/bin/ash"), "/loop": link("/loop"),
		"/up": link("../../../usr"), "/file": {}, "/nix": d, "/nix/store": d,
		"/nix/store/a-x": d, "/nix/store/a-x/bin": link("../b-y/bin"), "/nix/store/b-y": d,
		"/nix/store/b-y/bin": d, "/nix/store/b-y/bin/y": {},
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "/bin/sh", want: "/usr/bin/sh"},
		{in: "/bin/ash", want: "/usr/bin/sh"},
		{in: "/abs", want: "/usr/bin/sh"},
		{in: "/up/bin/sh", want: "/usr/bin/sh"}, // ".." stops at the root
		{in: "/usr/bin/..", want: "/usr"},
		{in: "/", want: "/"},
		{in: "/nix/store/a-x/bin/y", want: "/nix/store/b-y/bin/y"},
		{in: "/loop", err: "too many levels"},
		{in: "/file/x", err: "/file is not a directory"},
		{in: "/missing", err: "file does not exist"},
	} {
		got, _, err := Path(tc.in, tr.lstat)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Path(%s) = %q, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("Path(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, _, err := Path("/loop", tr.lstat); !errors.Is(err, ErrLoop) {
		t.Errorf("a loop gives %v, not ErrLoop", err)
	}
}

func FuzzPath(f *testing.F) {
	f.Add("/a/b/../c", "../x")
	f.Fuzz(func(t *testing.T, p, target string) {
		tr := tree{"/": {Dir: true}, "/a": {Symlink: true, Target: target}, "/b": {Dir: true}}
		got, _, err := Path("/"+p, tr.lstat)
		if err == nil && (got == "" || got[0] != '/') {
			t.Fatalf("Path(%q) = %q: not absolute", p, got)
		}
	})
}
