package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout/layouttest"
)

func TestPushTag(t *testing.T) {
	dir := t.TempDir()
	md, err := layouttest.Image(dir, "linux", "amd64", []byte("layer"))
	if err != nil {
		t.Fatal(err)
	}
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	if err := layouttest.WriteTop(dir, md); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.Root("anything"); err != nil || got.Digest != md.Digest {
		t.Fatalf("Root = %v, %v", got, err)
	}
	if PushTag(l, Ref{}) != "v1" || PushTag(l, Ref{Tag: "x"}) != "x" {
		t.Error("PushTag does not take the ref's tag, else the layout's ref.name")
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
