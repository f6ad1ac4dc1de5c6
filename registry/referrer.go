package registry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/sbom"
)

// SBOMArtifactType is the artifactType (and the layer media type) of the SBOM
// referrer: CycloneDX JSON.
const SBOMArtifactType = "application/vnd.cyclonedx+json"

// ErrNoSBOM says that an image has no SBOM attached.
var ErrNoSBOM = sbom.ErrNoSBOM

// sbomManifest packs the referrer of the SBOM data for subject: an OCI 1.1
// artifact manifest (empty config, one layer), into a memory store, and
// says its blobs (the config {} and the SBOM). Its creation time is the
// image's, so that the same image and SBOM give the same referrer digest on
// every push.
func sbomManifest(ctx context.Context, data []byte, subject ocispec.Descriptor, created string) (*memory.Store, ocispec.Descriptor, []ocispec.Descriptor, error) {
	mem := memory.New()
	layer := content.NewDescriptorFromBytes(SBOMArtifactType, data)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: sbom.CycloneDXFile}
	if err := mem.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		return nil, ocispec.Descriptor{}, nil, err
	}
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	desc, err := oras.PackManifest(ctx, mem, oras.PackManifestVersion1_1, SBOMArtifactType, oras.PackManifestOptions{
		Subject:             &subject,
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: created},
	})
	// oras-go's empty config for a manifest packed without one.
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: ocispec.DescriptorEmptyJSON.Size}
	return mem, desc, []ocispec.Descriptor{config, layer}, err
}

// imageCreated is the image config's creation time, or the default one.
func imageCreated(l *Layout, root ocispec.Descriptor) string {
	data, err := l.ReadBlob(root, layout.MaxManifestSize)
	if err != nil {
		return sbom.DefaultCreated
	}
	_, m, err := layout.Parse(root.MediaType, data)
	if err != nil || m == nil {
		return sbom.DefaultCreated
	}
	cfg, err := l.ReadBlob(m.Config, layout.MaxConfigSize)
	if err != nil {
		return sbom.DefaultCreated
	}
	var img ocispec.Image
	if json.Unmarshal(cfg, &img) != nil || img.Created == nil {
		return sbom.DefaultCreated
	}
	return img.Created.UTC().Format(time.RFC3339Nano)
}

// referrersRepository is repo without a referrers capability set (Options.
// Repository sets "none" for image pushes): oras-go finds out, from the
// answer to a referrers listing, whether the registry has the API or needs
// the tag fallback.
func referrersRepository(repo *remote.Repository) *remote.Repository {
	return &remote.Repository{
		Client:           repo.Client,
		Reference:        repo.Reference,
		PlainHTTP:        repo.PlainHTTP,
		MaxMetadataBytes: repo.MaxMetadataBytes,
		// The registry may not delete a replaced fallback index
		// (docker-registry refuses deletes by default): leaving it costs a
		// few hundred bytes.
		SkipReferrersGC: true,
	}
}

