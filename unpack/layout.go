package unpack

import (
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

	"github.com/ocitools/ocitools/image/layout"
)

// Media types of Docker's image format, which registries and skopeo still
// hand out; they have the same shape as their OCI counterparts.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerTar     = "application/vnd.docker.image.rootfs.diff.tar"
)

// Bounds on the JSON documents of an image: registries refuse manifests over
// 4 MiB; a config is a little JSON with a history.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 16 << 20
	maxIndexDepth   = 4
)

// Layout is an OCI image layout directory, read as untrusted input through
// image/layout's Reader: every blob is read up to its declared size only and
// checked against its digest.
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

// readJSONBlob reads a whole small blob, verified, and decodes it.
func (l *Layout) readJSONBlob(d ocispec.Descriptor, limit int64, what string, into any) error {
	data, err := l.reader().ReadBlob(d, limit)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s %s is not valid JSON: %w", what, d.Digest, err)
	}
	return nil
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

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == dockerManifestList
}

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == dockerManifest
}

// Resolve finds the image of the layout named tag ("" when the layout holds
// one image, or one index) for the platform, and reads its manifest and
// config.
func (l *Layout) Resolve(tag string, plat Platform) (*Image, error) {
	idx, err := l.Index()
	if err != nil {
		return nil, err
	}
	var cands []ocispec.Descriptor
	var tags []string
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		name := d.Annotations[ocispec.AnnotationRefName]
		if name != "" && !seen[name] {
			// Some tools tag each platform's manifest with the same name.
			seen[name] = true
			tags = append(tags, name)
		}
		if tag == "" || name == tag {
			cands = append(cands, d)
		}
	}
	sort.Strings(tags)
	switch {
	case len(cands) == 0 && tag != "":
		return nil, fmt.Errorf("%s has no image tagged %q (tags: %s)", l.Dir, tag, listOrNone(tags))
	case len(cands) == 0:
		return nil, fmt.Errorf("%s holds no image (index.json lists no manifest)", l.Dir)
	}
	refName := tag
	if len(cands) == 1 {
		refName = cands[0].Annotations[ocispec.AnnotationRefName]
		return l.resolveDesc(cands[0], plat, refName, 0)
	}
	// Several: a multi-platform layout listing its manifests directly, or
	// several tags, one of which must be chosen.
	if tag == "" && len(tags) > 1 {
		return nil, fmt.Errorf("%s holds several images: name one as %s:TAG (tags: %s)", l.Dir, l.Dir, listOrNone(tags))
	}
	if d, ok := pickPlatform(cands, plat); ok {
		return l.resolveDesc(d, plat, refName, 0)
	}
	return nil, fmt.Errorf("%s has no image for platform %s (it has %s); choose one with --platform", l.Dir, plat, platformsOf(cands))
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func platformsOf(ds []ocispec.Descriptor) string {
	var out []string
	for _, d := range ds {
		if d.Platform != nil {
			out = append(out, Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}.String())
		}
	}
	if len(out) == 0 {
		return "no platform annotations"
	}
	return strings.Join(out, ", ")
}

func pickPlatform(ds []ocispec.Descriptor, plat Platform) (ocispec.Descriptor, bool) {
	for _, d := range ds {
		if isManifestType(d.MediaType) && plat.Matches(d.Platform) {
			return d, true
		}
	}
	return ocispec.Descriptor{}, false
}

func (l *Layout) resolveDesc(d ocispec.Descriptor, plat Platform, refName string, depth int) (*Image, error) {
	switch {
	case isIndexType(d.MediaType):
		if depth >= maxIndexDepth {
			return nil, fmt.Errorf("image index %s: indexes nest more than %d deep", d.Digest, maxIndexDepth)
		}
		var idx ocispec.Index
		if err := l.readJSONBlob(d, maxManifestSize, "image index", &idx); err != nil {
			return nil, err
		}
		if md, ok := pickPlatform(idx.Manifests, plat); ok {
			return l.resolveDesc(md, plat, refName, depth+1)
		}
		for _, md := range idx.Manifests {
			if isIndexType(md.MediaType) {
				if img, err := l.resolveDesc(md, plat, refName, depth+1); err == nil {
					return img, nil
				}
			}
		}
		return nil, fmt.Errorf("image index %s has no image for platform %s (it has %s); choose one with --platform", d.Digest, plat, platformsOf(idx.Manifests))
	case isManifestType(d.MediaType):
	default:
		return nil, fmt.Errorf("descriptor %s has media type %q, not an image manifest or index", d.Digest, d.MediaType)
	}
	img := &Image{ManifestDesc: d, RefName: refName}
	if err := l.readJSONBlob(d, maxManifestSize, "manifest", &img.Manifest); err != nil {
		return nil, err
	}
	m := &img.Manifest
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest %s: schemaVersion %d is not 2", d.Digest, m.SchemaVersion)
	}
	if m.MediaType != "" && !isManifestType(m.MediaType) {
		return nil, fmt.Errorf("manifest %s has media type %q, not an image manifest", d.Digest, m.MediaType)
	}
	if ct := m.Config.MediaType; ct != ocispec.MediaTypeImageConfig && ct != dockerConfig {
		return nil, fmt.Errorf("manifest %s: config media type %q is not an image config (%s)", d.Digest, ct, ocispec.MediaTypeImageConfig)
	}
	if err := l.readJSONBlob(m.Config, maxConfigSize, "image config", &img.Config); err != nil {
		return nil, err
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
		if _, err := layerCompression(ld.MediaType); err != nil {
			return nil, fmt.Errorf("manifest %s: layer %d (%s): %w", d.Digest, i+1, ld.Digest, err)
		}
	}
	return img, nil
}
