package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/unpack"
)

// LockVersion is the version of the lock file format Lock writes.
const LockVersion = 1

// Lock pins one image of a registry for nix/pull.nix's pullImageFromLock:
// the manifest's exact bytes (so that its digest is reproduced) and every
// blob it references, each fetched by Nix as its own fixed-output derivation.
type Lock struct {
	Version     int           `json:"version"`
	ImageName   string        `json:"imageName"` // REGISTRY/REPOSITORY
	Tag         string        `json:"tag,omitempty"`
	ImageDigest digest.Digest `json:"imageDigest"` // the manifest's
	// IndexDigest is the index the manifest was chosen from, if any.
	IndexDigest digest.Digest   `json:"indexDigest,omitempty"`
	Platform    ocispec.Platform `json:"platform"`
	MediaType   string           `json:"mediaType"` // the manifest's
	Manifest    string           `json:"manifest"`  // its bytes, exactly
	// Blobs are the config, then the layers, bottom first.
	Blobs []ocispec.Descriptor `json:"blobs"`
}

// LockImage resolves ref (for plat, from an index) and describes its image:
// only the manifests and the config are fetched.
func LockImage(ctx context.Context, ref Ref, plat unpack.Platform, o Options) (*Lock, error) {
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	repo, err := o.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	p := &puller{repo: repo, ref: ref, o: &o, prog: nopProgress{}, seen: map[digest.Digest]bool{}}
	root, err := repo.Resolve(ctx, ref.Reference())
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, explain(ref, err))
	}
	data, err := p.fetchManifest(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, err)
	}
	lock := &Lock{Version: LockVersion, ImageName: ref.Registry + "/" + ref.Repository, Tag: ref.Tag}
	if isIndex(root.MediaType) {
		lock.IndexDigest = root.Digest
	}
	desc, data, err := p.selectPlatform(ctx, root, data, plat, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, err)
	}
	if !isManifest(desc.MediaType) {
		return nil, fmt.Errorf("lock %s: %s has media type %q, not an image manifest", ref, desc.Digest, desc.MediaType)
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("lock %s: manifest %s: %w", ref, desc.Digest, err)
	}
	cfg, err := p.fetchConfig(ctx, m.Config)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, err)
	}
	if !plat.Matches(&cfg.Platform) {
		return nil, fmt.Errorf("lock %s: the image is for %s, not %s", ref, platformString(cfg.Platform), plat)
	}
	lock.ImageDigest, lock.MediaType, lock.Manifest = desc.Digest, desc.MediaType, string(data)
	lock.Platform = ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		lock.Blobs = append(lock.Blobs, ocispec.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size})
	}
	return lock, nil
}

// fetchConfig fetches and decodes an image config (bounded, verified).
func (p *puller) fetchConfig(ctx context.Context, d ocispec.Descriptor) (*ocispec.Image, error) {
	if d.Size > 16<<20 {
		return nil, fmt.Errorf("image config %s declares %d bytes, more than 16 MiB", d.Digest, d.Size)
	}
	tmp, err := os.MkdirTemp("", "ocitools-lock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "config")
	if err := p.blobTo(ctx, d, path); err != nil {
		return nil, err
	}
	data, err := readLimited(path, 16<<20)
	if err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("image config %s: %w", d.Digest, err)
	}
	return &cfg, nil
}

// FetchBlob downloads one blob of ref's repository to the new file out,
// checking its size and digest as it streams (the builder of the lock file's
// per-blob fixed-output derivations).
func FetchBlob(ctx context.Context, ref Ref, desc ocispec.Descriptor, out string, o Options) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("fetch-blob: digest %q: %w", desc.Digest, err)
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("fetch-blob: %s exists", out)
	}
	repo, err := o.Repository(ctx, ref)
	if err != nil {
		return err
	}
	p := &puller{repo: repo, ref: ref, o: &o, prog: o.progress()}
	defer p.prog.Close()
	return p.blobTo(ctx, desc, out)
}

// WriteLock writes lock as indented JSON.
func WriteLock(w io.Writer, lock *Lock) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(lock)
}
