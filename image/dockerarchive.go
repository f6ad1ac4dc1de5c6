package image

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/unpack"
)

// A Docker image archive (`docker save`, skopeo's docker-archive:,
// dockerTools.pullImage and buildImage) is a tar, maybe gzip-compressed,
// holding manifest.json (a list of images: Config, RepoTags, Layers, each a
// file name in the tar), each image's config JSON and its layers as tars.
// Its layers become the new image's first layers, compressed with the
// image's own `compression` (the archive's are uncompressed tars); the
// diff_ids in the config are checked against the layer tars before anything
// is written.

// Bounds on what an archive may hold.
const (
	maxArchiveEntries = 1 << 16
	maxArchiveImages  = 1024
	maxArchiveLayers  = 1024
	// maxArchiveSmall bounds the small files (manifest.json, configs, and
	// any other file up to layout.MaxConfigSize) kept in memory in total.
	maxArchiveSmall = 64 << 20
)

// archiveEntry is a regular file of the archive: its size and digest, and
// its bytes when small.
type archiveEntry struct {
	size   int64
	digest digest.Digest
	data   []byte
}

// archiveIndex is what one pass over the archive learns: its regular files
// by name, and the names of everything else (links, directories).
type archiveIndex struct {
	files map[string]*archiveEntry
	other map[string]byte // name -> tar type flag
	kept  int64
}

// dockerManifestEntry is one image of manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// openArchive opens file, gunzipping it when it starts with gzip's magic.
func openArchive(file string) (io.Reader, func() error, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return gz, f.Close, nil
	}
	return br, f.Close, nil
}

// entryName is a tar entry's name as manifest.json refers to it (no "./"),
// refused when it is not a plain relative path inside the archive.
func entryName(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return ".", nil
	}
	if !localName(n) {
		return "", fmt.Errorf("entry %q is not a relative path inside the archive", name)
	}
	return n, nil
}

// localName: a clean relative path with no "..", as every name in a Docker
// archive is.
func localName(n string) bool {
	return n != "" && path.Clean(n) == n && !path.IsAbs(n) && n != ".." && !strings.HasPrefix(n, "../") && !strings.ContainsRune(n, 0)
}

// indexArchive reads the tar r once: it hashes every regular file and keeps
// the small ones, refusing duplicate or escaping names and too many entries.
func indexArchive(r io.Reader) (*archiveIndex, error) {
	idx := &archiveIndex{files: map[string]*archiveEntry{}, other: map[string]byte{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a readable tar (a Docker image archive is a tar, or a gzip-compressed tar; streamLayeredImage's result is a script that writes one): %w", err)
		}
		if n >= maxArchiveEntries {
			return nil, fmt.Errorf("more than %d entries", maxArchiveEntries)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return nil, err
		}
		if idx.files[name] != nil || idx.other[name] != 0 {
			if h.Typeflag == tar.TypeDir && idx.other[name] == tar.TypeDir {
				continue
			}
			return nil, fmt.Errorf("entry %q appears twice", name)
		}
		if h.Typeflag != tar.TypeReg {
			idx.other[name] = h.Typeflag
			continue
		}
		if isSparse(h) {
			// Its size is what reading it yields: a few bytes of archive can
			// claim terabytes of holes, and hashing them would never end.
			return nil, fmt.Errorf("entry %q is a sparse file (GNU sparse PAX records); a Docker image archive holds plain files", name)
		}
		e, err := idx.readEntry(tr, h.Size)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", name, err)
		}
		idx.files[name] = e
	}
	return idx, nil
}

// isSparse reports a regular file stored in GNU's PAX sparse format
// (archive/tar reads its holes back as zeros; the old GNU sparse type keeps
// its own type flag and is never read).
func isSparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// readEntry hashes one regular file, keeping its bytes when it is small
// and the budget allows.
func (idx *archiveIndex) readEntry(r io.Reader, size int64) (*archiveEntry, error) {
	e := &archiveEntry{size: size}
	h := sha256.New()
	if size <= layout.MaxConfigSize && idx.kept+size <= maxArchiveSmall {
		data, err := io.ReadAll(io.TeeReader(r, h))
		if err != nil {
			return nil, err
		}
		e.data = data
		idx.kept += size
	} else if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	e.digest = digest.NewDigest(digest.SHA256, h)
	return e, nil
}

