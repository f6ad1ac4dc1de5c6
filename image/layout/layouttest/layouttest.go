// Package layouttest crafts OCI image layouts for tests, hostile ones too:
// graphs that fan out, nest deeply or list one manifest many times.
package layouttest

import (
	_ "crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Put stores data as a blob of the layout dir (made if needed).
func Put(dir, mt string, data []byte) (v1.Descriptor, error) {
	d := digest.FromBytes(data)
	p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return v1.Descriptor{}, err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}, nil
}

// PutJSON stores v, marshalled, as a blob.
func PutJSON(dir, mt string, v any) (v1.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return Put(dir, mt, data)
}

// WriteTop writes oci-layout and an index.json listing descs.
func WriteTop(dir string, descs ...v1.Descriptor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	data, err := json.Marshal(Index(descs...))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, v1.ImageIndexFile), data, 0o644)
}

// Index is an OCI image index listing descs.
func Index(descs ...v1.Descriptor) v1.Index {
	if descs == nil {
		descs = []v1.Descriptor{}
	}
	return v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: descs}
}

// Image stores an image for os/arch whose layers are uncompressed tars (given
// whole), and returns its manifest's descriptor, with the platform.
func Image(dir, os, arch string, layers ...[]byte) (v1.Descriptor, error) {
	img := v1.Image{Platform: v1.Platform{OS: os, Architecture: arch}, RootFS: v1.RootFS{Type: "layers"}}
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Layers: []v1.Descriptor{}}
	for _, l := range layers {
		d, err := Put(dir, v1.MediaTypeImageLayer, l)
		if err != nil {
			return v1.Descriptor{}, err
		}
		m.Layers = append(m.Layers, d)
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, d.Digest)
	}
	cfg, err := PutJSON(dir, v1.MediaTypeImageConfig, img)
	if err != nil {
		return v1.Descriptor{}, err
	}
	m.Config = cfg
	md, err := PutJSON(dir, v1.MediaTypeImageManifest, m)
	md.Platform = &img.Platform
	return md, err
}

// FanOut writes at dir a layout whose index.json names one index listing k
// indexes; each lists the same k indexes of the next level, levels deep; the
// last level's indexes each list leaf. Paths from the top: k^levels; distinct
// digests: k*levels+1 plus the leaf's.
func FanOut(dir string, k, levels int, leaf v1.Descriptor) error {
	below := []v1.Descriptor{leaf}
	for lv := levels; lv >= 1; lv-- {
		var cur []v1.Descriptor
		for i := 0; i < k; i++ {
			idx := Index(below...)
			idx.Annotations = map[string]string{"level": fmt.Sprint(lv), "i": fmt.Sprint(i)}
			d, err := PutJSON(dir, v1.MediaTypeImageIndex, idx)
			if err != nil {
				return err
			}
			cur = append(cur, d)
		}
		below = cur
	}
	root, err := PutJSON(dir, v1.MediaTypeImageIndex, Index(below...))
	if err != nil {
		return err
	}
	return WriteTop(dir, root)
}

// Nested writes at dir a layout whose index.json lists a chain of depth
// indexes, each listing the next, the last listing leaf. Every index
// descriptor carries leaf's platform, as multi-platform indexes often do.
func Nested(dir string, depth int, leaf v1.Descriptor) error {
	cur := leaf
	for i := 0; i < depth; i++ {
		idx := Index(cur)
		idx.Annotations = map[string]string{"depth": fmt.Sprint(i)}
		d, err := PutJSON(dir, v1.MediaTypeImageIndex, idx)
		if err != nil {
			return err
		}
		d.Platform = leaf.Platform
		cur = d
	}
	return WriteTop(dir, cur)
}

// Must is for set-up steps that do not fail: it panics (failing the test)
// when one does.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
