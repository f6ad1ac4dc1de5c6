package registry

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/unpack"
)

// fetchManifest fetches a manifest or index a parent lists, bounded and
// verified, with retries: the walker's fetch.
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

// walker reads the graph under root (whose bytes, data, are already
// fetched), each manifest and index once.
func (p *puller) walker(root ocispec.Descriptor, data []byte) *layout.Walker {
	return layout.NewWalker(func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		if d.Digest == root.Digest {
			return data, nil
		}
		return p.fetchManifest(ctx, d)
	})
}

// checkPlatform reads the pulled image's config and refuses an image of
// another platform than the one asked for; it returns the config's platform.
func (p *puller) checkPlatform(plat unpack.Platform) (*ocispec.Platform, error) {
	for _, b := range p.blobs {
		if !layout.IsConfig(b.MediaType) {
			continue
		}
		data, err := readfile.Following(p.out.BlobPath(b.Digest), layout.MaxConfigSize)
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
func baseHints(g *layout.Graph, ref Ref, cache *blobCache) {
	for _, n := range g.Nodes {
		man := n.Manifest
		if man == nil {
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
