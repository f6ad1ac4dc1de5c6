// Package unpacktest writes OCI image layouts from layers described in Go, for
// tests of unpacking (including hostile layers no real tool would write).
package unpacktest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Entry is one tar entry. Typeflag 0 means a regular file (or a directory
// when Name ends in "/").
type Entry struct {
	Name     string
	Typeflag byte
	Body     string
	Size     int64 // the header's size when not len(Body) (0: len(Body))
	Linkname string
	Mode     int64 // 0: 0644 for files, 0755 for directories
	UID, GID int
	Devmajor int64
	PAX      map[string]string
	ModTime  time.Time
}

// Layer is one layer: its entries, or Raw bytes as the uncompressed stream.
type Layer struct {
	Entries     []Entry
	Raw         []byte
	Compression string // "", "gzip" or "zstd"
	WrongDiffID bool   // the config lists a diff_id that does not match
}

// Image describes one image of a layout.
type Image struct {
	Layers []Layer
	Config ocispec.ImageConfig
	OS     string // default linux
	Arch   string // default runtime.GOARCH
	Tag    string // ref.name in index.json ("" for none)
	Docker bool   // Docker's schema 2 media types (gzip layers) instead of OCI's
}

// Docker's media types, as registries and skopeo still write them.
const (
	DockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfig   = "application/vnd.docker.container.image.v1+json"
	DockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Tar returns the uncompressed stream of a layer.
func Tar(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.Name, Typeflag: e.Typeflag, Linkname: e.Linkname, Mode: e.Mode,
			Uid: e.UID, Gid: e.GID, Devmajor: e.Devmajor, PAXRecords: e.PAX,
			ModTime: e.ModTime, Format: tar.FormatPAX,
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			if len(e.Name) > 0 && e.Name[len(e.Name)-1] == '/' {
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Compress compresses a layer stream.
func Compress(data []byte, how string) ([]byte, string, error) {
	var buf bytes.Buffer
	switch how {
	case "":
		return data, ocispec.MediaTypeImageLayer, nil
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), ocispec.MediaTypeImageLayerGzip, nil
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			return nil, "", err
		}
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), ocispec.MediaTypeImageLayerZstd, nil
	}
	return nil, "", fmt.Errorf("unknown compression %q", how)
}

// Layout is a layout being written.
type Layout struct {
	Dir   string
	index ocispec.Index
}

// NewLayout creates an empty layout in dir.
func NewLayout(dir string) (*Layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, err
	}
	l := &Layout{Dir: dir}
	l.index.SchemaVersion = 2
	l.index.MediaType = ocispec.MediaTypeImageIndex
	l.index.Manifests = []ocispec.Descriptor{}
	return l, l.writeIndex()
}

// WriteBlob stores data and returns its descriptor.
func (l *Layout) WriteBlob(mediaType string, data []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return d, os.WriteFile(l.BlobPath(d.Digest), data, 0o644)
}

// BlobPath is where a blob lives.
func (l *Layout) BlobPath(d digest.Digest) string {
	return filepath.Join(l.Dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func (l *Layout) writeJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return l.WriteBlob(mediaType, data)
}

// AddImage writes an image's blobs and manifest; with a tag, index.json
// lists it. It returns the manifest's descriptor.
func (l *Layout) AddImage(img Image) (ocispec.Descriptor, error) {
	d, err := l.WriteImage(img)
	if err != nil {
		return d, err
	}
	if img.Tag != "" {
		d.Annotations = map[string]string{ocispec.AnnotationRefName: img.Tag}
	}
	l.index.Manifests = append(l.index.Manifests, d)
	return d, l.writeIndex()
}

// WriteImage writes an image's blobs and manifest without listing it.
func (l *Layout) WriteImage(img Image) (ocispec.Descriptor, error) {
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: img.OS, Architecture: img.Arch},
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	if cfg.OS == "" {
		cfg.OS = "linux"
	}
	if cfg.Architecture == "" {
		cfg.Architecture = runtime.GOARCH
	}
	m := ocispec.Manifest{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{}}
	for _, layer := range img.Layers {
		raw := layer.Raw
		if raw == nil {
			var err error
			if raw, err = Tar(layer.Entries); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
		sum := sha256.Sum256(raw)
		if layer.WrongDiffID {
			sum[0] ^= 0xff
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.NewDigestFromBytes(digest.SHA256, sum[:]))
		comp := layer.Compression
		if img.Docker {
			comp = "gzip"
		}
		blob, mt, err := Compress(raw, comp)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		if img.Docker {
			mt = DockerLayer
		}
		d, err := l.WriteBlob(mt, blob)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		m.Layers = append(m.Layers, d)
	}
	configType, manifestType := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if img.Docker {
		configType, manifestType = DockerConfig, DockerManifest
	}
	cd, err := l.writeJSON(configType, cfg)
	if err != nil {
		return cd, err
	}
	m.Config = cd
	m.MediaType = manifestType
	md, err := l.writeJSON(manifestType, m)
	if err != nil {
		return md, err
	}
	md.Platform = &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture}
	return md, nil
}

// AddImageManifest writes a manifest as it is and lists it under tag.
func (l *Layout) AddImageManifest(m ocispec.Manifest, tag string) (ocispec.Descriptor, error) {
	d, err := l.writeJSON(ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return d, err
	}
	d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	l.index.Manifests = append(l.index.Manifests, d)
	return d, l.writeIndex()
}

// AddIndex writes an image index of the given manifests and lists it in
// index.json under tag.
func (l *Layout) AddIndex(tag string, manifests []ocispec.Descriptor) error {
	idx := ocispec.Index{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	d, err := l.writeJSON(ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return err
	}
	d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	l.index.Manifests = append(l.index.Manifests, d)
	return l.writeIndex()
}

// AddDescriptors lists descriptors in index.json as they are.
func (l *Layout) AddDescriptors(ds ...ocispec.Descriptor) error {
	l.index.Manifests = append(l.index.Manifests, ds...)
	return l.writeIndex()
}

func (l *Layout) writeIndex() error {
	data, err := json.Marshal(l.index)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.Dir, ocispec.ImageIndexFile), data, 0o644)
}

// Write makes a layout in dir holding one image.
func Write(dir string, img Image) (*Layout, error) {
	l, err := NewLayout(dir)
	if err != nil {
		return nil, err
	}
	_, err = l.AddImage(img)
	return l, err
}
