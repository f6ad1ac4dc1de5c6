// Package rootfs materialises a closure as a bundle's root filesystem.
//
// Build is the single entry point: it lays out nix/store (copied or as bind
// mount points), merges `contents` into / as symlinks, creates every mount point
// the configuration needs, and writes a minimal /etc/passwd and /etc/group.
package rootfs

import (
	"github.com/ocitools/ocitools/layout"

	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/internal/accounts"
)

// Store modes.
const (
	ModeCopy = "copy"
	ModeBind = "bind"
)

// Plan says what goes into a rootfs.
type Plan struct {
	Closure *derivation.Closure
	// Mode is ModeCopy (the closure under nix/store; "" means copy) or ModeBind
	// (mount points only; the configuration bind-mounts each store path).
	Mode string
	// Verify checks every copied path against its narHash (copy mode only).
	Verify bool
	// Contents are store paths (or directories inside store paths) whose
	// top-level entries are linked into /, buildEnv style.
	Contents []string
	// MountPoints are absolute paths that must exist as directories, and
	// MountFiles as empty files (bind mounts of files), before any runtime starts,
	// so that no runtime creates one inside the store.
	MountPoints []string
	MountFiles  []string
	// Symlinks must exist as symbolic links (for instance a tmpfs mount point
	// redirected into /dev so that it keeps its mode: see spec.RootfsSymlinks).
	Symlinks []layout.Symlink
	// UID and GID feed the minimal /etc/passwd and /etc/group.
	UID, GID uint32
	// Accounts, when given (users or groups), replace them: /etc/passwd,
	// /etc/group, /etc/shadow and /etc/nsswitch.conf.
	Accounts *accounts.Accounts
	// Workers bounds the parallel file copies; 0 picks a default.
	Workers int
	// SourceRoot is prefixed to store paths to read them on the host; "" is
	// the real root. Tests use it to build closures in temporary directories.
	SourceRoot string
}

// Build creates dir (which must not exist) as a rootfs. On error dir is removed.
func Build(dir string, p Plan) (err error) {
	if p.Closure == nil {
		return errors.New("rootfs: no closure")
	}
	switch p.Mode {
	case ModeCopy, ModeBind:
	default:
		return fmt.Errorf("rootfs: store mode %q is not valid; valid modes are %q and %q", p.Mode, ModeCopy, ModeBind)
	}
	// The umask is process-wide: Build is meant for the builder process (or a
	// CLI run), which does nothing else meanwhile.
	defer unix.Umask(unix.Umask(buildUmask))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := RemoveAll(dir); rerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, rerr)
			}
		}
	}()

	places, err := planPlaces(p)
	if err != nil {
		return err
	}
	if err := mergeContents(dir, p.SourceRoot, p.Contents, places.forced); err != nil {
		return err
	}
	for _, d := range []string{"dev", "proc", "sys", "nix/store"} {
		if err := mkdirAllNoFollow(dir, d); err != nil {
			return err
		}
	}

	store := filepath.Join(dir, layout.StoreDir)
	var modes []dirMode
	if p.Mode == ModeBind {
		err = placeMountPoints(store, p.SourceRoot, p.Closure)
	} else {
		modes, err = copyClosure(store, p)
	}
	if err != nil {
		return err
	}

	if err := places.make(dir); err != nil {
		return err
	}
	if p.Accounts != nil && p.Accounts.Given {
		err = writeAccounts(dir, p.Accounts)
	} else {
		err = writeUsers(dir, p.UID, p.GID)
	}
	if err != nil {
		return err
	}
	// Last: until here every directory is writable by its owner, so that an
	// interrupted build leaves a tree that rm -rf removes.
	return finalModes(modes)
}

// places are what a bundle's root gets besides its contents and the
// closure: mount points (directories and files) and symbolic links, and the
// directories that must therefore be real, not links into the contents.
type places struct {
	mountDirs, mountFiles []string
	links                 []layout.Symlink
	forced                map[string]bool
}

// planPlaces checks and cleans the plan's mount points and links.
func planPlaces(p Plan) (*places, error) {
	mountDirs, err := cleanPaths("mount point", p.MountPoints)
	if err != nil {
		return nil, err
	}
	mountFiles, err := cleanPaths("mount point", p.MountFiles)
	if err != nil {
		return nil, err
	}
	// Directories that must be real (not symlinks into contents), because
	// something is created inside them.
	forced := map[string]bool{"nix": true, "nix/store": true, "dev": true, "proc": true, "sys": true, "etc": true}
	for _, m := range mountDirs {
		markWithParents(forced, m)
	}
	for _, m := range mountFiles {
		markWithParents(forced, path.Dir(m))
	}
	links := make([]layout.Symlink, 0, len(p.Symlinks))
	for _, l := range p.Symlinks {
		rel, err := cleanPaths("symlink", []string{l.Path})
		if err != nil {
			return nil, err
		}
		if len(rel) == 1 {
			links = append(links, layout.Symlink{Path: rel[0], Target: l.Target})
			markWithParents(forced, path.Dir(rel[0]))
		}
	}
	return &places{mountDirs: mountDirs, mountFiles: mountFiles, links: links, forced: forced}, nil
}