// file is the regular file name refers to, or an error saying what it is.
func (idx *archiveIndex) file(what, name string) (*archiveEntry, error) {
	if !localName(name) {
		return nil, fmt.Errorf("%s %q is not a relative path inside the archive", what, name)
	}
	if e := idx.files[name]; e != nil {
		return e, nil
	}
	if t, ok := idx.other[name]; ok {
		return nil, fmt.Errorf("%s %q is not a regular file in the archive (tar type %q); only regular files are read", what, name, t)
	}
	return nil, fmt.Errorf("%s %q is not in the archive", what, name)
}

// smallFile is the bytes of a small file of the archive.
func (idx *archiveIndex) smallFile(what, name string) ([]byte, error) {
	e, err := idx.file(what, name)
	if err != nil {
		return nil, err
	}
	if e.data == nil {
		return nil, fmt.Errorf("%s %q is %d bytes, over the %d bytes read for it", what, name, e.size, layout.MaxConfigSize)
	}
	return e.data, nil
}

// pickImage parses manifest.json and returns its one image, or the one pick
// names.
func (idx *archiveIndex) pickImage(pick basePick) (*dockerManifestEntry, error) {
	data, err := idx.smallFile("the manifest", "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%w: a Docker image archive has manifest.json at its top (an OCI image layout is a directory)", err)
	}
	var m []dockerManifestEntry
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	switch {
	case len(m) == 0:
		return nil, errors.New("manifest.json lists no image")
	case len(m) > maxArchiveImages:
		return nil, fmt.Errorf("manifest.json lists %d images, over %d", len(m), maxArchiveImages)
	case pick.set():
		refs := make([][]string, len(m))
		for i, e := range m {
			refs[i] = e.RepoTags
		}
		i, err := pick.pick("manifest.json", refs, false)
		if err != nil {
			return nil, err
		}
		m = m[i : i+1]
	case len(m) > 1:
		var tags []string
		for i, e := range m {
			t := strings.Join(e.RepoTags, ", ")
			if t == "" {
				t = "untagged"
			}
			tags = append(tags, fmt.Sprintf("%d: %s", i+1, t))
		}
		return nil, fmt.Errorf("manifest.json lists %d images (%s): pick one with `fromImageName` and `fromImageTag`", len(m), strings.Join(tags, "; "))
	}
	e := &m[0]
	if len(e.Layers) > maxArchiveLayers {
		return nil, fmt.Errorf("manifest.json: %d layers, over %d", len(e.Layers), maxArchiveLayers)
	}
	return e, nil
}

// archiveImage is the one image of an archive, its config read and its
// layers checked against the config's diff_ids.
type archiveImage struct {
	tags   []string
	config imageJSON
	layers []string
}

// checkArchive indexes the archive and checks its image (the one pick
// names).
func checkArchive(r io.Reader, pick basePick) (*archiveImage, error) {
	idx, err := indexArchive(r)
	if err != nil {
		return nil, err
	}
	m, err := idx.pickImage(pick)
	if err != nil {
		return nil, err
	}
	data, err := idx.smallFile("the config", m.Config)
	if err != nil {
		return nil, err
	}
	img := &archiveImage{tags: m.RepoTags, layers: m.Layers}
	if err := json.Unmarshal(data, &img.config); err != nil {
		return nil, fmt.Errorf("config %q: %w", m.Config, err)
	}
	ids := img.config.RootFS.DiffIDs
	if img.config.RootFS.Type != "layers" || len(ids) != len(m.Layers) {
		return nil, fmt.Errorf("config %q: rootfs is type %q with %d diff_ids, but manifest.json lists %d layers; they must be \"layers\" with one diff_id per layer", m.Config, img.config.RootFS.Type, len(ids), len(m.Layers))
	}
	for i, name := range m.Layers {
		e, err := idx.file(fmt.Sprintf("layer %d", i+1), name)
		if err != nil {
			return nil, err
		}
		if e.digest != ids[i] {
			return nil, fmt.Errorf("layer %d %q has digest %s, but the config's diff_id %d is %s", i+1, name, e.digest, i+1, ids[i])
		}
	}
	return img, nil
}

