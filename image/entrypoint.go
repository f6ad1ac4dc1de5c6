package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/internal/resolve"
)

// program is the command the image runs: Entrypoint[0], else Cmd[0].
func program(c v1.ImageConfig) string {
	if len(c.Entrypoint) > 0 {
		return c.Entrypoint[0]
	}
	if len(c.Cmd) > 0 {
		return c.Cmd[0]
	}
	return ""
}

// checkEntrypoint refuses an image whose program, when it is an absolute
// path, is in none of its layers or is not an executable file there (with
// the mode perms give it): such an image could never start. A relative
// program is looked up in PATH when the container starts, and passes. On a
// base image a program outside the store may be the base's (its layers are
// not listed): it passes.
func checkEntrypoint(c v1.ImageConfig, jobs []*layerJob, perms []layer.Perm, root string, onBase bool) error {
	prog := program(c)
	if prog == "" || !strings.HasPrefix(prog, "/") {
		return nil
	}
	t := newEntryTree(jobs, root, prog)
	final, n, err := resolve.Path(path.Clean(prog), t.lstat)
	var absent *notInImage
	switch {
	case errors.Is(err, resolve.ErrLoop):
		return fmt.Errorf("`config`: the program %s: too many levels of symbolic links", prog)
	case errors.As(err, &absent) && onBase:
		return nil // the base image's, perhaps
	case err != nil:
		return err
	}
	if e, ok := t.files[final]; ok {
		return checkRootProgram(prog, e, perms)
	}
	if storePathOf(final) == "" || n.Dir {
		if onBase {
			return nil
		}
		return t.missing()
	}
	fi, err := os.Lstat(root + final)
	if err != nil {
		return fmt.Errorf("`config`: the program %s is not in the image: %w", prog, err)
	}
	mode := int64(fi.Mode().Perm())
	if pm, ok := layer.LookupPerm(perms, final); ok && pm.Mode != nil {
		mode = *pm.Mode // the mode the layer will have
	}
	if !fi.Mode().IsRegular() || mode&0o111 == 0 {
		return fmt.Errorf("`config`: the program %s is not an executable file (mode %v in the store, %04o in the image)", prog, fi.Mode(), mode)
	}
	return nil
}

// entryTree is the image's tree as the builder knows it before writing the
// layers: the store paths of the layers (read from the store under root),
// and the root layer's entries (directories, links, files).
type entryTree struct {
	prog, root string
	stores     map[string]bool
	links      map[string]string
	files      map[string]layer.Entry
	dirs       map[string]bool
}

func newEntryTree(jobs []*layerJob, root, prog string) *entryTree {
	t := &entryTree{prog: prog, root: root, stores: map[string]bool{}, links: map[string]string{},
		files: map[string]layer.Entry{}, dirs: map[string]bool{"/": true}}
	parents := func(p string) {
		for d := path.Dir(p); d != "/" && !t.dirs[d]; d = path.Dir(d) {
			t.dirs[d] = true
		}
	}
	for _, j := range jobs {
		for _, sp := range append(append([]string(nil), j.spec.StorePaths...), j.info.Paths...) {
			t.stores[sp] = true
			parents(sp)
		}
		for _, e := range j.spec.Entries {
			p := path.Clean(e.Path)
			parents(p)
			switch {
			case e.File:
				t.files[p] = e
			case e.Dir:
				t.dirs[p] = true
			default:
				t.links[p] = e.Linkname
			}
		}
	}
	return t
}

// notInImage: no layer of ours holds the path (on a base image, the
// base's layers may).
type notInImage struct{ prog string }

func (e *notInImage) Error() string {
	return fmt.Sprintf("`config`: the program %s is not in the image (no layer holds it: name a store path, or a path of the copyToRoot tree)", e.prog)
}

func (t *entryTree) missing() error { return &notInImage{t.prog} }

// lstat answers for one path of the image (resolve.Path).
func (t *entryTree) lstat(p string) (resolve.Node, error) {
	if _, ok := t.files[p]; ok {
		return resolve.Node{}, nil
	}
	if target, ok := t.links[p]; ok {
		return resolve.Node{Symlink: true, Target: target}, nil
	}
	if sp := storePathOf(p); sp != "" {
		if !t.stores[sp] {
			return resolve.Node{}, fmt.Errorf("`config`: the program %s is not in the image (%s is in no layer)", t.prog, sp)
		}
		fi, err := os.Lstat(t.root + p)
		if err != nil {
			return resolve.Node{}, fmt.Errorf("`config`: the program %s is not in the image: %w", t.prog, err)
		}
		n := resolve.Node{Dir: fi.IsDir()}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if n.Target, err = os.Readlink(t.root + p); err != nil {
				return resolve.Node{}, fmt.Errorf("`config`: the program %s: %w", t.prog, err)
			}
			n.Symlink = true
		}
		return n, nil
	}
	if t.dirs[p] {
		return resolve.Node{Dir: true}, nil
	}
	return resolve.Node{}, t.missing()
}

// checkRootProgram checks a program that is a file of the root layer (a
// copied copyToRoot file, or `files`).
func checkRootProgram(prog string, e layer.Entry, perms []layer.Perm) error {
	mode := e.Mode
	if e.Host != "" && mode == 0 {
		fi, err := os.Stat(e.Host)
		if err != nil {
			return fmt.Errorf("`config`: the program %s: %w", prog, err)
		}
		mode = int64(fi.Mode().Perm())
	}
	if pm, ok := layer.LookupPerm(perms, e.Path); ok && pm.Mode != nil {
		mode = *pm.Mode
	}
	if mode&0o111 == 0 {
		return fmt.Errorf("`config`: the program %s is not executable in the image (mode %04o)", prog, mode)
	}
	return nil
}
