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

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/internal/readfile"
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
	IndexDigest digest.Digest    `json:"indexDigest,omitempty"`
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
	p := &puller{repo: repo, ref: ref, o: &o, prog: nopProgress{}}
	root, err := repo.Resolve(ctx, ref.Reference())
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, explain(ref, err))
	}
	data, err := p.fetchManifest(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, err)
	}
	lock := &Lock{Version: LockVersion, ImageName: ref.Registry + "/" + ref.Repository, Tag: ref.Tag}
	if layout.IsIndex(root.MediaType) {
		lock.IndexDigest = root.Digest
	}
	w := p.walker(root, data)
	desc, err := w.Select(ctx, root, 0, plat.String(), plat.Matches)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, err)
	}
	n, err := w.Read(ctx, desc, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", ref, err)
	}
	m, data := n.Manifest, n.Data
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
	if d.Size > layout.MaxConfigSize {
		return nil, fmt.Errorf("image config %s declares %d bytes, more than the %d allowed", d.Digest, d.Size, layout.MaxConfigSize)
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
	data, err := readfile.Following(path, layout.MaxConfigSize)
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

// ReadLock reads and checks a lock file: its version, and that its manifest
// has the digest it claims and lists exactly its blobs.
func ReadLock(path string) (*Lock, *ocispec.Manifest, error) {
	data, err := readfile.Following(path, 2*MaxManifestSize+1<<20)
	if err != nil {
		return nil, nil, err
	}
	var lock Lock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	if lock.Version != LockVersion {
		return nil, nil, fmt.Errorf("lock file %s: version %d, this ocitools reads version %d (write it again with ocitools lock)", path, lock.Version, LockVersion)
	}
	if err := lock.ImageDigest.Validate(); err != nil {
		return nil, nil, fmt.Errorf("lock file %s: imageDigest: %w", path, err)
	}
	if got := lock.ImageDigest.Algorithm().FromString(lock.Manifest); got != lock.ImageDigest {
		return nil, nil, fmt.Errorf("lock file %s: its manifest has digest %s, not the imageDigest %s (edited by hand? write it again with ocitools lock)", path, got, lock.ImageDigest)
	}
	_, m, err := layout.Parse(ocispec.MediaTypeImageManifest, []byte(lock.Manifest))
	if err != nil {
		return nil, nil, fmt.Errorf("lock file %s: manifest: %w", path, err)
	}
	want := append([]ocispec.Descriptor{m.Config}, m.Layers...)
	if len(want) != len(lock.Blobs) {
		return nil, nil, fmt.Errorf("lock file %s: lists %d blobs, its manifest %d", path, len(lock.Blobs), len(want))
	}
	for i, b := range want {
		if lock.Blobs[i].Digest != b.Digest || lock.Blobs[i].Size != b.Size {
			return nil, nil, fmt.Errorf("lock file %s: blob %d is %s, its manifest says %s", path, i, lock.Blobs[i].Digest, b.Digest)
		}
	}
	return &lock, m, nil
}

// LayoutFromLock writes at out the OCI image layout of a lock file whose
// blobs Nix fetched (blobs maps each digest to its file): the manifest from
// the lock's bytes, each blob a symbolic link to its file (checked for its
// size: Nix checked its digest), index.json naming the manifest with the
// lock's tag and platform.
func LayoutFromLock(lockFile string, blobs map[digest.Digest]string, out string) (err error) {
	lock, m, err := ReadLock(lockFile)
	if err != nil {
		return err
	}
	l, err := layout.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(out)
		}
	}()
	for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		file, ok := blobs[b.Digest]
		if !ok {
			return fmt.Errorf("lock-layout: no file given for blob %s", b.Digest)
		}
		fi, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("lock-layout: blob %s: %w", b.Digest, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != b.Size {
			return fmt.Errorf("lock-layout: blob %s: %s is not a regular file of %d bytes", b.Digest, file, b.Size)
		}
		if _, err := os.Lstat(l.BlobPath(b.Digest)); err == nil {
			continue
		}
		if err := os.Symlink(file, l.BlobPath(b.Digest)); err != nil {
			return fmt.Errorf("lock-layout: %w", err)
		}
	}
	desc, err := l.WriteBytes(lock.MediaType, []byte(lock.Manifest))
	if err != nil {
		return err
	}
	plat := lock.Platform
	desc.Platform = &plat
	return l.WriteIndex(desc, lock.Tag)
}
