package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocitools/ocitools/image/layout"
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
	out, err := layout.Init(tmp)
	if err != nil {
		return nil, err
	}
	p := &puller{repo: repo, out: out, ref: ref, o: &o, prog: prog}

	root, data, err := fetchRoot(ctx, repo, ref, &o)
	if err != nil {
		return nil, err
	}
	if root, err = p.fetch(ctx, root, data, filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	sboms := 0
	if o.PullSBOM {
		if sboms, err = pullSBOMs(ctx, repo, root, p.nodes, tmp, &o); err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, explain(ref, err))
		}
	}
	root = ocispec.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size, Platform: root.Platform}
	if err := out.WriteIndex(root, ref.Tag); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("pull into %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("pull into %s: %w", dir, err)
	}
	ok = true
	cache := o.blobCache()
	for _, b := range p.blobs {
		cache.add(ref.Registry, b.Digest.String(), ref.Repository)
	}
	_ = cache.save()
	return &Stats{Ref: ref, Digest: root.Digest, Fetched: len(p.blobs), Bytes: p.bytes, SBOMsAttached: sboms, Elapsed: time.Since(start)}, nil
}

// fetch stores the graph under root (with a platform asked for, that
// platform's image of it) and every blob it names, and returns the root the
// layout's index.json gets. dir is where the layout goes, for the free-space
// check.
func (p *puller) fetch(ctx context.Context, root ocispec.Descriptor, data []byte, dir string) (ocispec.Descriptor, error) {
	w := p.walker(root, data)
	var err error
	if p.o.Platform != nil {
		if root, err = w.Select(ctx, root, 0, p.o.Platform.String(), p.o.Platform.Matches); err != nil {
			return root, err
		}
	}
	if err := p.graph(ctx, w, root, dir); err != nil {
		return root, err
	}
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(p.o.jobs())
	for _, b := range p.blobs {
		eg.Go(func() error { return p.blob(gctx, b) })
	}
	if err := eg.Wait(); err != nil {
		return root, err
	}
	if p.o.Platform != nil {
		plat, err := p.checkPlatform(*p.o.Platform)
		if err != nil {
			return root, err
		}
		if root.Platform == nil {
			root.Platform = plat
		}
	}
	return root, nil
}

// fetchRoot fetches the manifest or index ref names, checked against its
// digest (and ref's, when it names one).
func fetchRoot(ctx context.Context, repo *remote.Repository, ref Ref, o *Options) (ocispec.Descriptor, []byte, error) {
	var root ocispec.Descriptor
	var data []byte
	err := withRetry(ctx, o.attempts(), func() error {
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
		return root, nil, fmt.Errorf("pull %s: %w", ref, explain(ref, err))
	}
	if ref.Digest != "" && root.Digest.String() != ref.Digest {
		return root, nil, fmt.Errorf("pull %s: the registry answered with manifest %s", ref, root.Digest)
	}
	return root, data, nil
}

// checkEmptyTarget refuses to pull over an existing layout or file.
func checkEmptyTarget(dir string) error {
	if err := layout.CheckEmptyTarget(dir); err != nil {
		return fmt.Errorf("pull into %s: %w", dir, err)
	}
	return nil
}

type puller struct {
	repo  *remote.Repository
	out   *layout.Layout
	ref   Ref
	o     *Options
	prog  Progress
	mu    sync.Mutex
	blobs []ocispec.Descriptor
	nodes []*layout.Node // the manifests and indexes, for their SBOMs
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

// graph reads the image graph under root through the walker (each manifest
// and index fetched once), stores it, and checks the declared sizes of what
// is left to fetch against the free space of the file system holding dir
// before any blob is fetched.
func (p *puller) graph(ctx context.Context, w *layout.Walker, root ocispec.Descriptor, dir string) error {
	g, err := w.Walk(ctx, root)
	if err != nil {
		return err
	}
	var need int64
	for _, b := range g.Blobs {
		need += b.Size
	}
	if free, ok := freeBytes(dir); ok && need > free {
		return fmt.Errorf("the image's blobs declare %s, and %s has %s free: nothing was fetched", HumanBytes(need), dir, HumanBytes(free))
	}
	for _, n := range g.Nodes {
		if _, err := p.out.WriteBytes(n.Desc.MediaType, n.Data); err != nil {
			return err
		}
	}
	p.blobs, p.nodes = g.Blobs, g.Nodes
	return nil
}

// freeBytes is what an unprivileged writer may still write to the file
// system holding dir.
func freeBytes(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bsize <= 0 {
		return 0, false
	}
	return int64(min(st.Bavail*uint64(st.Bsize), 1<<62)), true
}

// blob downloads one blob into the layout.
func (p *puller) blob(ctx context.Context, desc ocispec.Descriptor) error {
	return p.blobTo(ctx, desc, p.out.BlobPath(desc.Digest))
}

// blobTo downloads one blob to path through image/layout's verified sink.
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
		n = 0
		sr := newStallReader(rc, p.o.stall(), cancel, func(k int) { n += int64(k); p.prog.Add(desc, k) })
		err = layout.SaveBlob(path, sr, desc.Digest, desc.Size)
		sr.stop()
		var ce *layout.ContentError
		switch {
		case errors.As(err, &ce):
			return fmt.Errorf("sent %s", ce.Detail())
		case err != nil && context.Cause(actx) == errStalled:
			return p.o.nameDeadline(ctx, errStalled)
		}
		return err
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
