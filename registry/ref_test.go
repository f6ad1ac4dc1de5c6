package registry

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "127.0.0.1:5000/app:1.0", want: Ref{Registry: "127.0.0.1:5000", Repository: "app", Tag: "1.0"}},
		{in: "docker://ghcr.io/me/app", want: Ref{Registry: "ghcr.io", Repository: "me/app"}},
		{in: "localhost/a/b/c:latest", want: Ref{Registry: "localhost", Repository: "a/b/c", Tag: "latest"}},
		{in: "[::1]:5000/app:x", want: Ref{Registry: "[::1]:5000", Repository: "app", Tag: "x"}},
		{in: "r.io/app@sha256:" + strings.Repeat("a", 64), want: Ref{Registry: "r.io", Repository: "app", Digest: "sha256:" + strings.Repeat("a", 64)}},
		{in: "r.io/app:t@sha256:" + strings.Repeat("b", 64), want: Ref{Registry: "r.io", Repository: "app", Tag: "t", Digest: "sha256:" + strings.Repeat("b", 64)}},
		{in: "app:1.0", err: "names no registry host"},
		{in: "library/app", err: "names no registry host"},
		{in: "", err: "empty"},
		{in: "docker://", err: "empty"},
		{in: "r.io/App:1", err: "lowercase"},
		{in: "r.io/app:-x", err: "tag"},
		{in: "r.io/app@sha256:xyz", err: "digest"},
		{in: "r.io/:1", err: "repository"},
	} {
		got, err := ParseRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRef(%q) = %+v, %v; want an error about %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestIsLocalhost(t *testing.T) {
	for in, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true, "[::1]:80": true,
		"example.com": false, "10.0.0.1:5000": false, "localhost.evil.com": false,
	} {
		if got := isLocalhost(in); got != want {
			t.Errorf("isLocalhost(%q) = %v", in, got)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000/app:1.0", "docker://r.io/a/b@sha256:" + strings.Repeat("0", 64), "a/b", ":/:", "[::1]:1/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		// A parsed reference prints back to one that parses the same.
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v, but its String %q parses to %+v, %v", s, r, r.String(), again, err)
		}
	})
}