// layoutSBOMs are the SBOMs a push of root attaches, by image manifest: an
// image's sbom.cdx.json beside the layout; for an index (buildIndex), each
// image's sbom/HEX.cdx.json. Each is read here (bounded, a regular file);
// prepareSBOMs checks the ones to send before anything is sent.
func layoutSBOMs(l *Layout, root ocispec.Descriptor, g *layout.Graph) ([]*attachedSBOM, error) {
	var out []*attachedSBOM
	add := func(d ocispec.Descriptor, rel string) error {
		data, err := sbom.ReadPathUnchecked(l.Dir, rel)
		if errors.Is(err, ErrNoSBOM) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, &attachedSBOM{
			subject: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
			path:    filepath.Join(l.Dir, rel),
			data:    data,
		})
		return nil
	}
	if layout.IsManifest(root.MediaType) {
		return out, add(root, sbom.CycloneDXFile)
	}
	for _, n := range g.Nodes {
		if n.Manifest != nil {
			if err := add(n.Desc, sbom.IndexFile(n.Desc.Digest)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// attachedSBOM is an SBOM, the image manifest it describes and, once
// packed, its referrer.
type attachedSBOM struct {
	subject ocispec.Descriptor
	path    string // the layout file, for messages
	data    []byte
	mem     *memory.Store // the referrer's manifest and blobs
	desc    ocispec.Descriptor
	blobs   []ocispec.Descriptor
}

// prepareSBOMs packs each SBOM's referrer and keeps those repo lacks, each
// checked against the CycloneDX schema, so that a push refuses an invalid
// one before it sends anything. A referrer the repository has is the same
// bytes, checked when they were first sent: a push that changes nothing
// does not compile the schema.
func prepareSBOMs(ctx context.Context, repo *remote.Repository, l *Layout, boms []*attachedSBOM, o *Options) ([]*attachedSBOM, error) {
	var missing []*attachedSBOM
	for _, b := range boms {
		var err error
		b.mem, b.desc, b.blobs, err = sbomManifest(ctx, b.data, b.subject, imageCreated(l, b.subject))
		if err != nil {
			return nil, fmt.Errorf("packing the SBOM referrer of %s: %w", b.path, err)
		}
		var exists bool
		if err := withRetry(ctx, o.attempts(), func() (err error) {
			exists, err = repo.Manifests().Exists(ctx, b.desc)
			return err
		}); err != nil {
			return nil, fmt.Errorf("looking for the SBOM referrer %s: %w", b.desc.Digest, err)
		}
		if exists {
			continue
		}
		if err := sbom.Validate(b.data); err != nil {
			return nil, fmt.Errorf("%s: %w", b.path, err)
		}
		missing = append(missing, b)
	}
	return missing, nil
}

// pushSBOMs attaches each SBOM prepareSBOMs kept to its image (children of
// an index in the order the layout walk found them) and says how many it
// sent. Their blobs are mounted where the cache knows a repository holding
// them, as the image's are.
func pushSBOMs(ctx context.Context, repo *remote.Repository, ref Ref, boms []*attachedSBOM, cache *blobCache, o *Options) (int, error) {
	for i, b := range boms {
		if err := pushSBOM(ctx, repo, ref, b, cache, o); err != nil {
			return i, err
		}
	}
	return len(boms), nil
}

// pushSBOM attaches b to its image as a referrer. oras-go sends it through
// the referrers API where the registry has one (it answers the manifest PUT
// with OCI-Subject), else it adds it to the sha256-<hex> tag's index (the
// distribution spec's fallback).
func pushSBOM(ctx context.Context, repo *remote.Repository, ref Ref, b *attachedSBOM, cache *blobCache, o *Options) error {
	repo = referrersRepository(repo)
	// Mounted first where the cache knows a source: CopyGraph below skips
	// the blobs the repository has. A failed mount only means sending them.
	for _, d := range b.blobs {
		mountBlob(ctx, repo, d, b.mem, cache.sources(ref.Registry, d.Digest.String(), ref.Repository), o)
	}
	// Ask for the subject's referrers first: oras-go learns from the answer
	// whether the registry has the API (a 404 says it has not) and then
	// pushes plainly or through the tag fallback. Left to the manifest PUT,
	// it would go by the OCI-Subject header alone, which some registries
	// with the API (go-containerregistry's) do not send.
	if err := withRetry(ctx, o.attempts(), func() error {
		return repo.Referrers(ctx, b.subject, "", func([]ocispec.Descriptor) error { return nil })
	}); err != nil {
		return fmt.Errorf("listing the referrers of %s: %w", b.subject.Digest, err)
	}
	err := withRetry(ctx, o.attempts(), func() error {
		return oras.CopyGraph(ctx, b.mem, repo, b.desc, oras.CopyGraphOptions{Concurrency: 1})
	})
	if err != nil {
		return fmt.Errorf("attaching the SBOM %s: %w", b.desc.Digest, err)
	}
	for _, d := range b.blobs {
		cache.add(ref.Registry, d.Digest.String(), ref.Repository)
	}
	return nil
}

// mountBlob makes d present in repo by a mount from one of from, if the
// repository lacks it and a mount works; it leaves any other case to a
// plain upload.
func mountBlob(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, src content.Fetcher, from []string, o *Options) {
	if len(from) == 0 {
		return
	}
	if ok, err := repo.Blobs().Exists(ctx, d); err != nil || ok {
		return
	}
	for _, f := range from {
		err := withRetry(ctx, o.attempts(), func() error {
			return repo.Mount(ctx, d, f, func() (io.ReadCloser, error) { return src.Fetch(ctx, d) })
		})
		if err == nil {
			return
		}
	}
}

// FetchSBOM finds the CycloneDX SBOM attached to the image manifest subject
// in repo (through the referrers API, else the tag fallback; oras-go picks),
// fetches it with every digest and size checked, and checks it against the
// schema. With several, the newest (by creation annotation, then digest)
// wins. ErrNoSBOM (wrapped) when there is none.
func FetchSBOM(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, o *Options) ([]byte, error) {
	repo = referrersRepository(repo)
	var found []ocispec.Descriptor
	err := withRetry(ctx, o.attempts(), func() error {
		found = found[:0]
		// A listing is small: a body that trickles gets the stall deadline
		// whole, as a manifest does.
		lctx, cancel := withTimeout(ctx, o.stall(), "referrers listing", "--stall-timeout")
		defer cancel()
		// No artifactType filter: go-containerregistry's registry lists an
		// artifact manifest under its config's media type (the empty one)
		// instead of its artifactType, so oras-go's filter would drop it.
		// The manifest's own artifactType is checked once fetched.
		err := repo.Referrers(lctx, subject, "", func(page []ocispec.Descriptor) error {
			for _, d := range page {
				if d.ArtifactType == SBOMArtifactType || d.ArtifactType == ocispec.MediaTypeEmptyJSON {
					found = append(found, d)
				}
			}
			if len(found) > 1000 {
				return errors.New("more than 1000 SBOM referrers")
			}
			return nil
		})
		return o.nameDeadline(lctx, err)
	})
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", subject.Digest, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s: %w", subject.Digest, ErrNoSBOM)
	}
	slices.SortFunc(found, func(a, b ocispec.Descriptor) int {
		if c := cmp.Compare(b.Annotations[ocispec.AnnotationCreated], a.Annotations[ocispec.AnnotationCreated]); c != 0 {
			return c
		}
		return cmp.Compare(a.Digest, b.Digest)
	})
	return fetchSBOMReferrer(ctx, repo, found[0], subject, o)
}

// fetchSBOMReferrer reads one referrer and its SBOM layer, trusting nothing
// the registry said about it.
func fetchSBOMReferrer(ctx context.Context, repo *remote.Repository, desc, subject ocispec.Descriptor, o *Options) ([]byte, error) {
	mdata, err := fetchVerified(ctx, repo.Manifests(), desc, MaxManifestSize, o)
	if err != nil {
		return nil, fmt.Errorf("SBOM referrer %s: %w", desc.Digest, err)
	}
	if !layout.IsManifest(desc.MediaType) {
		return nil, fmt.Errorf("SBOM referrer %s has media type %q, not an image manifest", desc.Digest, desc.MediaType)
	}
	_, m, err := layout.Parse(desc.MediaType, mdata)
	if err != nil {
		return nil, fmt.Errorf("SBOM referrer %s: %w", desc.Digest, err)
	}
	switch {
	case m.Subject == nil || m.Subject.Digest != subject.Digest:
		return nil, fmt.Errorf("SBOM referrer %s: its subject is not %s", desc.Digest, subject.Digest)
	case m.ArtifactType != SBOMArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != SBOMArtifactType:
		return nil, fmt.Errorf("SBOM referrer %s: want artifactType %s and one layer of that type", desc.Digest, SBOMArtifactType)
	}
	data, err := fetchVerified(ctx, repo.Blobs(), m.Layers[0], sbom.MaxSize, o)
	if err != nil {
		return nil, fmt.Errorf("SBOM %s: %w", m.Layers[0].Digest, err)
	}
	if err := sbom.Validate(data); err != nil {
		return nil, fmt.Errorf("SBOM %s: %w", m.Layers[0].Digest, err)
	}
	return data, nil
}

// fetchVerified reads a small blob or manifest whole, within max bytes,
// checked against its descriptor.
func fetchVerified(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, max int64, o *Options) ([]byte, error) {
	if desc.Size < 0 || desc.Size > max {
		return nil, fmt.Errorf("declares %d bytes, more than the %d allowed", desc.Size, max)
	}
	var data []byte
	err := withRetry(ctx, o.attempts(), func() error {
		fctx, cancel := context.WithTimeout(ctx, o.stall())
		defer cancel()
		rc, err := f.Fetch(fctx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = content.ReadAll(io.LimitReader(rc, desc.Size+1), desc)
		return err
	})
	return data, err
}

// pullSBOMs writes the SBOMs attached to a pulled image beside its layout,
// where build-image and buildIndex put them, so that a push of the pulled
// layout attaches them again: an image's as DIR/sbom.cdx.json; for an index,
// each image's as DIR/sbom/HEX.cdx.json (the index itself gets none). It
// says how many it wrote.
func pullSBOMs(ctx context.Context, repo *remote.Repository, root ocispec.Descriptor, nodes []*layout.Node, dir string, o *Options) (int, error) {
	if layout.IsManifest(root.MediaType) {
		return pullSBOM(ctx, repo, root, filepath.Join(dir, sbom.CycloneDXFile), o)
	}
	n := 0
	for _, node := range nodes {
		if node.Manifest == nil {
			continue
		}
		got, err := pullSBOM(ctx, repo, node.Desc, filepath.Join(dir, sbom.IndexFile(node.Desc.Digest)), o)
		if err != nil {
			return n, err
		}
		n += got
	}
	return n, nil
}

// pullSBOM writes the SBOM attached to the image manifest subject to path
// (its directory made when there is one to write): 1 when there was one, 0
// when none is attached.
func pullSBOM(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, path string, o *Options) (int, error) {
	data, err := FetchSBOM(ctx, repo, ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}, o)
	if errors.Is(err, ErrNoSBOM) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("the SBOM of %s: %w", subject.Digest, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(path, data, 0o444); err != nil {
		return 0, err
	}
	return 1, nil
}

// RemoteSBOM reads the SBOM attached to the image ref names.
func RemoteSBOM(ctx context.Context, ref Ref, o Options) ([]byte, error) {
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	repo, err := o.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	var root ocispec.Descriptor
	err = withRetry(ctx, o.attempts(), func() error {
		mctx, cancel := context.WithTimeout(ctx, o.stall())
		defer cancel()
		var err error
		root, err = repo.Manifests().Resolve(mctx, ref.Reference())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, explain(ref, err))
	}
	if ref.Digest != "" && root.Digest.String() != ref.Digest {
		return nil, fmt.Errorf("%s: the registry answered with manifest %s", ref, root.Digest)
	}
	if !layout.IsManifest(root.MediaType) {
		return nil, fmt.Errorf("%s is %s, not an image manifest: an SBOM is attached to each image of an index; name one by its digest (REPOSITORY@sha256:...)", ref, root.MediaType)
	}
	data, err := FetchSBOM(ctx, repo, root, &o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, explain(ref, err))
	}
	return data, nil
}
