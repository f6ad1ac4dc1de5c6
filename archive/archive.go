// Package archive writes an OCI image layout as one tar file that both
// `docker load` (old and new) and `podman load` read: the layout itself
// (oci-layout, index.json, blobs/sha256/...) plus a Docker manifest.json whose
// Config and Layers name those same blobs, so no blob is stored twice.
//
// The output is deterministic (fixed entry order, modes, owners and times, one
// tar format) and streamed: blobs are copied from the layout into the tar,
// never held in memory. Every blob is checked against its digest before the
// first byte is written (the stream may go straight into docker load), and
// again while it is copied.
package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/options"
)

// ContainerdNameAnnotation is the annotation containerd (and docker 25+ with
// the containerd image store) reads the image's full name from.
const ContainerdNameAnnotation = "io.containerd.image.name"

// Options say what to write.
type Options struct {
	// Name is the repository name for the Docker RepoTags (for example
	// "example.com/app" or "hello"). Empty: the images are loaded without a
	// name unless index.json's ref.name annotation is a full reference.
	Name string
	// Tag replaces the tag index.json gives (its ref.name annotation).
	Tag string
	// OCIOnly writes the OCI layout alone, without manifest.json: an
	// oci-archive, which podman load and skopeo read and docker 20.10 does not.
	OCIOnly bool
}

// image is one manifest of the layout, checked, with what manifest.json says
// about it.
type image struct {
	desc     v1.Descriptor
	manifest v1.Manifest
	repoTag  string
}

// Write writes the archive of the layout in dir to w. An error leaves w with
// a partial archive: the caller removes it.
func Write(w io.Writer, dir string, opts Options) error {
	r, err := layout.Open(dir)
	if err != nil {
		return err
	}
	index, err := r.Index()
	if err != nil {
		return err
	}
	if err := checkRequest(index, opts); err != nil {
		return err
	}
	images, err := readImages(r, index, opts)
	if err != nil {
		return err
	}
	indexJSON, err := json.Marshal(archiveIndex(index, images, opts))
	if err != nil {
		return fmt.Errorf("encoding index.json: %w", err)
	}
	blobs, docker := blobOrder(images)
	// Nothing is written before every blob is known to be what its
	// descriptor says; the archive is then written from the same open files.
	files := make([]*layout.VerifiedReader, 0, len(blobs))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, b := range blobs {
		f, err := verified(r, b)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	layoutJSON, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
	meta := []archiveFile{{v1.ImageLayoutFile, layoutJSON}, {v1.ImageIndexFile, indexJSON}}
	if !opts.OCIOnly {
		dockerJSON, err := json.Marshal(docker)
		if err != nil {
			return fmt.Errorf("encoding manifest.json: %w", err)
		}
		meta = append(meta, archiveFile{"manifest.json", dockerJSON})
	}
	return writeArchive(w, meta, blobs, files)
}

// checkRequest refuses, before any blob is read, a layout with nothing to
// archive and a name or tag that is not one, or a tag that could name
// several images.
func checkRequest(index *v1.Index, opts Options) error {
	if index.SchemaVersion != 2 {
		return fmt.Errorf("%s: schemaVersion is %d, want 2", v1.ImageIndexFile, index.SchemaVersion)
	}
	if len(index.Manifests) == 0 {
		return fmt.Errorf("%s lists no manifest: there is no image to archive", v1.ImageIndexFile)
	}
	if n := len(index.Manifests) - countReferrers(index.Manifests); opts.Tag != "" && n > 1 {
		return fmt.Errorf("a tag was given but %s lists %d images: which one it names is ambiguous", v1.ImageIndexFile, n)
	}
	if opts.Name != "" {
		if err := options.CheckShape("imageName", "name", opts.Name); err != nil {
			return err
		}
	}
	if opts.Tag != "" {
		if err := options.CheckShape("imageTag", "tag", opts.Tag); err != nil {
			return err
		}
	}
	return nil
}

// readImages reads the images index.json lists, leaving out the artifacts
// attached to them.
func readImages(r *layout.Reader, index *v1.Index, opts Options) ([]image, error) {
	rd := &reader{r: r, w: layout.NewWalker(r.Fetch), configs: map[digest.Digest]bool{}}
	if err := rd.w.Count(len(index.Manifests), v1.ImageIndexFile); err != nil {
		return nil, err
	}
	var images []image
	for i, d := range index.Manifests {
		if isReferrer(d) {
			// An SBOM or signature attached to an image (an OCI layout may
			// list them): not an image to load, and podman load refuses an
			// archive whose index.json lists two manifests.
			continue
		}
		img, err := rd.image(i, d, opts)
		if errors.Is(err, errReferrer) {
			continue
		}
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("%s lists only artifacts attached to images (referrers), no image to archive", v1.ImageIndexFile)
	}
	return images, nil
}

// archiveIndex is index.json as written: the images, each with the tag and,
// for containerd-based loaders, the full name on its descriptor.
func archiveIndex(index *v1.Index, images []image, opts Options) v1.Index {
	out := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Annotations: index.Annotations}
	for _, img := range images {
		d := img.desc
		ann := map[string]string{}
		for k, v := range d.Annotations {
			ann[k] = v
		}
		if opts.Tag != "" {
			ann[v1.AnnotationRefName] = opts.Tag
		}
		if img.repoTag != "" {
			ann[ContainerdNameAnnotation] = qualify(img.repoTag)
		}
		if len(ann) > 0 {
			d.Annotations = ann
		}
		out.Manifests = append(out.Manifests, d)
	}
	return out
}

