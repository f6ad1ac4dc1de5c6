package layout

import (
	"context"
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types, accepted wherever the OCI ones are (registries and
// skopeo still hand them out; they have the same shape).
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// IsIndex tells whether mt is an image index (OCI or Docker manifest list).
func IsIndex(mt string) bool { return mt == v1.MediaTypeImageIndex || mt == DockerManifestList }

// IsManifest tells whether mt is an image manifest (OCI or Docker).
func IsManifest(mt string) bool { return mt == v1.MediaTypeImageManifest || mt == DockerManifest }

// IsConfig tells whether mt is an image config (OCI or Docker).
func IsConfig(mt string) bool { return mt == v1.MediaTypeImageConfig || mt == DockerConfig }

// The bounds of every graph walk, local or remote. A hostile graph is small
// on disk but may name the same children many times over, or nest deeply: a
// walk reads each digest once and stops at these.
const (
	// MaxManifestSize bounds one manifest or index (registries refuse
	// larger ones; oras-go's default for registry metadata is the same).
	MaxManifestSize = 4 << 20
	// MaxConfigSize bounds one image config: a little JSON with a history.
	MaxConfigSize = 16 << 20
	// MaxDepth bounds indexes nested in indexes: the root is at depth 0, a
	// multi-platform image's manifests at 1.
	MaxDepth = 4
	// MaxDescriptors bounds the descriptors a walk reads, counting every
	// mention (a digest listed twice counts twice): real images have a few
	// hundred.
	MaxDescriptors = 1 << 16
	// MaxGraphBytes bounds the manifests and indexes a walk holds.
	MaxGraphBytes = 64 << 20
)

// Node is a manifest or an index, read (its bytes verified against the
// descriptor) and parsed, its descriptors checked.
type Node struct {
	Desc     v1.Descriptor
	Data     []byte
	Index    *v1.Index    // when Desc is an index
	Manifest *v1.Manifest // when Desc is a manifest
	Depth    int
}

// Children are the descriptors an index lists, or a manifest's config then
// layers.
func (n *Node) Children() []v1.Descriptor {
	if n.Index != nil {
		return n.Index.Manifests
	}
	return append([]v1.Descriptor{n.Manifest.Config}, n.Manifest.Layers...)
}

// FetchFunc returns the bytes of a manifest or index, at most MaxManifestSize,
// checked against d's size and digest.
type FetchFunc func(ctx context.Context, d v1.Descriptor) ([]byte, error)

// Walker reads an image graph through Fetch, each digest once: a second Read
// of a digest returns the node of the first. It counts descriptors and bytes
// against the bounds above.
type Walker struct {
	Fetch FetchFunc
	nodes map[digest.Digest]*Node
	descs int
	bytes int64
}

// NewWalker is a walker reading through fetch.
func NewWalker(fetch FetchFunc) *Walker {
	return &Walker{Fetch: fetch, nodes: map[digest.Digest]*Node{}}
}

// Count adds n descriptors to the walk's total, refusing more than
// MaxDescriptors (where says whose they are).
func (w *Walker) Count(n int, where string) error {
	w.descs += n
	if w.descs > MaxDescriptors {
		return fmt.Errorf("%s: the image graph lists more than %d descriptors in all: refusing it", where, MaxDescriptors)
	}
	return nil
}

// Read reads the manifest or index d at depth (the root is 0), or returns
// the node already read for its digest.
func (w *Walker) Read(ctx context.Context, d v1.Descriptor, depth int) (*Node, error) {
	if n, ok := w.nodes[d.Digest]; ok {
		return n, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	what := "manifest"
	switch {
	case IsIndex(d.MediaType):
		what = "index"
		if depth >= MaxDepth {
			return nil, fmt.Errorf("index %s: indexes nested too deep (more than %d levels)", d.Digest, MaxDepth)
		}
	case IsManifest(d.MediaType):
	default:
		return nil, fmt.Errorf("descriptor %s has media type %q, not an image manifest or index", d.Digest, d.MediaType)
	}
	if err := CheckDescriptor(d); err != nil {
		return nil, err
	}
	if d.Size > MaxManifestSize {
		return nil, fmt.Errorf("%s %s declares %d bytes, more than the %d allowed", what, d.Digest, d.Size, MaxManifestSize)
	}
	if w.bytes += d.Size; w.bytes > MaxGraphBytes {
		return nil, fmt.Errorf("%s %s: the image graph's manifests add up to more than %d bytes: refusing it", what, d.Digest, MaxGraphBytes)
	}
	data, err := w.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	n := &Node{Desc: d, Data: data, Depth: depth}
	if n.Index, n.Manifest, err = Parse(d.MediaType, data); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, d.Digest, err)
	}
	if err := w.Count(len(n.Children()), what+" "+d.Digest.String()); err != nil {
		return nil, err
	}
	w.nodes[d.Digest] = n
	return n, nil
}

// Parse decodes a manifest (IsManifest(mt)) or an index and checks the
// descriptors it lists.
func Parse(mt string, data []byte) (*v1.Index, *v1.Manifest, error) {
	if IsIndex(mt) {
		var idx v1.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, nil, err
		}
		for i, d := range idx.Manifests {
			if err := CheckDescriptor(d); err != nil {
				return nil, nil, fmt.Errorf("manifests[%d]: %w", i, err)
			}
		}
		return &idx, nil, nil
	}
	var m v1.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, nil, err
	}
	if err := CheckDescriptor(m.Config); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if m.Config.Size > MaxConfigSize {
		// Refused from the descriptor, before anything fetches it.
		return nil, nil, fmt.Errorf("config %s declares %d bytes, more than the %d allowed for an image config", m.Config.Digest, m.Config.Size, MaxConfigSize)
	}
	for i, d := range m.Layers {
		if err := CheckDescriptor(d); err != nil {
			return nil, nil, fmt.Errorf("layers[%d]: %w", i, err)
		}
	}
	return nil, &m, nil
}

// Graph is an image graph read whole: Blobs (configs and layers, each once,
// in first-seen order) and Nodes (each manifest and index once, children
// before the index that lists them: the last is the root).
type Graph struct {
	Blobs []v1.Descriptor
	Nodes []*Node
}

// Walk reads root and everything it references, depth first, each digest
// once, stopping at the first error.
func (w *Walker) Walk(ctx context.Context, root v1.Descriptor) (*Graph, error) {
	g := &Graph{}
	done := map[digest.Digest]bool{}
	var walk func(d v1.Descriptor, depth int) error
	walk = func(d v1.Descriptor, depth int) error {
		if done[d.Digest] {
			return nil
		}
		done[d.Digest] = true
		n, err := w.Read(ctx, d, depth)
		if err != nil {
			return err
		}
		if n.Index != nil {
			for _, c := range n.Index.Manifests {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
		} else {
			for _, b := range n.Children() {
				if !done[b.Digest] {
					done[b.Digest] = true
					g.Blobs = append(g.Blobs, b)
				}
			}
		}
		g.Nodes = append(g.Nodes, n)
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return g, nil
}

// Fetch is the FetchFunc reading r's blobs.
func (r *Reader) Fetch(_ context.Context, d v1.Descriptor) ([]byte, error) {
	return r.ReadBlob(d, MaxManifestSize)
}

// Walk reads the graph under root from the layout.
func (r *Reader) Walk(ctx context.Context, root v1.Descriptor) (*Graph, error) {
	return NewWalker(r.Fetch).Walk(ctx, root)
}
