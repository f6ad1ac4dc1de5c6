// Package registry moves OCI images between image layouts on disk and
// registries: push (sending only what the registry lacks) and pull. The
// protocol is oras-go v2's (remote, auth, credentials); this package decides
// what to send, in which order, and checks every byte against its digest on
// the way. Layouts are read, walked and written by image/layout.
package registry

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
)

// MaxManifestSize bounds every manifest and index read, local or remote.
const MaxManifestSize = layout.MaxManifestSize

// Layout is an OCI image layout directory opened for reading, with its
// index.json.
type Layout struct {
	*layout.Reader
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
	return &Layout{Reader: r, Index: *idx}, nil
}

// Root picks the descriptor a push sends: the only one of index.json, or the
// one whose org.opencontainers.image.ref.name is tag.
func (l *Layout) Root(tag string) (ocispec.Descriptor, error) {
	return layout.Root(l.Dir, &l.Index, tag)
}