// make creates the mount points and links below dir, never following a
// link on the way.
func (pl *places) make(dir string) error {
	for _, m := range pl.mountDirs {
		if err := mkdirAllNoFollow(dir, m); err != nil {
			return err
		}
	}
	for _, m := range pl.mountFiles {
		if err := mkfileNoFollow(dir, m); err != nil {
			return err
		}
	}
	for _, l := range pl.links {
		if err := symlinkNoFollow(dir, l.Path, l.Target); err != nil {
			return err
		}
	}
	return nil
}

// symlinkNoFollow creates root/rel -> target with its parents; an existing
// entry must already be that symlink.
func symlinkNoFollow(root, rel, target string) error {
	if d := path.Dir(rel); d != "." {
		if err := mkdirAllNoFollow(root, d); err != nil {
			return err
		}
	}
	p := filepath.Join(root, rel)
	if fi, err := os.Lstat(p); err == nil {
		if t, _ := os.Readlink(p); fi.Mode()&fs.ModeSymlink != 0 && t == target {
			return nil
		}
		return fmt.Errorf("rootfs: /%s must be a symlink to %s, but it exists already (%s, from contents or a mount point)", rel, target, describeMode(fi.Mode()))
	}
	if err := os.Symlink(target, p); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// cleanPaths checks that each path is absolute and clean, and returns them
// relative to / (without the leading slash). Mount points inside a store path
// are refused: creating one would change the copy.
func cleanPaths(what string, ps []string) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("rootfs: %s %q is not an absolute path", what, p)
		}
		c := path.Clean(p)
		if c == "/" {
			continue
		}
		if c == layout.StoreDir || strings.HasPrefix(c, layout.StoreDir+"/") {
			// The store paths themselves are placed by the copy or bind step.
			rest := strings.TrimPrefix(c, layout.StoreDir+"/")
			if c != layout.StoreDir && strings.Contains(rest, "/") {
				return nil, fmt.Errorf("rootfs: %s %q is inside a store path; a mount point there would change the store path", what, p)
			}
			continue
		}
		out = append(out, strings.TrimPrefix(c, "/"))
	}
	return out, nil
}

func markWithParents(set map[string]bool, rel string) {
	for rel != "." && rel != "" && rel != "/" {
		set[rel] = true
		rel = path.Dir(rel)
	}
}

// mkdirAllNoFollow creates root/rel and its parents as directories. An existing
// component must be a real directory: following a symlink (from contents) would
// create the directory somewhere in the store, or on the host.
func mkdirAllNoFollow(root, rel string) error {
	cur := root
	for _, c := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			return fmt.Errorf("rootfs: cannot create /%s: /%s exists and is not a directory (%s)", rel, relTo(root, cur), describeMode(fi.Mode()))
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return fmt.Errorf("rootfs: %w", err)
			}
		default:
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return nil
}

// mkfileNoFollow creates root/rel as an empty file, with its parents. An
// existing entry of any type is left alone.
func mkfileNoFollow(root, rel string) error {
	if d := path.Dir(rel); d != "." {
		if err := mkdirAllNoFollow(root, d); err != nil {
			return err
		}
	}
	p := filepath.Join(root, rel)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("rootfs: mount point: %w", err)
	}
	return f.Close()
}

func relTo(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsRegular():
		return "a file"
	case m.IsDir():
		return "a directory"
	default:
		return m.Type().String()
	}
}

// placeMountPoints creates, for bind mode, an empty directory (or an empty
// file, when the store path is not a directory) for each closure path.
func placeMountPoints(store, srcRoot string, c *derivation.Closure) error {
	for _, pi := range c.Paths {
		src := srcRoot + pi.Path()
		dst := filepath.Join(store, pi.StorePath.String())
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("rootfs: store path %s: %w", pi.Path(), err)
		}
		if fi.IsDir() {
			err = os.Mkdir(dst, 0o555)
		} else {
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444); err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("rootfs: mount point for %s: %w", pi.Path(), err)
		}
	}
	return nil
}

// RemoveAll removes a tree that may hold read-only directories (copied store
// paths are 0555, which os.RemoveAll cannot empty without privileges).
func RemoveAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	// Make every directory writable, then try again.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}
