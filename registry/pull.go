package registry

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocitools/ocitools/internal/partial"
)

// Pull fetches ref (a manifest, or an index with every image it lists, or
// with o.Platform only that platform's image) into a new OCI image layout at
// dir. Every manifest and blob is checked against
// its size and digest as it arrives; manifests are bounded by
// MaxManifestSize. The layout is assembled in a temporary sibling directory
// and renamed into place at the end, so a failure leaves nothing at dir.
func Pull(ctx context.Context, ref Ref, dir string, o Options) (*Stats, error) {
	start := time.Now()
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	if err := checkEmptyTarget(dir); err != nil {
		return nil, err
	}
	repo, err := o.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	prog := o.progress()
	defer prog.Close()
	// .DIR.pull-X beside dir, locked while this pull lives: one that
	// SIGKILL stopped is reclaimed by the next pull in the same directory.
	part, err := partial.Create(dir, ".pull-", "pull", os.RemoveAll, errWriter)
	if err != nil {
		return nil, fmt.Errorf("pull into %s: %w", dir, err)
	}
	defer part.Release()
	tmp := part.Path
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("pull into %s: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	p := &puller{repo: repo, dir: tmp, ref: ref, o: &o, prog: prog, seen: map[digest.Digest]bool{}}

	var root ocispec.Descriptor
	var data []byte
	err = withRetry(ctx, o.attempts(), func() error {
		var rc io.ReadCloser
		var err error
		// A manifest is small: a body that trickles gets the stall deadline whole.
		mctx, cancel := withTimeout(ctx, o.stall(), "manifest", "--stall-timeout")
		defer cancel()
		root, rc, err = repo.Manifests().FetchReference(mctx, ref.Reference())
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = readManifest(rc, root)
		return o.nameDeadline(mctx, err)
	})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, explain(ref, err))
	}
	if ref.Digest != "" && root.Digest.String() != ref.Digest {
		return nil, fmt.Errorf("pull %s: the registry answered with manifest %s", ref, root.Digest)
	}
	if o.Platform != nil {
		if root, data, err = p.selectPlatform(ctx, root, data, *o.Platform, 0); err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
	}
	if err := p.manifest(ctx, root, data, 0); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(o.jobs())
	for _, b := range p.blobs {
		eg.Go(func() error { return p.blob(gctx, b) })
	}
	if err := eg.Wait(); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if o.Platform != nil {
		plat, err := p.checkPlatform(*o.Platform)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
		if root.Platform == nil {
			root.Platform = plat
		}
	}
	var gotSBOM bool
	if o.PullSBOM {
		if gotSBOM, err = pullSBOM(ctx, repo, root, tmp, &o); err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, explain(ref, err))
		}
	}
	root = ocispec.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size, Platform: root.Platform}
	if ref.Tag != "" {
		root.Annotations = map[string]string{ocispec.AnnotationRefName: ref.Tag}
	}
	if err := writeLayoutFiles(tmp, root); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("pull into %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("pull into %s: %w", dir, err)
	}
	ok = true
	cachePath := o.Cache
	if cachePath == "" {
		cachePath = DefaultCachePath()
	}
	cache := openBlobCache(cachePath)
	for _, b := range p.blobs {
		cache.add(ref.Registry, b.Digest.String(), ref.Repository)
	}
	_ = cache.save()
	st := &Stats{Ref: ref, Digest: root.Digest, Fetched: len(p.blobs), Bytes: p.bytes, Elapsed: time.Since(start)}
	if gotSBOM {
		st.SBOMsAttached = 1
	}
	return st, nil
}

// checkEmptyTarget refuses to pull over an existing layout or file.
func checkEmptyTarget(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pull into %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("pull into %s: the directory exists and is not empty", dir)
	}
	return nil
}

type puller struct {
	repo  *remote.Repository
	dir   string
	ref   Ref
	o     *Options
	prog  Progress
	mu    sync.Mutex
	seen  map[digest.Digest]bool
	blobs []ocispec.Descriptor
	bytes int64
}

