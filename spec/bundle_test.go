package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The mount a container sees at a path is the last one covering it, as
// runc applies mounts in order: a later mount at a parent hides an earlier,
// deeper one. rootfs's verify and spec's resolver share this rule.
func TestCoveringMount(t *testing.T) {
	ms := []specs.Mount{
		{Destination: "/a/b", Type: "bind", Source: "/src"},
		{Destination: "/a", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/c", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/c/d/", Type: "bind", Source: "/src"},
		{Destination: "/", Type: "overlay", Source: "overlay"},
	}
	for _, tc := range []struct {
		p    string
		want int
	}{
		{"/a/b/c", 1}, // the tmpfs at /a, made after /a/b, hides it
		{"/a/b", 1},
		{"/c/d/e", 3}, // the bind at /c/d, made after /c, is on top
		{"/c/x", 2},
		{"/ab", -1}, // a prefix of the name is not a parent
		{"/etc", -1},
	} {
		if _, i := CoveringMount(ms, tc.p); i != tc.want {
			t.Errorf("CoveringMount(%s) = mounts[%d], want mounts[%d]", tc.p, i, tc.want)
		}
	}
}

// The resolver follows the same rule: a program under a bind that a later
// tmpfs hides is not there.
func TestResolverUsesCoveringMount(t *testing.T) {
	rootfs := t.TempDir()
	r := &resolver{rootfs: rootfs, mounts: []specs.Mount{
		{Destination: "/opt/tool", Type: "bind", Source: rootfs, Options: []string{"rbind", "ro"}},
		{Destination: "/opt", Type: "tmpfs", Source: "tmpfs"},
	}}
	if _, err := r.hostPath("/opt/tool/bin/x"); err == nil {
		t.Error("a path under /opt/tool resolved through the bind that the later tmpfs at /opt hides")
	}
}
