// Package layout writes an OCI image layout: oci-layout, index.json and
// blobs/sha256/, with image-spec types. Blobs are written under temporary
// names and renamed to their digest only when complete (CopyBlob, the one
// verified blob sink). Reader (read.go) reads one back that may come from
// someone else, and Walker (graph.go) reads its graph of indexes and
// manifests, each digest once, within one set of bounds; registry, unpack,
// validate and archive read layouts through them.
package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layout is a layout directory being written.
type Layout struct {
	Dir string
}

// Create makes dir (which must not exist) with oci-layout and blobs/sha256.
func Create(dir string) (*Layout, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	return Init(dir)
}

// Init writes oci-layout and blobs/sha256 in dir, an existing empty
// directory (a temporary one that becomes the layout by a rename).
func Init(dir string) (*Layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	hdr, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), hdr, 0o644); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	return &Layout{Dir: dir}, nil
}

// BlobPath is where the blob d lives.
func (l *Layout) BlobPath(d digest.Digest) string {
	return filepath.Join(l.Dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// Blob is a blob being written; Commit names it by its digest.
type Blob struct {
	*os.File
	l *Layout
}

// NewBlob opens a temporary file in blobs/sha256.
func (l *Layout) NewBlob() (*Blob, error) {
	f, err := os.CreateTemp(filepath.Join(l.Dir, "blobs", "sha256"), ".partial-")
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	return &Blob{File: f, l: l}, nil
}

// Commit closes the file and renames it to d. Writing the same blob twice
// (two layers with the same content) keeps one copy.
func (b *Blob) Commit(d digest.Digest) error {
	if err := b.File.Chmod(0o644); err != nil {
		b.Abort()
		return fmt.Errorf("layout: %w", err)
	}
	if err := b.File.Close(); err != nil {
		_ = os.Remove(b.Name())
		return fmt.Errorf("layout: %w", err)
	}
	p := b.l.BlobPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		_ = os.Remove(b.Name())
		return fmt.Errorf("layout: %w", err)
	}
	if err := os.Rename(b.Name(), p); err != nil {
		_ = os.Remove(b.Name())
		return fmt.Errorf("layout: %w", err)
	}
	return nil
}

// Abort removes the temporary file.
func (b *Blob) Abort() {
	_ = b.File.Close()
	_ = os.Remove(b.Name())
}

// WriteBytes stores data as a blob and returns its descriptor.
func (l *Layout) WriteBytes(mediaType string, data []byte) (v1.Descriptor, error) {
	desc := v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return desc, l.CopyBlob(bytes.NewReader(data), desc.Digest, desc.Size)
}

// WriteJSON marshals v (encoding/json sorts map keys: the bytes are stable)
// and stores it as a blob.
func (l *Layout) WriteJSON(mediaType string, v any) (v1.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("layout: %w", err)
	}
	return l.WriteBytes(mediaType, data)
}

// CopyBlob is the verified blob sink of the layout (SaveBlob at the blob's
// path).
func (l *Layout) CopyBlob(r io.Reader, want digest.Digest, size int64) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("layout: blob %q: %w", want, err)
	}
	return SaveBlob(l.BlobPath(want), r, want, size)
}

// SaveBlob is the verified blob sink: it copies a blob from r to a temporary
// file beside path, checking its size and digest on the way, and renames it
// to path only when both match. A mismatch (a *ContentError) leaves nothing.
func SaveBlob(path string, r io.Reader, want digest.Digest, size int64) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("blob %q: %w", want, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".partial-")
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	dg := want.Algorithm().Digester()
	n, err := io.Copy(io.MultiWriter(f, dg.Hash()), io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("copying blob %s: %w", want, err)
	}
	if n != size {
		return &ContentError{Digest: want, Want: size, Got: n}
	}
	if got := dg.Digest(); got != want {
		return &ContentError{Digest: want, Want: size, Got: n, OtherDigest: got}
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	ok = true
	return nil
}

// ContentError says that a blob's bytes are not what its descriptor
// declares: another size (Got is Want+1 when there were more bytes than
// declared: the copy stops there) or another digest (OtherDigest).
type ContentError struct {
	Digest      digest.Digest
	Want, Got   int64
	OtherDigest digest.Digest
}

// Detail says what was wrong, for a message naming where the bytes came from.
func (e *ContentError) Detail() string {
	switch {
	case e.OtherDigest != "":
		return "content with digest " + e.OtherDigest.String()
	case e.Got > e.Want:
		return fmt.Sprintf("more than %d bytes, its descriptor declares %d", e.Want, e.Want)
	}
	return fmt.Sprintf("%d bytes, its descriptor declares %d", e.Got, e.Want)
}

func (e *ContentError) Error() string { return fmt.Sprintf("blob %s: got %s", e.Digest, e.Detail()) }

// LinkBlob makes blob d a symlink to target, a file of size bytes in another
// store path (a buildLayer output): images share its bytes instead of holding
// a copy, and Nix sees the reference, so the target stays in the closure.
// Readers check the digest when they read (Reader follows the link).
func (l *Layout) LinkBlob(target string, d digest.Digest, size int64) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("layout: blob %q: %w", d, err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("layout: blob %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return fmt.Errorf("layout: blob %s: %s is not a regular file of %d bytes", d, target, size)
	}
	err = os.Symlink(target, l.BlobPath(d))
	if errors.Is(err, fs.ErrExist) {
		// Two layers with the same content: one link serves both.
		return nil
	}
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	return nil
}

// WriteIndex writes index.json pointing at manifest, tagged ref (written as
// the org.opencontainers.image.ref.name annotation). It is written last: a
// layout with an index.json is complete.
func (l *Layout) WriteIndex(manifest v1.Descriptor, ref string) error {
	manifest.Annotations = maps.Clone(manifest.Annotations)
	if ref != "" {
		if manifest.Annotations == nil {
			manifest.Annotations = map[string]string{}
		}
		manifest.Annotations[v1.AnnotationRefName] = ref
	}
	idx := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{manifest},
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, v1.ImageIndexFile), data, 0o644); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	return nil
}
