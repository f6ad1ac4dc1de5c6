package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/options"
	"github.com/ocitools/ocitools/sbom"
)

// BuildIndex writes at out a multi-arch image layout: an OCI image index
// listing the image of each layout in images with its platform (read from the
// image's config), and index.json naming that index with tag. The images'
// blobs are symbolic links to the images' own files (absolute paths, so a Nix
// result keeps the images in its closure and copies nothing); the index is
// the only new blob. Two images for the same platform are refused.
func BuildIndex(out, tag string, images []string) error {
	if len(images) == 0 {
		return fmt.Errorf("buildIndex: images is empty: give at least one image layout")
	}
	// buildIndex's tag row (options/known.json), as nix/registry.nix checks it.
	if err := options.CheckShape("imageTag", "tag", tag); err != nil {
		return fmt.Errorf("buildIndex: %w", err)
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	links := map[digest.Digest]string{}
	boms := map[digest.Digest][]byte{}
	platforms := map[string]string{}
	for _, img := range images {
		abs, err := filepath.Abs(img)
		if err != nil {
			return err
		}
		r, err := Open(abs)
		if err != nil {
			return fmt.Errorf("buildIndex: %w", err)
		}
		top, err := r.Index()
		if err != nil {
			return fmt.Errorf("buildIndex: %w", err)
		}
		if len(top.Manifests) != 1 || !IsManifest(top.Manifests[0].MediaType) {
			return fmt.Errorf("buildIndex: %s must hold exactly one image manifest (a buildImage result)", img)
		}
		desc := top.Manifests[0]
		g, err := r.Walk(context.Background(), desc)
		if err != nil {
			return fmt.Errorf("buildIndex: %s: %w", img, err)
		}
		m := g.Nodes[0].Manifest
		cdata, err := r.ReadBlob(m.Config, MaxConfigSize)
		if err != nil {
			return fmt.Errorf("buildIndex: %s: config: %w", img, err)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(cdata, &cfg); err != nil {
			return fmt.Errorf("buildIndex: %s: config: %w", img, err)
		}
		if cfg.OS == "" || cfg.Architecture == "" {
			return fmt.Errorf("buildIndex: %s: its config names no os and architecture", img)
		}
		plat := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}
		key := plat.OS + "/" + plat.Architecture
		if plat.Variant != "" {
			key += "/" + plat.Variant
		}
		if prev, dup := platforms[key]; dup {
			return fmt.Errorf("buildIndex: %s and %s are both %s: one image per platform", prev, img, key)
		}
		platforms[key] = img
		for _, b := range append(g.Blobs, desc) {
			f, err := r.OpenBlob(b)
			if err != nil {
				return fmt.Errorf("buildIndex: %s: %w", img, err)
			}
			f.Close()
			p, _ := r.BlobPath(b.Digest)
			if _, err := os.Lstat(p); err != nil {
				// Made by a BlobSource (a streamed image): nothing to link to.
				return fmt.Errorf("buildIndex: %s: blob %s is not a file of the layout (a streamed image?): the index links to its images' blobs, so build them with stream = false", img, b.Digest)
			}
			links[b.Digest] = p
		}
		// The image's SBOM (beside its layout) goes into the index's
		// layout under the manifest's digest: push attaches it to that
		// image (docs/sbom.md).
		switch bom, err := sbom.ReadFile(abs); {
		case err == nil:
			boms[desc.Digest] = bom
		case !errors.Is(err, sbom.ErrNoSBOM):
			return fmt.Errorf("buildIndex: %w", err)
		}
		child := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: &plat}
		idx.Manifests = append(idx.Manifests, child)
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	l, err := Init(out)
	if err != nil {
		return err
	}
	for d, target := range links {
		link := l.BlobPath(d)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	for d, bom := range boms {
		p := filepath.Join(out, sbom.IndexFile(d))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, bom, 0o444); err != nil {
			return err
		}
	}
	idesc, err := l.WriteBytes(ocispec.MediaTypeImageIndex, data)
	if err != nil {
		return err
	}
	return l.WriteIndex(idesc, tag)
}
