package rootfs

import (
	"github.com/ocitools/ocitools/layout"

	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// source is one tree taking part in a merge: name is where it is inside the
// container (a store path, or a directory in one), host is where to read it.
type source struct {
	name, host string
}

// mergeContents links the top-level trees of contents into root, as buildEnv
// does: an entry provided by one source is a symlink to it; a directory
// provided by several (or one that something must be created in: forced) is a
// real directory whose entries are merged the same way; anything else provided
// twice is a conflict naming both sources.
func mergeContents(root, srcRoot string, contents []string, forced map[string]bool) error {
	entries, err := PlanContents(srcRoot, contents, forced)
	if err != nil {
		return err
	}
	for _, e := range entries {
		dst := filepath.Join(root, e.Rel)
		if e.Dir {
			err = os.Mkdir(dst, 0o755)
		} else {
			err = os.Symlink(e.Target, dst)
		}
		if err != nil {
			return fmt.Errorf("rootfs: contents: %w", err)
		}
	}
	return nil
}

// ContentEntry is one entry of the merged contents tree: a real directory, or
// a symlink to the store path that provides it. Rel is relative to the root.
type ContentEntry struct {
	Rel    string
	Dir    bool
	Target string
}

// PlanContents computes the buildEnv-style tree of contents (read below
// srcRoot, normally "") without writing anything: entries in creation order,
// parents first. buildImage's copyToRoot layer is made from the same plan.
func PlanContents(srcRoot string, contents []string, forced map[string]bool) ([]ContentEntry, error) {
	var srcs []source
	seen := map[string]bool{}
	for _, c := range contents {
		clean := path.Clean(c)
		if !strings.HasPrefix(clean, layout.StoreDir+"/") {
			return nil, fmt.Errorf("rootfs: contents: %q is not a store path (contents must be packages in the Nix store)", c)
		}
		if seen[clean] {
			continue
		}
		seen[clean] = true
		fi, err := os.Stat(srcRoot + clean)
		if err != nil {
			return nil, fmt.Errorf("rootfs: contents: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("rootfs: contents: %s is not a directory (contents are packages whose bin/, etc/, ... are linked into /)", c)
		}
		srcs = append(srcs, source{name: clean, host: srcRoot + clean})
	}
	if len(srcs) == 0 {
		return nil, nil
	}
	var out []ContentEntry
	err := mergeDir(&out, "", srcs, forced)
	return out, err
}

type candidate struct {
	src   source
	isDir bool
}

// mergeDir plans the real directory rel from the same directory of srcs.
func mergeDir(out *[]ContentEntry, rel string, srcs []source, forced map[string]bool) error {
	entries := map[string][]candidate{}
	for _, s := range srcs {
		ents, err := os.ReadDir(filepath.Join(s.host, rel))
		if err != nil {
			return fmt.Errorf("rootfs: contents: %w", err)
		}
		for _, e := range ents {
			isDir := e.IsDir()
			if e.Type()&fs.ModeSymlink != 0 {
				// Like buildEnv, a symlink to a directory merges as a directory.
				if fi, err := os.Stat(filepath.Join(s.host, rel, e.Name())); err == nil && fi.IsDir() {
					isDir = true
				}
			}
			entries[e.Name()] = append(entries[e.Name()], candidate{s, isDir})
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cands := entries[n]
		childRel := path.Join(rel, n)
		allDirs := true
		for _, c := range cands {
			allDirs = allDirs && c.isDir
		}
		switch {
		case allDirs && (len(cands) > 1 || forced[childRel]):
			*out = append(*out, ContentEntry{Rel: childRel, Dir: true})
			sub := make([]source, len(cands))
			for i, c := range cands {
				sub[i] = c.src
			}
			if err := mergeDir(out, childRel, sub, forced); err != nil {
				return err
			}
		case len(cands) == 1 || sameTarget(cands, childRel):
			*out = append(*out, ContentEntry{Rel: childRel, Target: path.Join(cands[0].src.name, childRel)})
		default:
			return fmt.Errorf("rootfs: contents conflict: /%s is provided by both %s and %s; keep only one of them in contents",
				childRel, path.Join(cands[0].src.name, childRel), path.Join(conflicting(cands, childRel), childRel))
		}
	}
	return nil
}

// sameTarget reports whether every candidate resolves to the same file, which
// is not a conflict (for instance two packages linking the same store file).
func sameTarget(cands []candidate, rel string) bool {
	first, err := filepath.EvalSymlinks(filepath.Join(cands[0].src.host, rel))
	if err != nil {
		return false
	}
	for _, c := range cands[1:] {
		p, err := filepath.EvalSymlinks(filepath.Join(c.src.host, rel))
		if err != nil || p != first {
			return false
		}
	}
	return true
}

// conflicting names the first candidate that is not the same file as the first.
func conflicting(cands []candidate, rel string) string {
	first, _ := filepath.EvalSymlinks(filepath.Join(cands[0].src.host, rel))
	for _, c := range cands[1:] {
		if p, err := filepath.EvalSymlinks(filepath.Join(c.src.host, rel)); err != nil || p != first || first == "" {
			return c.src.name
		}
	}
	return cands[1].src.name
}
