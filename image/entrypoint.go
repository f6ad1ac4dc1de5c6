package image

import (
	"fmt"
	"os"
	"path"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layer"
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

// checkEntrypoint refuses an image whose program (when it is an absolute
// path) is in none of its layers: such an image could never start. On a base
// image a program outside the store may be the base's (its layers are not
// listed): it passes.
func checkEntrypoint(c v1.ImageConfig, jobs []*layerJob, perms []layer.Perm, root string, onBase bool) error {
	prog := program(c)
	if prog == "" || !strings.HasPrefix(prog, "/") {
		return nil
	}
	stores := map[string]bool{}
	links := map[string]string{}
	files := map[string]layer.Entry{}
	for _, j := range jobs {
		for _, sp := range j.spec.StorePaths {
			stores[sp] = true
		}
		for _, sp := range j.info.Paths {
			stores[sp] = true
		}
		for _, e := range j.spec.Entries {
			switch {
			case e.File:
				files[path.Clean(e.Path)] = e
			case !e.Dir:
				links[path.Clean(e.Path)] = e.Linkname
			}
		}
	}
	p := path.Clean(prog)
	// Follow copyToRoot's symlinks (at most a few hops) to a store path.
	for hop := 0; hop < 40; hop++ {
		if e, ok := files[p]; ok {
			return checkRootProgram(prog, e, perms)
		}
		if sp := storePathOf(p); sp != "" {
			if !stores[sp] {
				return fmt.Errorf("`config`: the program %s is not in the image (%s is in no layer)", prog, sp)
			}
			fi, err := os.Stat(root + p)
			if err != nil {
				return fmt.Errorf("`config`: the program %s is not in the image: %w", prog, err)
			}
			mode := int64(fi.Mode().Perm())
			if pm, ok := layer.LookupPerm(perms, p); ok && pm.Mode != nil {
				mode = *pm.Mode // the mode the layer will have
			}
			if !fi.Mode().IsRegular() || mode&0o111 == 0 {
				return fmt.Errorf("`config`: the program %s is not an executable file (mode %v in the store, %04o in the image)", prog, fi.Mode(), mode)
			}
			return nil
		}
		found := false
		for dir := p; dir != "/"; dir = path.Dir(dir) {
			if target, ok := links[dir]; ok {
				if !path.IsAbs(target) {
					target = path.Join(path.Dir(dir), target)
				}
				p = path.Join(target, strings.TrimPrefix(p, dir))
				found = true
				break
			}
		}
		if !found && onBase {
			return nil
		}
		if !found {
			return fmt.Errorf("`config`: the program %s is not in the image (no layer holds it: name a store path, or a path of the copyToRoot tree)", prog)
		}
	}
	return fmt.Errorf("`config`: the program %s: too many levels of symbolic links", prog)
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