// readManifest reads a manifest body, bounded, and checks it against desc.
func readManifest(r io.Reader, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("manifest %s declares %d bytes, more than the %d allowed", desc.Digest, desc.Size, MaxManifestSize)
	}
	data, err := io.ReadAll(io.LimitReader(r, desc.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != desc.Size {
		return nil, fmt.Errorf("manifest %s: got more or fewer bytes than the %d declared", desc.Digest, desc.Size)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("manifest %s: content has digest %s", desc.Digest, got)
	}
	return data, nil
}

// manifest stores a verified manifest or index and queues what it lists.
func (p *puller) manifest(ctx context.Context, desc ocispec.Descriptor, data []byte, depth int) error {
	if depth > 4 {
		return fmt.Errorf("index %s: nested too deep", desc.Digest)
	}
	if p.seen[desc.Digest] {
		return nil
	}
	p.seen[desc.Digest] = true
	if err := p.write(desc, data); err != nil {
		return err
	}
	switch {
	case isIndex(desc.MediaType):
		idx, err := parseIndex(data)
		if err != nil {
			return fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		for _, c := range idx.Manifests {
			if !isIndex(c.MediaType) && !isManifest(c.MediaType) {
				return fmt.Errorf("index %s lists %s of media type %q", desc.Digest, c.Digest, c.MediaType)
			}
			cdata, err := p.fetchManifest(ctx, c)
			if err != nil {
				return err
			}
			if err := p.manifest(ctx, c, cdata, depth+1); err != nil {
				return err
			}
		}
	case isManifest(desc.MediaType):
		m, err := parseManifest(data)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if !p.seen[b.Digest] {
				p.seen[b.Digest] = true
				p.blobs = append(p.blobs, b)
			}
		}
	default:
		return fmt.Errorf("%s has media type %q: not an image manifest or index", desc.Digest, desc.MediaType)
	}
	return nil
}

func (p *puller) path(d digest.Digest) string {
	return filepath.Join(p.dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func (p *puller) write(desc ocispec.Descriptor, data []byte) error {
	path := p.path(desc.Digest)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o444)
}

// blob downloads one blob to a temporary file, checking size and digest as
// it streams, and renames it into place.
func (p *puller) blob(ctx context.Context, desc ocispec.Descriptor) error {
	path := p.path(desc.Digest)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return p.blobTo(ctx, desc, path)
}

// blobTo downloads one blob to path (through a temporary file beside it).
func (p *puller) blobTo(ctx context.Context, desc ocispec.Descriptor, path string) error {
	var n int64
	err := withRetry(ctx, p.o.attempts(), func() error {
		actx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		rc, err := p.repo.Blobs().Fetch(actx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		p.prog.Start(desc, "fetching")
		f, err := os.CreateTemp(filepath.Dir(path), ".part-")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		h := desc.Digest.Algorithm().Hash()
		sr := newStallReader(io.LimitReader(rc, desc.Size+1), p.o.stall(), cancel, func(k int) { p.prog.Add(desc, k) })
		n, err = io.Copy(io.MultiWriter(f, h), sr)
		sr.stop()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if context.Cause(actx) == errStalled {
				return p.o.nameDeadline(ctx, errStalled)
			}
			return err
		}
		if n != desc.Size {
			return fmt.Errorf("blob %s: the registry sent %s bytes, the manifest says %d", desc.Digest, sizeWord(n, desc.Size), desc.Size)
		}
		if got := digest.NewDigest(desc.Digest.Algorithm(), h); got != desc.Digest {
			return fmt.Errorf("blob %s: the registry sent content with digest %s", desc.Digest, got)
		}
		if err := os.Chmod(f.Name(), 0o444); err != nil {
			return err
		}
		return os.Rename(f.Name(), path)
	})
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, explain(p.ref, err))
	}
	p.mu.Lock()
	p.bytes += n
	p.mu.Unlock()
	p.prog.Done(desc, "fetched")
	return nil
}

func sizeWord(n, want int64) string {
	if n > want {
		return "more than"
	}
	return fmt.Sprint(n)
}
