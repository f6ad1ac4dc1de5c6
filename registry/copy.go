package registry

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CopyLayout copies the image (or index) of the layout src into a new layout
// at dst, named tag ("" keeps src's name): every blob is copied as a file
// (links resolved) and checked against its digest on the way. The copy is
// assembled beside dst and renamed into place.
func CopyLayout(src, dst, tag string) error {
	l, err := OpenLayout(src)
	if err != nil {
		return err
	}
	root, err := l.Root(tag)
	if err != nil {
		return err
	}
	g, err := l.Walk(root)
	if err != nil {
		return err
	}
	if err := checkEmptyTarget(dst); err != nil {
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
	out := &Layout{Dir: tmp}
	for _, m := range g.Manifests {
		p, _ := out.blobPath(m.Desc.Digest)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, m.Data, 0o444); err != nil {
			return err
		}
	}
	for _, b := range g.Blobs {
		if err := copyBlob(l, out, b); err != nil {
			return err
		}
	}
	if tag == "" {
		tag = root.Annotations[ocispec.AnnotationRefName]
	}
	root = ocispec.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size}
	if tag != "" {
		root.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	}
	if err := writeLayoutFiles(tmp, root); err != nil {
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

func copyBlob(src, dst *Layout, b ocispec.Descriptor) error {
	in, err := src.OpenBlob(b)
	if err != nil {
		return err
	}
	defer in.Close()
	p, _ := dst.blobPath(b.Digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	h := b.Digest.Algorithm().Hash()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(in, b.Size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying blob %s: %w", b.Digest, err)
	}
	if n != b.Size || fmt.Sprintf("%x", h.Sum(nil)) != b.Digest.Encoded() {
		return fmt.Errorf("blob %s in %s does not match its digest and size: the layout is damaged", b.Digest, src.Dir)
	}
	return nil
}
