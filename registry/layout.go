// Package registry moves OCI images between image layouts on disk and
// registries: push (sending only what the registry lacks), pull, and the
// multi-arch index builder. The protocol is oras-go v2's (remote, auth,
// credentials); this package decides what to send, in which order, and checks
// every byte against its digest on the way.
package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
)

// Docker's media types, accepted wherever the OCI ones are (pulled images
// often use them).
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// MaxManifestSize bounds every manifest, index and index.json read, local or
// remote (oras-go's default for registry metadata is the same 4 MiB).
const MaxManifestSize = 4 << 20

func isIndex(mt string) bool    { return mt == ocispec.MediaTypeImageIndex || mt == dockerManifestList }
func isManifest(mt string) bool { return mt == ocispec.MediaTypeImageManifest || mt == dockerManifest }

// Layout is an OCI image layout directory opened for reading, through
// image/layout's Reader (bounded regular files, every blob checked against its
// digest).
type Layout struct {
	Dir   string
	Index ocispec.Index
}

// OpenLayout reads DIR/oci-layout and DIR/index.json.
func OpenLayout(dir string) (*Layout, error) {
	r, err := layout.Open(dir)
	if err != nil {
		return nil, err
	}
	idx, err := r.Index()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &Layout{Dir: dir, Index: *idx}, nil
}

func (l *Layout) reader() *layout.Reader { return &layout.Reader{Dir: l.Dir} }

// Root picks the descriptor a push sends: the only one of index.json, or the
// one whose org.opencontainers.image.ref.name is tag.
func (l *Layout) Root(tag string) (ocispec.Descriptor, error) {
	ms := l.Index.Manifests
	switch {
	case len(ms) == 0:
		return ocispec.Descriptor{}, fmt.Errorf("%s/index.json lists no manifest", l.Dir)
	case len(ms) == 1:
		return ms[0], nil
	}
	var names []string
	for _, d := range ms {
		name := d.Annotations[ocispec.AnnotationRefName]
		if name != "" && name == tag {
			return d, nil
		}
		names = append(names, fmt.Sprintf("%q", name))
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s/index.json lists %d manifests (ref.name %v) and none is named %q: name one with the tag of the destination", l.Dir, len(ms), names, tag)
}

// blobPath is where a digest's blob lives; the digest is validated, so the
// path cannot leave the layout's blobs directory.
func (l *Layout) blobPath(d digest.Digest) (string, error) {
	return l.reader().BlobPath(d)
}

// ReadBlob reads a small blob whole (a manifest, an index, a config), checking
// its size and digest.
func (l *Layout) ReadBlob(desc ocispec.Descriptor) ([]byte, error) {
	return l.reader().ReadBlob(desc, MaxManifestSize)
}

// VerifyBlob hashes a blob on disk against its descriptor, without holding
// it in memory.
func (l *Layout) VerifyBlob(desc ocispec.Descriptor) error {
	v, err := l.reader().OpenVerified(desc)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := v.Verify(); err != nil {
		return fmt.Errorf("%w (refusing to send it)", err)
	}
	return nil
}

// OpenBlob opens a blob's file (following symlinks: an index layout may link
// to its images' blobs) and checks that it is a regular file of its size.
func (l *Layout) OpenBlob(desc ocispec.Descriptor) (*os.File, error) {
	return l.reader().OpenBlob(desc)
}

// Graph is what a push sends, in order: Blobs (layers and configs, each
// once) first, then Manifests, children before the index that lists them; the
// last manifest is the root.
type Graph struct {
	Blobs     []ocispec.Descriptor
	Manifests []Manifest
}

// Manifest is a manifest or index with its bytes (already verified).
type Manifest struct {
	Desc ocispec.Descriptor
	Data []byte
}

// Walk reads the root and what it references, verifying every manifest and
// index it parses (their children are read from them).
func (l *Layout) Walk(root ocispec.Descriptor) (*Graph, error) {
	g := &Graph{}
	seen := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor, depth int) error
	walk = func(d ocispec.Descriptor, depth int) error {
		if depth > 4 {
			return fmt.Errorf("manifest %s: indexes nested too deep", d.Digest)
		}
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		switch {
		case isIndex(d.MediaType):
			data, err := l.ReadBlob(d)
			if err != nil {
				return err
			}
			idx, err := parseIndex(data)
			if err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			for _, c := range idx.Manifests {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			g.Manifests = append(g.Manifests, Manifest{d, data})
		case isManifest(d.MediaType):
			data, err := l.ReadBlob(d)
			if err != nil {
				return err
			}
			m, err := parseManifest(data)
			if err != nil {
				return fmt.Errorf("manifest %s: %w", d.Digest, err)
			}
			for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if !seen[b.Digest] {
					seen[b.Digest] = true
					g.Blobs = append(g.Blobs, b)
				}
			}
			g.Manifests = append(g.Manifests, Manifest{d, data})
		default:
			return fmt.Errorf("descriptor %s has media type %q: a push sends an image manifest or an image index", d.Digest, d.MediaType)
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return g, nil
}

func parseManifest(data []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if err := layout.CheckDescriptor(m.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for i, d := range m.Layers {
		if err := layout.CheckDescriptor(d); err != nil {
			return nil, fmt.Errorf("layers[%d]: %w", i, err)
		}
	}
	return &m, nil
}

func parseIndex(data []byte) (*ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, err
	}
	for i, d := range idx.Manifests {
		if err := layout.CheckDescriptor(d); err != nil {
			return nil, fmt.Errorf("manifests[%d]: %w", i, err)
		}
	}
	return &idx, nil
}

// writeLayoutFiles writes oci-layout and index.json (one descriptor) in dir.
func writeLayoutFiles(dir string, root ocispec.Descriptor) error {
	lay, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), lay, 0o444); err != nil {
		return err
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{root},
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), append(data, '\n'), 0o444)
}
