package registry

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocitools/ocitools/image/layout"
)

// Stats is what a push or pull did, for the summary line.
type Stats struct {
	Ref              Ref
	Digest           digest.Digest // the root manifest or index
	Sent, Skipped    int           // blobs uploaded / already in the repository
	Mounted          int           // blobs mounted from another repository
	Fetched          int           // blobs downloaded (pull)
	Bytes            int64         // bytes uploaded or downloaded
	ManifestsSent    int
	ManifestsSkipped int // already there (the tag already pointed at the root)
	SBOMsAttached    int // SBOM referrers sent (push), or fetched (pull)
	Elapsed          time.Duration
}

// Summary is the line printed at the end of a push or pull.
func (s *Stats) Summary(verb string) string {
	sbom := ""
	if s.SBOMsAttached == 1 && verb == "pulled" {
		sbom = " and its SBOM"
	} else if s.SBOMsAttached > 1 && verb == "pulled" {
		sbom = fmt.Sprintf(" and its images' %d SBOMs", s.SBOMsAttached)
	} else if s.SBOMsAttached > 0 {
		sbom = "; SBOM attached"
	}
	if verb == "pulled" {
		return fmt.Sprintf("pulled %s (%s)%s: %d blobs fetched, %s, in %.2fs",
			s.Ref, s.Digest, sbom, s.Fetched, HumanBytes(s.Bytes), s.Elapsed.Seconds())
	}
	return fmt.Sprintf("pushed %s (%s): %d blobs sent (%s), %d skipped, %d mounted; %d manifests sent, %d unchanged%s; in %.2fs",
		s.Ref, s.Digest, s.Sent, HumanBytes(s.Bytes), s.Skipped, s.Mounted, s.ManifestsSent, s.ManifestsSkipped, sbom, s.Elapsed.Seconds())
}

// PushTag is the tag a push of layout to ref uses: ref's, else the root's
// org.opencontainers.image.ref.name, else "latest".
func PushTag(l *Layout, ref Ref) string {
	if ref.Tag != "" || ref.Digest != "" {
		return ref.Tag
	}
	if len(l.Index.Manifests) == 1 {
		if t := l.Index.Manifests[0].Annotations[ocispec.AnnotationRefName]; t != "" {
			return t
		}
	}
	return "latest"
}