// dockerEntry is one image of Docker's manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// blobOrder is the archive's blobs in first-seen order (each image's
// manifest, config, layers) and Docker's manifest.json entries.
func blobOrder(images []image) ([]v1.Descriptor, []dockerEntry) {
	var blobs []v1.Descriptor
	seen := map[digest.Digest]bool{}
	addBlob := func(d v1.Descriptor) {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			blobs = append(blobs, d)
		}
	}
	var docker []dockerEntry
	for _, img := range images {
		addBlob(img.desc)
		addBlob(img.manifest.Config)
		e := dockerEntry{Config: blobPath(img.manifest.Config.Digest), RepoTags: []string{}, Layers: []string{}}
		if img.repoTag != "" {
			e.RepoTags = append(e.RepoTags, img.repoTag)
		}
		for _, l := range img.manifest.Layers {
			addBlob(l)
			e.Layers = append(e.Layers, blobPath(l.Digest))
		}
		docker = append(docker, e)
	}
	return blobs, docker
}

// archiveFile is a small file at the top of the archive.
type archiveFile struct {
	name string
	data []byte
}

// writeArchive writes the tar: the top files, the blob directories, then
// each blob from its verified open file.
func writeArchive(w io.Writer, meta []archiveFile, blobs []v1.Descriptor, files []*layout.VerifiedReader) error {
	tw := tar.NewWriter(w)
	for _, f := range meta {
		if err := writeFile(tw, f.name, f.data); err != nil {
			return err
		}
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(header(d, tar.TypeDir, 0o755, 0)); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
	}
	for i, b := range blobs {
		if err := copyBlob(tw, files[i], b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	return nil
}

// isReferrer tells an artifact manifest attached to an image (what oras-go's
// layout store and other OCI 1.1 tools list in index.json) from an image:
// it has an artifactType.
func isReferrer(d v1.Descriptor) bool {
	return d.MediaType == v1.MediaTypeImageManifest && d.ArtifactType != ""
}

// errReferrer marks a manifest of index.json that is attached to an image
// (it has a subject or an artifactType) rather than an image.
var errReferrer = errors.New("a referrer, not an image")

func countReferrers(ds []v1.Descriptor) int {
	n := 0
	for _, d := range ds {
		if isReferrer(d) {
			n++
		}
	}
	return n
}

// reader reads the images of index.json, each manifest (through the
// walker) and config once however often they are listed.
type reader struct {
	r       *layout.Reader
	w       *layout.Walker
	configs map[digest.Digest]bool
}

// image checks the i-th manifest of index.json and reads it.
func (rd *reader) image(i int, d v1.Descriptor, opts Options) (image, error) {
	what := fmt.Sprintf("%s manifests[%d]", v1.ImageIndexFile, i)
	switch d.MediaType {
	case v1.MediaTypeImageManifest:
	case v1.MediaTypeImageIndex:
		return image{}, fmt.Errorf("%s is an image index (a multi-platform image): docker load takes single images; archive each platform's layout instead", what)
	default:
		return image{}, fmt.Errorf("%s has media type %q, want %q", what, d.MediaType, v1.MediaTypeImageManifest)
	}
	if err := checkDescriptor(d); err != nil {
		return image{}, fmt.Errorf("%s: %w", what, err)
	}
	n, err := rd.w.Read(context.Background(), d, 0)
	if err != nil {
		return image{}, fmt.Errorf("%s: %w", what, err)
	}
	m := *n.Manifest
	if m.Subject != nil || m.ArtifactType != "" {
		return image{}, errReferrer
	}
	if m.SchemaVersion != 2 {
		return image{}, fmt.Errorf("%s: manifest %s: schemaVersion is %d, want 2", what, d.Digest, m.SchemaVersion)
	}
	if m.Config.MediaType != v1.MediaTypeImageConfig {
		return image{}, fmt.Errorf("%s: manifest %s: config media type is %q, want %q", what, d.Digest, m.Config.MediaType, v1.MediaTypeImageConfig)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return image{}, fmt.Errorf("%s: config: %w", what, err)
	}
	if !rd.configs[m.Config.Digest] {
		if err := rd.checkConfig(m); err != nil {
			return image{}, fmt.Errorf("%s: %w", what, err)
		}
		rd.configs[m.Config.Digest] = true
	}
	for j, l := range m.Layers {
		if err := checkDescriptor(l); err != nil {
			return image{}, fmt.Errorf("%s: layer %d: %w", what, j, err)
		}
		// docker load decompresses what it finds (gzip, and zstd since
		// docker 20.10: measured with Debian's 20.10.24), whatever the
		// media type says; podman and skopeo go by the media type.
		if _, err := compress.FromMediaType(l.MediaType); err != nil {
			return image{}, fmt.Errorf("%s: layer %d: %w", what, j, err)
		}
	}

	tag := d.Annotations[v1.AnnotationRefName]
	if opts.Tag != "" {
		tag = opts.Tag
	}
	img := image{desc: d, manifest: m}
	switch {
	case opts.Name != "" && tag == "":
		return image{}, fmt.Errorf("%s has no %s annotation and no tag was given: a name needs a tag", what, v1.AnnotationRefName)
	case opts.Name != "":
		if isFullRef(tag) { // NAME:TAG in ref.name: the name given wins
			tag = tag[strings.LastIndexByte(tag, ':')+1:]
		}
		if !validTag(tag) {
			return image{}, fmt.Errorf("%s: tag %q (annotation %s) is not a valid tag", what, tag, v1.AnnotationRefName)
		}
		img.repoTag = opts.Name + ":" + tag
	case isFullRef(tag):
		// image-spec allows a full reference in ref.name.
		img.repoTag = tag
	}
	return img, nil
}

// checkConfig reads the config of m and checks it against the layers.
func (rd *reader) checkConfig(m v1.Manifest) error {
	data, err := rd.r.ReadBlob(m.Config, layout.MaxConfigSize)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var cfg v1.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("config: blob %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config %s lists %d diff_ids for %d layers", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	return nil
}

func checkDescriptor(d v1.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 blobs are archived", d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("blob %s has a negative size %d", d.Digest, d.Size)
	}
	return nil
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// verified opens the blob d, reads it through to check it, and rewinds it.
func verified(r *layout.Reader, d v1.Descriptor) (*layout.VerifiedReader, error) {
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	v, err := r.OpenVerified(d)
	if err != nil {
		return nil, err
	}
	if err := v.Verify(); err != nil {
		v.Close()
		return nil, err
	}
	if err := v.Rewind(); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// copyBlob copies the verified blob v into the archive, checking it again
// on the way.
func copyBlob(tw *tar.Writer, v *layout.VerifiedReader, d v1.Descriptor) error {
	if err := tw.WriteHeader(header(blobPath(d.Digest), tar.TypeReg, 0o444, d.Size)); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	if _, err := io.Copy(tw, v); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return v.Verify()
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(header(name, tar.TypeReg, 0o444, int64(len(data)))); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	return nil
}

// epoch is every entry's mtime: Unix time 1, as in the Nix store.
var epoch = time.Unix(1, 0).UTC()

// header is the one shape of every entry: USTAR, root-owned, fixed time.
func header(name string, typ byte, mode, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		Size:     size,
		ModTime:  epoch,
		Format:   tar.FormatUSTAR,
	}
}

// The distribution spec's grammar of names and tags: known.json's imageName
// and imageTag shapes, which buildImage and archive.nix check too.
func validName(s string) bool { return options.CheckShape("imageName", "name", s) == nil }
func validTag(s string) bool  { return options.CheckShape("imageTag", "tag", s) == nil }

// isFullRef: ref.name is NAME:TAG rather than a bare tag.
func isFullRef(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || strings.Contains(s[i:], "/") {
		return false
	}
	return validName(s[:i]) && validTag(s[i+1:])
}

// qualify gives NAME:TAG the form containerd stores: registry host first,
// docker.io's official images under library/.
func qualify(ref string) string {
	first, rest, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	if !ok {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + first + "/" + rest
}
