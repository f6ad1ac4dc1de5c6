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
//     system, e.g. /dev/pts in the /dev tmpfs), paths under /nix/store (the
//     rootfs builder places the store paths, copied or as bind mount points,
//     and validation requires every other path there to exist already), and
//     the paths RootfsSymlinks returns (they must be symlinks, not directories);
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
		if inStoreDir(dest) {
			continue // nothing can be created there: validation wants it to exist
		}
		if IsBind(m) && isFile != nil && isFile(m.Source) {
			f[dest] = true
		} else {
			d[dest] = true
		}
	}
	if s.Process != nil && strings.HasPrefix(s.Process.Cwd, "/") {
		cwd := path.Clean(s.Process.Cwd)
		if cwd != "/" && !links[cwd] && !underOtherMount(s.Mounts, cwd) && !underSymlink(links, cwd) && !inStoreDir(cwd) {
			d[cwd] = true
		}
	}
	return sortedKeys(d), sortedKeys(f)
}

// inStoreDir reports whether p is under the store directory: the store paths
// (copied or bind mount points) are all that is there, placed by the rootfs
// builder, and a runtime must never create anything there.
func inStoreDir(p string) bool {
	return strings.HasPrefix(p, layout.StoreDir+"/")
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

// notRedirected are directories a tmpfs may replace but that stay real
// directories: the rootfs builder writes /etc/passwd and /etc/group, and
// runtimes treat /proc and /sys specially, so a symlink there breaks the start.
// Such a tmpfs gets the mode of its mount point (0555).
var notRedirected = map[string]bool{"/etc": true, "/proc": true, "/sys": true}

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
			strings.HasPrefix(dest, "/dev/") || notRedirected[dest] || underOtherMount(ms, dest) {
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

// bundleStorePrefix starts a bind source that names the bundle's own copy of a
// store path, relative to the bundle (as the runtime spec reads a relative
// bind source): rootfs/nix/store/NAME[/...].
const bundleStorePrefix = layout.RootfsDir + layout.StoreDir + "/"

// BundleStoreSource reports whether a bind source is relative and names, in
// clean form and without "..", a path inside the bundle's copied store. Such a
// source is the only relative one a bundle may have (copy mode writes it for a
// bind of a closure path, see Generate), and it must be mounted read-only.
func BundleStoreSource(source string) bool {
	if !strings.HasPrefix(source, bundleStorePrefix) || path.Clean(source) != source {
		return false
	}
	for _, c := range strings.Split(source, "/") {
		if c == ".." || c == "." {
			return false
		}
	}
	return len(source) > len(bundleStorePrefix)
}

// isReadOnlyBind reports whether bind options mount read-only: "ro" is given
// and no later "rw" undoes it.
func isReadOnlyBind(opts []string) bool {
	ro := false
	for _, o := range opts {
		switch o {
		case "ro":
			ro = true
		case "rw":
			ro = false
		}
	}
	return ro
}

// readOnlyBind returns bind options that mount read-only.
func readOnlyBind(opts []string) []string {
	out := make([]string, 0, len(opts)+1)
	for _, o := range opts {
		if o != "rw" && o != "ro" {
			out = append(out, o)
		}
	}
	return append(out, "ro")
}