// Push sends the image (or index) of the layout at dir to ref: blobs the
// repository lacks, in parallel (o.Jobs at a time), each verified against its
// digest before it is sent and mounted from another repository of the same
// registry when the blob cache knows one; then the manifests, children first,
// the root last and only when the tag does not already point at it. A failure
// leaves the tag as it was.
func Push(ctx context.Context, dir string, ref Ref, o Options) (*Stats, error) {
	start := time.Now()
	l, err := OpenLayout(dir)
	if err != nil {
		return nil, err
	}
	ref.Tag = PushTag(l, ref)
	root, err := l.Root(ref.Tag)
	if err != nil {
		return nil, err
	}
	if ref.Digest != "" && ref.Digest != root.Digest.String() {
		return nil, fmt.Errorf("%s names digest %s but %s holds %s", ref, ref.Digest, dir, root.Digest)
	}
	g, err := l.Walk(ctx, root)
	if err != nil {
		return nil, err
	}
	boms, err := layoutSBOMs(l, root, g)
	if err != nil {
		return nil, err
	}
	repo, err := o.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	if boms, err = prepareSBOMs(ctx, repo, l, boms, &o); err != nil {
		return nil, fmt.Errorf("push to %s: nothing was sent: %w", ref, explain(ref, err))
	}
	prog := o.progress()
	defer prog.Close()
	cache := o.blobCache()
	baseHints(g, ref, cache)
	st := &Stats{Ref: ref, Digest: root.Digest}
	if err := pushBlobs(ctx, repo, l, g.Blobs, ref, cache, &o, prog, st); err != nil {
		_ = cache.save()
		return nil, fmt.Errorf("push to %s stopped, the tag was not changed: %w", ref, err)
	}
	if err := pushManifests(ctx, repo, g.Nodes, ref, &o, st); err != nil {
		_ = cache.save()
		return nil, err
	}
	// The SBOMs go last, as referrers of their images: a subject must
	// exist first where the registry checks it.
	st.SBOMsAttached, err = pushSBOMs(ctx, repo, ref, boms, cache, &o)
	if err != nil {
		_ = cache.save()
		return nil, fmt.Errorf("push to %s: the image is pushed, but %w", ref, explain(ref, err))
	}
	if err := cache.save(); err != nil {
		// A hint for later pushes only: not worth failing this one.
		fmt.Fprintf(errWriter, "ocitools: warning: blob cache %s: %v\n", cache.path, err)
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// pushBlobs makes every blob present in the repository, o.Jobs at a time,
// the largest first, and counts how each got there.
func pushBlobs(ctx context.Context, repo *remote.Repository, l *Layout, blobs []ocispec.Descriptor, ref Ref, cache *blobCache, o *Options, prog Progress, st *Stats) error {
	var mu sync.Mutex
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(o.jobs())
	for _, desc := range largestFirst(blobs) {
		eg.Go(func() error {
			how, sent, err := pushBlob(gctx, repo, l, desc, ref, cache, o, prog)
			if err != nil {
				return err
			}
			cache.add(ref.Registry, desc.Digest.String(), ref.Repository)
			mu.Lock()
			switch how {
			case "exists":
				st.Skipped++
			case "sent":
				st.Sent++
			default:
				st.Mounted++
			}
			st.Bytes += sent
			mu.Unlock()
			prog.Done(desc, how)
			return nil
		})
	}
	return eg.Wait()
}

// pushManifests sends the manifests, children first and the root (the last
// node) by tag, and counts them.
func pushManifests(ctx context.Context, repo *remote.Repository, nodes []*layout.Node, ref Ref, o *Options, st *Stats) error {
	for i, m := range nodes {
		isRoot := i == len(nodes)-1
		var sent bool
		err := withRetry(ctx, o.attempts(), func() error {
			mctx, cancel := withTimeout(ctx, o.stall(), "manifest", "--stall-timeout")
			defer cancel()
			var err error
			sent, err = pushManifest(mctx, repo, m, ref, isRoot)
			return o.nameDeadline(mctx, err)
		})
		if err != nil {
			return fmt.Errorf("push to %s: manifest %s: %w", ref, m.Desc.Digest, explain(ref, err))
		}
		if sent {
			st.ManifestsSent++
		} else {
			st.ManifestsSkipped++
		}
	}
	return nil
}

// pushManifest sends one manifest unless the repository has it: children by
// digest, the root by tag unless the tag already resolves to it (so an
// unchanged image is not re-PUT and its tag not rewritten).
func pushManifest(ctx context.Context, repo *remote.Repository, m *layout.Node, ref Ref, isRoot bool) (bool, error) {
	ms := repo.Manifests()
	if isRoot && ref.Tag != "" {
		cur, err := ms.Resolve(ctx, ref.Tag)
		switch {
		case err == nil && cur.Digest == m.Desc.Digest:
			return false, nil
		case err != nil && !errors.Is(err, errdef.ErrNotFound):
			return false, err
		}
		return true, ms.PushReference(ctx, m.Desc, bytes.NewReader(m.Data), ref.Tag)
	}
	ok, err := ms.Exists(ctx, m.Desc)
	if err != nil || ok {
		return false, err
	}
	return true, ms.Push(ctx, m.Desc, bytes.NewReader(m.Data))
}

// pushBlob makes one blob present in the repository: found there, mounted
// from a repository the cache names, or sent (after verifying it). It says
// how, and how many bytes it sent.
func pushBlob(ctx context.Context, repo *remote.Repository, l *Layout, desc ocispec.Descriptor, ref Ref, cache *blobCache, o *Options, prog Progress) (string, int64, error) {
	var exists bool
	err := withRetry(ctx, o.attempts(), func() (err error) {
		exists, err = repo.Blobs().Exists(ctx, desc)
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("blob %s: %w", desc.Digest, explain(ref, err))
	}
	if exists {
		return "exists", 0, nil
	}
	u := &blobUpload{repo: repo, l: l, desc: desc, o: o, prog: prog}
	for _, from := range cache.sources(ref.Registry, desc.Digest.String(), ref.Repository) {
		var how string
		err := withRetry(ctx, o.attempts(), func() (err error) {
			how, err = u.attempt(ctx, from)
			return err
		})
		if err == nil {
			return how, u.sent.Load(), nil
		}
		var refused errRefused
		if errors.As(err, &refused) {
			return "", 0, refused.err
		}
		if ctx.Err() != nil {
			return "", 0, ctx.Err()
		}
		// A stale cache entry (the source repository lost the blob, or we
		// may not read it): fall back to a plain upload.
	}
	var how string
	err = withRetry(ctx, o.attempts(), func() (err error) {
		how, err = u.attempt(ctx, "")
		return err
	})
	var refused errRefused
	if errors.As(err, &refused) {
		return "", 0, refused.err
	}
	if err != nil {
		return "", 0, fmt.Errorf("sending blob %s (%s): %w", desc.Digest, HumanBytes(desc.Size), explain(ref, err))
	}
	return how, u.sent.Load(), nil
}

// blobUpload is the state of one blob's upload across its attempts.
type blobUpload struct {
	repo *remote.Repository
	l    *Layout
	desc ocispec.Descriptor
	o    *Options
	prog Progress
	// verified: the layout's file was checked whole against its digest
	// (once: a tampered layout is refused, naming the blob; a mount sends
	// no byte of ours, so it needs no hashing).
	verified bool
	attempts int
	sent     atomic.Int64
}

// attempt runs one attempt, through a mount from the repository from when
// from != "". It says "sent" or "mounted from FROM".
func (u *blobUpload) attempt(ctx context.Context, from string) (string, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sr *stallReader
	used := false
	content := func() (io.ReadCloser, error) {
		if !u.verified {
			if err := u.l.VerifyBlob(u.desc); err != nil {
				return nil, errRefused{fmt.Errorf("%w (refusing to send it)", err)}
			}
			u.verified = true
		}
		f, err := u.l.OpenBlob(u.desc)
		if err != nil {
			return nil, err
		}
		used = true
		u.sent.Store(0)
		if u.attempts > 0 {
			u.prog.Retry(u.desc, errors.New("starting over"))
		}
		u.prog.Start(u.desc, "sending")
		sr = newStallReader(f, u.o.stall(), cancel, func(n int) { u.sent.Add(int64(n)); u.prog.Add(u.desc, n) })
		return struct {
			io.Reader
			io.Closer
		}{sr, f}, nil
	}
	var err error
	if from != "" {
		err = u.repo.Mount(actx, u.desc, from, content)
	} else {
		var rc io.ReadCloser
		if rc, err = content(); err == nil {
			err = u.repo.Blobs().Push(actx, u.desc, rc)
			rc.Close()
		}
	}
	if sr != nil {
		sr.stop()
	}
	if err != nil && context.Cause(actx) == errStalled {
		err = u.o.nameDeadline(ctx, errStalled)
	}
	u.attempts++
	if err != nil {
		return "", err
	}
	if used {
		return "sent", nil
	}
	return "mounted from " + from, nil
}

// errRefused carries a layout blob that failed verification through oras-go
// (a mount's fallback upload), so that it is reported as it is.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }
func (e errRefused) Unwrap() error { return e.err }

// largestFirst orders blobs by size, largest first (then by digest), so that
// the largest, which bounds the push's length, starts at once instead of
// waiting behind small ones for a free job.
func largestFirst(blobs []ocispec.Descriptor) []ocispec.Descriptor {
	out := slices.Clone(blobs)
	slices.SortStableFunc(out, func(a, b ocispec.Descriptor) int {
		if c := cmp.Compare(b.Size, a.Size); c != 0 {
			return c
		}
		return cmp.Compare(a.Digest, b.Digest)
	})
	return out
}
