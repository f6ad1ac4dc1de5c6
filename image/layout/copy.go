package layout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Root picks the descriptor of index.json (idx, of the layout dir) that a
// push or copy takes: the only one, or the one whose
// org.opencontainers.image.ref.name is tag.
func Root(dir string, idx *v1.Index, tag string) (v1.Descriptor, error) {
	ms := idx.Manifests
	switch {
	case len(ms) == 0:
		return v1.Descriptor{}, fmt.Errorf("%s/index.json lists no manifest", dir)
	case len(ms) == 1:
		return ms[0], nil
	}
	var names []string
	for _, d := range ms {
		name := d.Annotations[v1.AnnotationRefName]
		if name != "" && name == tag {
			return d, nil
		}
		names = append(names, fmt.Sprintf("%q", name))
	}
	return v1.Descriptor{}, fmt.Errorf("%s/index.json lists %d manifests (ref.name %s) and none is named %q: name one with the tag of the destination",
		dir, len(ms), few(names), tag)
}

// few lists the first of xs, then how many more there are: an error about a
// hostile index must not list all of its 18,000 entries.
func few(xs []string) string {
	const n = 8
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(xs[:n], ", "), len(xs)-n)
}

// CheckEmptyTarget refuses to write a layout over an existing file or a
// directory that is not empty.
func CheckEmptyTarget(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	return nil
}

// Copy copies the image (or index) of the layout src into a new layout at
// dst, named tag ("" keeps src's name): every blob is copied as a file
// (links resolved) through the verified sink. The copy is assembled beside
// dst and renamed into place.
func Copy(src, dst, tag string) error {
	r, err := Open(src)
	if err != nil {
		return err
	}
	idx, err := r.Index()
	if err != nil {
		return err
	}
	root, err := Root(src, idx, tag)
	if err != nil {
		return err
	}
	g, err := r.Walk(context.Background(), root)
	if err != nil {
		return err
	}
	if err := CheckEmptyTarget(dst); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dst)), "."+filepath.Base(dst)+".copy-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	out, err := Init(tmp)
	if err != nil {
		return err
	}
	for _, n := range g.Nodes {
		if _, err := out.WriteBytes(n.Desc.MediaType, n.Data); err != nil {
			return err
		}
	}
	for _, b := range g.Blobs {
		if err := copyFrom(r, out, b); err != nil {
			return err
		}
	}
	if tag == "" {
		tag = root.Annotations[v1.AnnotationRefName]
	}
	if err := out.WriteIndex(v1.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size}, tag); err != nil {
		return err
	}
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	return nil
}

func copyFrom(r *Reader, out *Layout, b v1.Descriptor) error {
	f, err := r.OpenBlob(b)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := out.CopyBlob(f, b.Digest, b.Size); err != nil {
		return fmt.Errorf("%w: %s is damaged", err, r.Dir)
	}
	return nil
}
