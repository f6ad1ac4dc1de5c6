package registry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func putBlob(t *testing.T, dir, mt string, data []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
}

func putJSON(t *testing.T, dir, mt string, v any) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return putBlob(t, dir, mt, data)
}

// smallImage writes a layout with one image for arch; layer is shared
// content when the same bytes are given.
func smallImage(t *testing.T, dir, arch string, layers ...string) ocispec.Descriptor {
	t.Helper()
	cfg := putJSON(t, dir, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}})
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
	for _, l := range layers {
		m.Layers = append(m.Layers, putBlob(t, dir, ocispec.MediaTypeImageLayer, []byte(l)))
	}
	md := putJSON(t, dir, ocispec.MediaTypeImageManifest, m)
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	if err := writeLayoutFiles(dir, md); err != nil {
		t.Fatal(err)
	}
	return md
}

func TestWalkAndVerify(t *testing.T) {
	dir := t.TempDir()
	root := smallImage(t, dir, "amd64", "layer one", "layer two", "layer one")
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Root("anything")
	if err != nil || got.Digest != root.Digest {
		t.Fatalf("Root = %v, %v", got, err)
	}
	if PushTag(l, Ref{}) != "v1" || PushTag(l, Ref{Tag: "x"}) != "x" {
		t.Error("PushTag does not take the ref's tag, else the layout's ref.name")
	}
	g, err := l.Walk(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Blobs) != 3 || len(g.Manifests) != 1 { // config + 2 distinct layers
		t.Fatalf("graph: %d blobs, %d manifests", len(g.Blobs), len(g.Manifests))
	}
	for _, b := range g.Blobs {
		if err := l.VerifyBlob(b); err != nil {
			t.Error(err)
		}
	}
	// Same size, other bytes: refused, naming the blob.
	layer := g.Blobs[1]
	p, _ := l.blobPath(layer.Digest)
	_ = os.WriteFile(p, []byte(strings.ToUpper("layer one")), 0o644)
	if err := l.VerifyBlob(layer); err == nil || !strings.Contains(err.Error(), layer.Digest.String()) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("tampered blob: %v", err)
	}
	_ = os.WriteFile(p, []byte("short"), 0o644)
	if err := l.VerifyBlob(layer); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("truncated blob: %v", err)
	}
	_ = os.Remove(p)
	if err := l.VerifyBlob(layer); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing blob: %v", err)
	}
	// A tampered manifest is caught when it is read.
	mp, _ := l.blobPath(root.Digest)
	data, _ := os.ReadFile(mp)
	data[len(data)-2] = ' '
	_ = os.WriteFile(mp, data, 0o644)
	if _, err := l.Walk(root); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("tampered manifest: %v", err)
	}
}

func TestOpenLayoutErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenLayout(dir); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("empty dir: %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"manifests":[{"digest":"sha256:../../etc","size":1}]}`), 0o644)
	if _, err := OpenLayout(dir); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("bad digest: %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"manifests":[]}`), 0o644)
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Root("x"); err == nil {
		t.Error("an empty index.json has a root")
	}
}

func TestBuildIndex(t *testing.T) {
	tmp := t.TempDir()
	amd, arm := filepath.Join(tmp, "amd"), filepath.Join(tmp, "arm")
	ra := smallImage(t, amd, "amd64", "shared", "amd app")
	rb := smallImage(t, arm, "arm64", "shared", "arm app")
	out := filepath.Join(tmp, "idx")
	if err := BuildIndex(out, "multi", []string{amd, arm}); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLayout(out)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := l.Root("")
	if root.Annotations[ocispec.AnnotationRefName] != "multi" || root.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index.json root: %+v", root)
	}
	g, err := l.Walk(root)
	if err != nil {
		t.Fatal(err)
	}
	// Children first, the index last; 2 configs + 3 distinct layers.
	if len(g.Manifests) != 3 || g.Manifests[2].Desc.Digest != root.Digest || len(g.Blobs) != 5 {
		t.Fatalf("graph: %d manifests, %d blobs", len(g.Manifests), len(g.Blobs))
	}
	idx, _ := parseIndex(g.Manifests[2].Data)
	if idx.Manifests[0].Digest != ra.Digest || idx.Manifests[0].Platform.Architecture != "amd64" ||
		idx.Manifests[1].Digest != rb.Digest || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Errorf("index: %+v", idx.Manifests)
	}
	// The image blobs are links, nothing copied.
	fi, err := os.Lstat(filepath.Join(out, "blobs", "sha256", ra.Digest.Encoded()))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("image manifest in the index layout: %v %v", fi, err)
	}
	for _, b := range g.Blobs {
		if err := l.VerifyBlob(b); err != nil {
			t.Error(err)
		}
	}
	if err := BuildIndex(filepath.Join(tmp, "dup"), "x", []string{amd, amd}); err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("two images of one platform: %v", err)
	}
	if err := BuildIndex(filepath.Join(tmp, "nest"), "x", []string{out}); err == nil || !strings.Contains(err.Error(), "exactly one image manifest") {
		t.Errorf("an index as an image: %v", err)
	}
}

func TestBlobCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c", "blob-locations.json")
	c := openBlobCache(p)
	c.add("r:1", "sha256:a", "one")
	c.add("r:1", "sha256:a", "two")
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	// A concurrent writer's records are merged, not lost.
	other := openBlobCache(p)
	other.add("r:1", "sha256:b", "three")
	if err := other.save(); err != nil {
		t.Fatal(err)
	}
	c2 := openBlobCache(p)
	if got := c2.sources("r:1", "sha256:a", "one"); len(got) != 1 || got[0] != "two" {
		t.Errorf("sources of a except one: %v", got)
	}
	if got := c2.sources("r:1", "sha256:b", ""); len(got) != 1 || got[0] != "three" {
		t.Errorf("sources of b: %v", got)
	}
	if got := c2.sources("r:2", "sha256:a", ""); len(got) != 0 {
		t.Errorf("another registry: %v", got)
	}
	// Damaged file: an empty record, and save rewrites it.
	_ = os.WriteFile(p, []byte("garbage"), 0o600)
	c3 := openBlobCache(p)
	if got := c3.sources("r:1", "sha256:a", ""); len(got) != 0 {
		t.Errorf("damaged cache gave %v", got)
	}
	c3.add("r:1", "sha256:c", "x")
	if err := c3.save(); err != nil {
		t.Fatal(err)
	}
	if got := openBlobCache(p).sources("r:1", "sha256:c", ""); len(got) != 1 {
		t.Errorf("after rewrite: %v", got)
	}
}
