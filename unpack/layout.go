package unpack

import (
	"context"
	// Registers the digest algorithms go-digest verifies.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layout"
)

// Layout is an OCI image layout directory, read as untrusted input through
// image/layout's Reader and Walker: every blob is read up to its declared
// size only and checked against its digest, each manifest and index once.
type Layout struct {
	Dir string
}

// OpenLayout checks that dir is an OCI image layout.
func OpenLayout(dir string) (*Layout, error) {
	if _, err := layout.Open(dir); err != nil {
		return nil, err
	}
	return &Layout{Dir: dir}, nil
}

func (l *Layout) reader() *layout.Reader { return &layout.Reader{Dir: l.Dir} }

// Index reads index.json.
func (l *Layout) Index() (*ocispec.Index, error) {
	idx, err := l.reader().Index()
	if err != nil {
		return nil, err
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("%s: schemaVersion %d is not 2", filepath.Join(l.Dir, ocispec.ImageIndexFile), idx.SchemaVersion)
	}
	return idx, nil
}

// VerifiedReader reads a blob and checks it when done (Verify).
type VerifiedReader = layout.VerifiedReader

// OpenBlob opens the blob d names for reading. The reader gives at most
// d.Size bytes; Verify, after reading, checks the digest and that the blob is
// exactly d.Size bytes. A blob file larger than declared is refused at once.
func (l *Layout) OpenBlob(d ocispec.Descriptor) (*VerifiedReader, error) {
	return l.reader().OpenVerified(d)
}

// Platform is what a multi-platform index is searched for.
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform is the platform this program runs on.
func HostPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform reads "os/arch" or "os/arch/variant".
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("platform %q is not of the form os/arch or os/arch/variant (for example linux/amd64, linux/arm64/v8)", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Matches says whether a descriptor's platform is p (an empty variant on
// either side matches any).
func (p Platform) Matches(q *ocispec.Platform) bool {
	if q == nil {
		return false
	}
	if q.OS != p.OS || q.Architecture != p.Architecture {
		return false
	}
	return p.Variant == "" || q.Variant == "" || q.Variant == p.Variant
}

// Image is a resolved image: its manifest and config, verified.
type Image struct {
	ManifestDesc ocispec.Descriptor
	Manifest     ocispec.Manifest
	Config       ocispec.Image
	RefName      string
}

// Resolve finds the image of the layout named tag ("" when the layout holds
// one image, or one index) for the platform, and reads its manifest and
// config. Each index and manifest is read once however often the graph
// names it, and the first error below an index stops the search.
func (l *Layout) Resolve(ctx context.Context, tag string, plat Platform) (*Image, error) {
	idx, err := l.Index()
	if err != nil {
		return nil, err
	}
	var cands []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if tag == "" || d.Annotations[ocispec.AnnotationRefName] == tag {
			cands = append(cands, d)
		}
	}
	tags := refNames(idx)
	switch {
	case len(cands) == 0 && tag != "":
		return nil, fmt.Errorf("%s has no image tagged %q (tags: %s)", l.Dir, tag, listOrNone(tags))
	case len(cands) == 0:
		return nil, fmt.Errorf("%s holds no image (index.json lists no manifest)", l.Dir)
	}
	s := &search{l: l, w: layout.NewWalker(l.reader().Fetch), plat: plat}
	if len(cands) == 1 {
		return s.resolve(ctx, cands[0], cands[0].Annotations[ocispec.AnnotationRefName])
	}
	// Several: a multi-platform layout listing its manifests directly, or
	// several tags, one of which must be chosen.
	if tag == "" && len(tags) > 1 {
		return nil, fmt.Errorf("%s holds several images: name one as %s:TAG (tags: %s)", l.Dir, l.Dir, listOrNone(tags))
	}
	for _, d := range cands {
		if layout.IsManifest(d.MediaType) && plat.Matches(d.Platform) {
			return s.resolve(ctx, d, tag)
		}
	}
	return nil, &layout.NoPlatformError{Where: l.Dir, Want: plat.String(), Has: cands}
}

// RefNames lists the layout's image names (its manifests' ref names),
// sorted, each once: some tools tag each platform's manifest with the same
// name, and those manifests are one image.
func (l *Layout) RefNames() ([]string, error) {
	idx, err := l.Index()
	if err != nil {
		return nil, err
	}
	return refNames(idx), nil
}

func refNames(idx *ocispec.Index) []string {
	var names []string
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		if name := d.Annotations[ocispec.AnnotationRefName]; name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// search reads an image through one walker.
type search struct {
	l    *Layout
	w    *layout.Walker
	plat Platform
}

// resolve reads the image d names, choosing the platform's when d is an
// index (image/layout's Select).
func (s *search) resolve(ctx context.Context, d ocispec.Descriptor, refName string) (*Image, error) {
	md, err := s.w.Select(ctx, d, 0, s.plat.String(), s.plat.Matches)
	if err != nil {
		return nil, err
	}
	return s.image(ctx, md, refName)
}

// image reads the manifest d and its config, and checks them.
func (s *search) image(ctx context.Context, d ocispec.Descriptor, refName string) (*Image, error) {
	n, err := s.w.Read(ctx, d, 0)
	if err != nil {
		return nil, err
	}
	img := &Image{ManifestDesc: d, Manifest: *n.Manifest, RefName: refName}
	m := &img.Manifest
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest %s: schemaVersion %d is not 2", d.Digest, m.SchemaVersion)
	}
	if m.MediaType != "" && !layout.IsManifest(m.MediaType) {
		return nil, fmt.Errorf("manifest %s has media type %q, not an image manifest", d.Digest, m.MediaType)
	}
	if !layout.IsConfig(m.Config.MediaType) {
		return nil, fmt.Errorf("manifest %s: config media type %q is not an image config (%s)", d.Digest, m.Config.MediaType, ocispec.MediaTypeImageConfig)
	}
	data, err := s.l.reader().ReadBlob(m.Config, layout.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	if err := json.Unmarshal(data, &img.Config); err != nil {
		return nil, fmt.Errorf("image config %s is not valid JSON: %w", m.Config.Digest, err)
	}
	c := &img.Config
	if c.RootFS.Type != "layers" {
		return nil, fmt.Errorf("image config %s: rootfs.type %q is not \"layers\"", m.Config.Digest, c.RootFS.Type)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image config %s lists %d diff_ids for the manifest's %d layers", m.Config.Digest, len(c.RootFS.DiffIDs), len(m.Layers))
	}
	for i, id := range c.RootFS.DiffIDs {
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("image config %s: diff_ids[%d] %q: %w", m.Config.Digest, i, id, err)
		}
	}
	for i, ld := range m.Layers {
		if _, err := compress.FromMediaType(ld.MediaType); err != nil {
			return nil, fmt.Errorf("manifest %s: layer %d (%s): %w", d.Digest, i+1, ld.Digest, err)
		}
	}
	return img, nil
}
