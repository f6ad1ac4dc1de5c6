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
		e, err := readIndexEntry(img, links)
		if err != nil {
			return fmt.Errorf("buildIndex: %w", err)
		}
		if prev, dup := platforms[e.key]; dup {
			return fmt.Errorf("buildIndex: %s and %s are both %s: one image per platform", prev, img, e.key)
		}
		platforms[e.key] = img
		if e.bom != nil {
			boms[e.desc.Digest] = e.bom
		}
		idx.Manifests = append(idx.Manifests, e.desc)
	}
	return writeIndexLayout(out, tag, idx, links, boms)
}

// indexEntry is one image of an index: its manifest descriptor (with the
// platform), the platform as os/arch[/variant] and its SBOM, if any.
type indexEntry struct {
	desc ocispec.Descriptor
	key  string
	bom  []byte
}

// readIndexEntry reads one buildImage result and records where each of its
// blobs is in links (the index links to them, it copies nothing).
func readIndexEntry(img string, links map[digest.Digest]string) (*indexEntry, error) {
	abs, err := filepath.Abs(img)
	if err != nil {
		return nil, err
	}
	r, err := Open(abs)
	if err != nil {
		return nil, err
	}
	top, err := r.Index()
	if err != nil {
		return nil, err
	}
	if len(top.Manifests) != 1 || !IsManifest(top.Manifests[0].MediaType) {
		return nil, fmt.Errorf("%s must hold exactly one image manifest (a buildImage result)", img)
	}
	desc := top.Manifests[0]
	g, err := r.Walk(context.Background(), desc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	plat, err := configPlatform(r, g.Nodes[0].Manifest.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	for _, b := range append(g.Blobs, desc) {
		f, err := r.OpenBlob(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", img, err)
		}
		f.Close()
		p, _ := r.BlobPath(b.Digest)
		if _, err := os.Lstat(p); err != nil {
			// Made by a BlobSource (a streamed image): nothing to link to.
			return nil, fmt.Errorf("%s: blob %s is not a file of the layout (a streamed image?): the index links to its images' blobs, so build them with stream = false", img, b.Digest)
		}
		links[b.Digest] = p
	}
	e := &indexEntry{desc: ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: plat}}
	e.key = plat.OS + "/" + plat.Architecture
	if plat.Variant != "" {
		e.key += "/" + plat.Variant
	}
	// The image's SBOM (beside its layout) goes into the index's layout
	// under the manifest's digest: push attaches it to that image
	// (docs/sbom.md).
	switch bom, err := sbom.ReadFile(abs); {
	case err == nil:
		e.bom = bom
	case !errors.Is(err, sbom.ErrNoSBOM):
		return nil, err
	}
	return e, nil
}

// configPlatform is the platform an image's config names.
func configPlatform(r *Reader, config ocispec.Descriptor) (*ocispec.Platform, error) {
	cdata, err := r.ReadBlob(config, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cdata, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.OS == "" || cfg.Architecture == "" {
		return nil, fmt.Errorf("its config names no os and architecture")
	}
	return &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}, nil
}

// writeIndexLayout writes the index's layout: links to its images' blobs,
// their SBOMs, the index blob and index.json.
func writeIndexLayout(out, tag string, idx ocispec.Index, links map[digest.Digest]string, boms map[digest.Digest][]byte) error {
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
