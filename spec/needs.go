package spec

import (
	"github.com/ocitools/ocitools/layout"

	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TmpfsDir is where RootfsSymlinks sends tmpfs mounts that need their mode:
// inside the /dev tmpfs, where the runtime creates the mount point itself.
const TmpfsDir = "/dev/.tmpfs"

// RootfsNeeds lists what must exist in the rootfs before a runtime starts the
// container, so that no runtime creates a mount point inside the read-only
// store path (runc as root would modify the store; rootless it would fail):
//
//   - dirs: every mount destination and process.cwd, except "/", paths that
//     lie inside another non-bind mount (the runtime creates those in that file
//     system, e.g. /dev/pts in the /dev tmpfs), the store paths bind-mounted
//     onto themselves in bind store mode (the rootfs builder places those, as a
//     file or a directory like the store path), and the paths RootfsSymlinks
//     returns (they must be symlinks, not directories);
//   - files: none, since a pure function cannot tell whether a bind source is a
//     file. RootfsNeedsWith takes a test for that.
//
// Paths are clean and absolute, sorted, without duplicates.
func RootfsNeeds(s *specs.Spec) (dirs, files []string) {
	return RootfsNeedsWith(s, nil)
}

// RootfsNeedsWith is RootfsNeeds, with isFile telling whether a bind mount's
// source is a file (its mount point must then be a file). nil means "never".
func RootfsNeedsWith(s *specs.Spec, isFile func(source string) bool) (dirs, files []string) {
	if s == nil {
		return nil, nil
	}
	links := map[string]bool{}
	for _, l := range RootfsSymlinks(s) {
		links[l.Path] = true
	}
	d, f := map[string]bool{}, map[string]bool{}
	for _, m := range s.Mounts {
		dest := path.Clean(m.Destination)
		if !strings.HasPrefix(dest, "/") || dest == "/" || links[dest] || underOtherMount(s.Mounts, dest) {
			continue
		}
		if IsBind(m) && path.Clean(m.Source) == dest && strings.HasPrefix(dest, "/nix/store/") {
			continue
		}
		if IsBind(m) && isFile != nil && isFile(m.Source) {
			f[dest] = true
		} else {
			d[dest] = true
		}
	}
	if s.Process != nil && strings.HasPrefix(s.Process.Cwd, "/") {
		cwd := path.Clean(s.Process.Cwd)
		if cwd != "/" && !links[cwd] && !underOtherMount(s.Mounts, cwd) && !underSymlink(links, cwd) {
			d[cwd] = true
		}
	}
	return sortedKeys(d), sortedKeys(f)
}

// RootfsSymlinks lists symlinks the rootfs must hold instead of directories.
//
// Why: runc (1.1.5) gives the root of a tmpfs the mode of its mount point, and
// every directory of a Nix output is 0555, so a tmpfs at /tmp with mode=1777
// ends up 0555: only root can write it, and only with CAP_DAC_OVERRIDE, which
// the default capabilities lack. A mount point the runtime creates itself keeps
// the tmpfs's own mode (mode= or the default 1777), and the runtime can create
// one inside an earlier tmpfs. So every tmpfs mount whose mount point would
// otherwise be a directory of the rootfs gets a symlink Path -> TmpfsDir+Path,
// provided /dev is a tmpfs: the runtime follows the symlink inside the rootfs,
// creates the directory in /dev's tmpfs and mounts there. The container sees
// Path as a symlink to the tmpfs (/proc/mounts lists it under TmpfsDir).
// sortMounts orders such mounts, and mounts below them, after /dev.
func RootfsSymlinks(s *specs.Spec) []layout.Symlink {
	if s == nil {
		return nil
	}
	r := tmpfsRedirects(s.Mounts)
	out := make([]layout.Symlink, 0, len(r))
	for _, p := range sortedKeys(r) {
		out = append(out, layout.Symlink{Path: p, Target: r[p]})
	}
	return out
}

// tmpfsRedirects maps each redirected tmpfs destination to its target.
func tmpfsRedirects(ms []specs.Mount) map[string]string {
	devTmpfs := false
	for _, m := range ms {
		if path.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			devTmpfs = true
		}
	}
	r := map[string]string{}
	if !devTmpfs {
		return r
	}
	for _, m := range ms {
		dest := path.Clean(m.Destination)
		if m.Type != "tmpfs" || !strings.HasPrefix(dest, "/") || dest == "/" || dest == "/dev" ||
			strings.HasPrefix(dest, "/dev/") || underOtherMount(ms, dest) {
			continue
		}
		r[dest] = TmpfsDir + dest
	}
	return r
}

// IsBind reports whether m is a bind mount: type "bind", or a bind/rbind option
// (the spec allows either).
func IsBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// underOtherMount reports whether p lies strictly inside the destination of a
// mount that is not a bind mount, or inside a store path that is bind-mounted
// (the rootfs builder cannot create anything there).
func underOtherMount(ms []specs.Mount, p string) bool {
	for _, m := range ms {
		d := path.Clean(m.Destination)
		if d == "/" || d == p || !strings.HasPrefix(p, d+"/") {
			continue
		}
		if !IsBind(m) {
			return true
		}
	}
	return false
}

func underSymlink(links map[string]bool, p string) bool {
	for l := range links {
		if strings.HasPrefix(p, l+"/") {
			return true
		}
	}
	return false
}
