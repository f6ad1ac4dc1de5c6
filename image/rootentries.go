package image

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/rootfs"
)

// rootInput is what the sources of the root layer read.
type rootInput struct {
	p       *parsed
	closure *derivation.Closure
	root    string // prepended to store paths when reading them (tests)
}

// rootSource makes the entries one argument adds to the image's root layer
// (the one layer of synthesized entries, on top of the store path layers).
type rootSource func(in rootInput) ([]layer.Entry, error)

// rootSources are applied in this order; for a directory given by several,
// the last one's mode and owner win (`dirs` over a home over copyToRoot over
// the defaults). A file or symlink given twice with different contents is
// an error naming both. Another root-layer feature adds its source here.
var rootSources = []rootSource{defaultDirs, copyToRootEntries, userEntries, fileEntries, dirEntries}

// rootEntries collects, checks and merges the root layer's entries, sorted
// by path.
func rootEntries(in rootInput) ([]layer.Entry, error) {
	var all []layer.Entry
	for _, src := range rootSources {
		es, err := src(in)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return mergeEntries(all, in.root)
}

// mergeEntries sorts entries by path and folds duplicates (see rootSources).
func mergeEntries(all []layer.Entry, root string) ([]layer.Entry, error) {
	for i := range all {
		all[i].Path = path.Clean(all[i].Path)
		if err := checkRootPath(all[i].Path); err != nil {
			return nil, fmt.Errorf("%s: %w", all[i].Origin, err)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	out := make([]layer.Entry, 0, len(all))
	for _, e := range all {
		if n := len(out); n > 0 && out[n-1].Path == e.Path {
			prev := &out[n-1]
			switch {
			case prev.Dir && e.Dir:
				*prev = e
			case prev.Dir || e.Dir:
				return nil, fmt.Errorf("%s is a directory in %s but not in %s; keep only one of them", e.Path, originOf(*prev, e), originOf(e, *prev))
			default:
				same, err := sameEntry(*prev, e, root)
				if err != nil {
					return nil, err
				}
				if !same {
					return nil, fmt.Errorf("%s is given by both %s and %s, with different contents; keep only one of them", e.Path, originPath(*prev), originPath(e))
				}
			}
			continue
		}
		out = append(out, e)
	}
	// A non-directory cannot have entries below it.
	for i := 1; i < len(out); i++ {
		for dir := path.Dir(out[i].Path); dir != "/"; dir = path.Dir(dir) {
			j := sort.Search(i, func(k int) bool { return out[k].Path >= dir })
			if j < i && out[j].Path == dir && !out[j].Dir {
				return nil, fmt.Errorf("%s (from %s) is below %s, which %s makes a file or symlink, not a directory", out[i].Path, out[i].Origin, dir, out[j].Origin)
			}
		}
	}
	return out, nil
}

// originPath names a copied package file by its store path.
func originPath(e layer.Entry) string {
	if strings.HasPrefix(e.Origin, "/nix/store/") {
		return e.Origin + e.Path
	}
	return e.Origin
}

func originOf(dir, other layer.Entry) string {
	if dir.Dir {
		return dir.Origin
	}
	return other.Origin
}

// checkRootPath refuses what the store layers own: /, /nix and the store.
func checkRootPath(p string) error {
	if !path.IsAbs(p) || p == "/" {
		return fmt.Errorf("%q is not an absolute path below /", p)
	}
	if p == "/nix" || p == "/nix/store" || strings.HasPrefix(p, "/nix/store/") {
		return fmt.Errorf("%s is in the Nix store (or is /nix): the store is made of the closure's layers; valid paths are outside /nix/store, such as /var/lib/app", p)
	}
	return nil
}

// sameEntry reports whether two files or symlinks are the same thing.
func sameEntry(a, b layer.Entry, root string) (bool, error) {
	if a.File != b.File || a.Linkname != b.Linkname || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID {
		return false, nil
	}
	if !a.File {
		return true, nil
	}
	da, err := entryData(a)
	if err != nil {
		return false, err
	}
	db, err := entryData(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(da, db), nil
}

// maxCompare bounds the bytes read to compare two files given twice.
const maxCompare = 64 << 20

func entryData(e layer.Entry) ([]byte, error) {
	if e.Host == "" {
		return e.Data, nil
	}
	fi, err := os.Lstat(e.Host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Origin, err)
	}
	if fi.Size() > maxCompare {
		return nil, fmt.Errorf("%s: %s is given twice and is too large (%d bytes) to compare; keep only one", e.Origin, e.Path, fi.Size())
	}
	return os.ReadFile(e.Host)
}

// defaultDirs: /tmp, world-writable and sticky, in every image (programs
// expect it, and a non-root user could not create it).
func defaultDirs(rootInput) ([]layer.Entry, error) {
	return []layer.Entry{{Path: "/tmp", Dir: true, Mode: 0o1777, Origin: "the default /tmp"}}, nil
}

// copyToRootEntries: the packages' trees at /, as real files (the default)
// or as buildEnv-style symlinks into the store (copyToRootMode "symlink").
func copyToRootEntries(in rootInput) ([]layer.Entry, error) {
	p := in.p
	if len(p.copyToRoot) == 0 {
		return nil, nil
	}
	if p.copyToRootMode == CopyToRootSymlink {
		return symlinkEntries(p.copyToRoot, in.root)
	}
	var out []layer.Entry
	seen := map[string]bool{}
	for _, pkg := range p.copyToRoot {
		pkg = path.Clean(pkg)
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		es, err := copyEntries(pkg, in.root)
		if err != nil {
			return nil, fmt.Errorf("`copyToRoot`: %w", err)
		}
		out = append(out, es...)
	}
	return out, nil
}

func symlinkEntries(pkgs []string, root string) ([]layer.Entry, error) {
	forced := map[string]bool{"nix": true, "nix/store": true}
	plan, err := rootfs.PlanContents(root, pkgs, forced)
	if err != nil {
		return nil, fmt.Errorf("`copyToRoot`: %w", err)
	}
	var out []layer.Entry
	for _, e := range plan {
		if e.Rel == "nix" || strings.HasPrefix(e.Rel, "nix/") {
			return nil, fmt.Errorf("`copyToRoot`: %s has a top-level nix/ directory, which would mix with /nix/store; leave it out of copyToRoot", e.Target)
		}
		out = append(out, layer.Entry{Path: "/" + e.Rel, Dir: e.Dir, Linkname: e.Target, Origin: "`copyToRoot`"})
	}
	return out, nil
}

// copyEntries lists a package's tree as entries at /: directories 0755,
// files with their store mode, symlinks as they are.
func copyEntries(pkg, root string) ([]layer.Entry, error) {
	if !strings.HasPrefix(pkg, "/nix/store/") || storePathOf(pkg) != pkg {
		return nil, fmt.Errorf("%q is not a store path (copyToRoot takes packages)", pkg)
	}
	host := root + pkg
	fi, err := os.Stat(host)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (copyToRoot places a package's bin/, etc/, ... at /)", pkg)
	}
	var out []layer.Entry
	err = walkSorted(host, "", func(rel string, d fs.DirEntry) error {
		if rel == "nix" {
			return fmt.Errorf("%s has a top-level nix/ directory, which would mix with /nix/store; leave it out of copyToRoot", pkg)
		}
		e := layer.Entry{Path: "/" + rel, Origin: pkg}
		h := host + "/" + rel
		switch t := d.Type(); {
		case t.IsDir():
			e.Dir = true
		case t.IsRegular():
			e.File, e.Host = true, h
		case t&fs.ModeSymlink != 0:
			if e.Linkname, err = os.Readlink(h); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: %w", h, layer.ErrSpecial)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// walkSorted calls fn for everything below dir (relative names, parents
// first, sorted), without following symlinks.
func walkSorted(dir, rel string, fn func(rel string, d fs.DirEntry) error) error {
	ents, err := os.ReadDir(path.Join(dir, rel))
	if err != nil {
		return err
	}
	for _, d := range ents {
		r := path.Join(rel, d.Name())
		if err := fn(r, d); err != nil {
			return err
		}
		if d.IsDir() {
			if err := walkSorted(dir, r, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// fileEntries: the `files` argument (and the helpers that produce it).
func fileEntries(in rootInput) ([]layer.Entry, error) {
	out := make([]layer.Entry, 0, len(in.p.files))
	for _, e := range in.p.files {
		if e.Host != "" {
			if _, ok := in.closure.Lookup(storePathOf(e.Host)); !ok {
				return nil, fmt.Errorf("%s: source %s is not in the closure", e.Origin, e.Host)
			}
			fi, err := os.Lstat(in.root + e.Host)
			if err != nil || !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s: source %s must be a regular file (not a directory or symlink: give the file it leads to)", e.Origin, e.Host)
			}
			e.Host = in.root + e.Host
		}
		out = append(out, e)
	}
	return out, nil
}

// dirEntries: the `dirs` argument.
func dirEntries(in rootInput) ([]layer.Entry, error) {
	return in.p.dirs, nil
}