// readDockerArchive reads and checks the Docker image archive file for
// plat (its image pick names); its layers are written by
// writeArchiveLayers.
func readDockerArchive(file string, plat v1.Platform, pick basePick) (*baseImage, error) {
	r, closeFn, err := openArchive(file)
	if err != nil {
		return nil, fmt.Errorf("`fromImage` %s: %w", file, err)
	}
	img, err := checkArchive(r, pick)
	_ = closeFn()
	if err != nil {
		return nil, fmt.Errorf("`fromImage` %s (a Docker image archive): %w", file, err)
	}
	c := img.config.Image
	want := unpack.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}
	got := unpack.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
	if !want.Matches(&c.Platform) {
		return nil, fmt.Errorf("`fromImage` %s is an image for %s, but this image is for %s: set os/arch to %s, or use a base for %s", file, got, want, got, want)
	}
	b := &baseImage{dir: file, config: c, full: img.config.Config, archive: img.layers}
	for i, name := range img.layers {
		b.layers = append(b.layers, baseLayer{diffID: c.RootFS.DiffIDs[i], file: name})
	}
	b.history = baseHistory(c.History, len(b.layers))
	// The base's name: the RepoTag picked, or the first.
	for _, t := range img.tags {
		if !pick.set() || pick.matches(t, false) {
			b.tag = t
			break
		}
	}
	return b, nil
}

// writeArchiveLayers compresses the archive's layers into l with alg, in a
// second pass over the archive, and fills in their descriptors. The bytes
// are checked against the diff_ids again: they are read twice.
func (b *baseImage) writeArchiveLayers(l *layout.Layout, alg compress.Algorithm) error {
	r, closeFn, err := openArchive(b.dir)
	if err != nil {
		return fmt.Errorf("`fromImage` %s: %w", b.dir, err)
	}
	defer func() { _ = closeFn() }()
	done := map[string]compress.Result{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("`fromImage` %s: %w", b.dir, err)
		}
		name, err := entryName(h.Name)
		if err != nil || h.Typeflag != tar.TypeReg || !b.isLayer(name) {
			continue
		}
		if _, ok := done[name]; ok {
			continue
		}
		res, err := writeArchiveLayer(l, alg, tr)
		if err != nil {
			return fmt.Errorf("`fromImage` %s: layer %q: %w", b.dir, name, err)
		}
		done[name] = res
	}
	for i := range b.layers {
		bl := &b.layers[i]
		d, ok := done[bl.file]
		if !ok || d.DiffID != bl.diffID {
			return fmt.Errorf("`fromImage` %s: layer %q changed while it was read (its digest no longer matches diff_id %s)", b.dir, bl.file, bl.diffID)
		}
		bl.desc = v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
	}
	return nil
}

func (b *baseImage) isLayer(name string) bool {
	for _, n := range b.archive {
		if n == name {
			return true
		}
	}
	return false
}

// writeArchiveLayer compresses one layer tar r into a new blob of l.
func writeArchiveLayer(l *layout.Layout, alg compress.Algorithm, r io.Reader) (compress.Result, error) {
	blob, err := l.NewBlob()
	if err != nil {
		return compress.Result{}, err
	}
	res, err := compress.Encode(blob, alg, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	if err != nil {
		blob.Abort()
		return compress.Result{}, err
	}
	return res, blob.Commit(res.Digest)
}
