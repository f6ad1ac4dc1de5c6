package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/unpack"
)

const dockerConfig = "application/vnd.docker.container.image.v1+json"

// fetchManifest fetches a manifest or index a parent lists, bounded and
// verified, with retries.
func (p *puller) fetchManifest(ctx context.Context, c ocispec.Descriptor) ([]byte, error) {
	var data []byte
	err := withRetry(ctx, p.o.attempts(), func() error {
		mctx, cancel := withTimeout(ctx, p.o.stall(), "manifest", "--stall-timeout")
		defer cancel()
		rc, err := p.repo.Manifests().Fetch(mctx, c)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = readManifest(rc, c)
		return p.o.nameDeadline(mctx, err)
	})
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", c.Digest, explain(p.ref, err))
	}
	return data, nil
}

// selectPlatform replaces an index by the manifest it lists for plat
// (searching nested indexes); a manifest is returned as it is, its config is
// checked once fetched (checkPlatform).
func (p *puller) selectPlatform(ctx context.Context, root ocispec.Descriptor, data []byte, plat unpack.Platform, depth int) (ocispec.Descriptor, []byte, error) {
	if !isIndex(root.MediaType) {
		return root, data, nil
	}
	if depth > 4 {
		return root, nil, fmt.Errorf("index %s: nested too deep", root.Digest)
	}
	idx, err := parseIndex(data)
	if err != nil {
		return root, nil, fmt.Errorf("index %s: %w", root.Digest, err)
	}
	var have []string
	for _, c := range idx.Manifests {
		if isManifest(c.MediaType) && plat.Matches(c.Platform) {
			cdata, err := p.fetchManifest(ctx, c)
			return c, cdata, err
		}
		if c.Platform != nil {
			have = append(have, platformString(*c.Platform))
		}
	}
	for _, c := range idx.Manifests {
		if isIndex(c.MediaType) {
			cdata, err := p.fetchManifest(ctx, c)
			if err != nil {
				return root, nil, err
			}
			if d, md, err := p.selectPlatform(ctx, c, cdata, plat, depth+1); err == nil {
				return d, md, nil
			}
		}
	}
	if len(have) == 0 {
		have = []string{"no platform annotations"}
	}
	return root, nil, fmt.Errorf("index %s has no image for platform %s (it has %s)", root.Digest, plat, strings.Join(have, ", "))
}

// checkPlatform reads the pulled image's config and refuses an image of
// another platform than the one asked for; it returns the config's platform.
func (p *puller) checkPlatform(plat unpack.Platform) (*ocispec.Platform, error) {
	for _, b := range p.blobs {
		if b.MediaType != ocispec.MediaTypeImageConfig && b.MediaType != dockerConfig {
			continue
		}
		data, err := readfile.Following(p.path(b.Digest), 16<<20)
		if err != nil {
			return nil, err
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("image config %s: %w", b.Digest, err)
		}
		if !plat.Matches(&cfg.Platform) {
			return nil, fmt.Errorf("the image is for %s, not %s (asked for with the platform option)", platformString(cfg.Platform), plat)
		}
		return &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, nil
	}
	return nil, nil
}

func platformString(p ocispec.Platform) string {
	return unpack.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}.String()
}

// baseHints: an image built on a base (buildImage's fromImage) names it in
// image-spec's org.opencontainers.image.base.name annotation. When the base
// is in another repository of the same registry, its layers are mounted from
// there instead of sent again.
func baseHints(g *Graph, ref Ref, cache *blobCache) {
	for _, m := range g.Manifests {
		if !isManifest(m.Desc.MediaType) {
			continue
		}
		man, err := parseManifest(m.Data)
		if err != nil {
			continue
		}
		base, err := ParseRef(man.Annotations[ocispec.AnnotationBaseImageName])
		if err != nil || base.Registry != ref.Registry || base.Repository == ref.Repository {
			continue
		}
		for _, l := range man.Layers {
			cache.hint(ref.Registry, l.Digest.String(), base.Repository)
		}
	}
}
