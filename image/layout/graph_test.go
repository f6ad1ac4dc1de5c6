package layout_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/image/layout/layouttest"
)

// image writes a one-image layout for arch, tagged v1.
func image(t *testing.T, dir, arch string, layers ...string) v1.Descriptor {
	t.Helper()
	var bs [][]byte
	for _, l := range layers {
		bs = append(bs, []byte(l))
	}
	md := layouttest.Must(layouttest.Image(dir, "linux", arch, bs...))
	md.Platform = nil
	md.Annotations = map[string]string{v1.AnnotationRefName: "v1"}
	if err := layouttest.WriteTop(dir, md); err != nil {
		t.Fatal(err)
	}
	return md
}

// countingReader counts what a walk reads.
func countingReader(dir string, n *int) *layout.Walker {
	r := &layout.Reader{Dir: dir}
	return layout.NewWalker(func(ctx context.Context, d v1.Descriptor) ([]byte, error) {
		*n++
		return r.Fetch(ctx, d)
	})
}

func TestWalkAndVerify(t *testing.T) {
	dir := t.TempDir()
	root := image(t, dir, "amd64", "layer one", "layer two", "layer one")
	r := layouttest.Must(layout.Open(dir))
	g := layouttest.Must(r.Walk(context.Background(), root))
	if len(g.Blobs) != 3 || len(g.Nodes) != 1 { // config + 2 distinct layers
		t.Fatalf("graph: %d blobs, %d nodes", len(g.Blobs), len(g.Nodes))
	}
	for _, b := range g.Blobs {
		if err := r.VerifyBlob(b); err != nil {
			t.Error(err)
		}
	}
	// Same size, other bytes: refused, naming the blob.
	layer := g.Blobs[1]
	p := layouttest.Must(r.BlobPath(layer.Digest))
	_ = os.WriteFile(p, []byte(strings.ToUpper("layer one")), 0o644)
	if err := r.VerifyBlob(layer); err == nil || !strings.Contains(err.Error(), layer.Digest.String()) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("tampered blob: %v", err)
	}
	_ = os.WriteFile(p, []byte("short"), 0o644)
	if err := r.VerifyBlob(layer); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("truncated blob: %v", err)
	}
	_ = os.Remove(p)
	if err := r.VerifyBlob(layer); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing blob: %v", err)
	}
	// A tampered manifest is caught when it is read.
	mp := layouttest.Must(r.BlobPath(root.Digest))
	data := layouttest.Must(os.ReadFile(mp))
	data[len(data)-2] = ' '
	_ = os.WriteFile(mp, data, 0o644)
	if _, err := r.Walk(context.Background(), root); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("tampered manifest: %v", err)
	}
}

// A graph that fans out (k indexes each listing the same k indexes, three
// levels) is read once per distinct digest, not once per path.
func TestWalkFanOutIsLinear(t *testing.T) {
	dir := t.TempDir()
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "s390x", []byte("x")))
	const k = 40
	if err := layouttest.FanOut(dir, k, 3, leaf); err != nil {
		t.Fatal(err)
	}
	idx := layouttest.Must(layouttest.Must(layout.Open(dir)).Index())
	n := 0
	g := layouttest.Must(countingReader(dir, &n).Walk(context.Background(), idx.Manifests[0]))
	if want := 3*k + 2; n != want || len(g.Nodes) != want || len(g.Blobs) != 2 {
		t.Errorf("%d reads, %d nodes, %d blobs; want %d reads and nodes, 2 blobs", n, len(g.Nodes), len(g.Blobs), want)
	}
	if g.Nodes[len(g.Nodes)-1].Desc.Digest != idx.Manifests[0].Digest {
		t.Error("the root is not the last node")
	}
}

func TestWalkBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("depth", func(t *testing.T) {
		dir := t.TempDir()
		leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", []byte("x")))
		if err := layouttest.Nested(dir, layout.MaxDepth+1, leaf); err != nil {
			t.Fatal(err)
		}
		r := layouttest.Must(layout.Open(dir))
		_, err := r.Walk(ctx, layouttest.Must(r.Index()).Manifests[0])
		if err == nil || !strings.Contains(err.Error(), "nested too deep") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("descriptors", func(t *testing.T) {
		// One manifest listed 25,000 times (what fits in one index) is
		// read once; three such indexes list more descriptors than a walk
		// reads.
		dir := t.TempDir()
		leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", []byte("x")))
		leaf.Platform = nil
		many := make([]v1.Descriptor, 25000)
		for i := range many {
			many[i] = leaf
		}
		sub := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageIndex, layouttest.Index(many...)))
		n := 0
		if _, err := countingReader(dir, &n).Walk(ctx, sub); err != nil || n != 2 {
			t.Errorf("%d reads: %v", n, err)
		}
		var subs []v1.Descriptor
		for i := 0; i < 3; i++ {
			idx := layouttest.Index(many...)
			idx.Annotations = map[string]string{"i": fmt.Sprint(i)}
			subs = append(subs, layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageIndex, idx)))
		}
		root := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageIndex, layouttest.Index(subs...)))
		n = 0
		_, err := countingReader(dir, &n).Walk(ctx, root)
		if err == nil || !strings.Contains(err.Error(), "more than 65536 descriptors") || n != 5 {
			t.Errorf("%d reads: %v", n, err)
		}
	})
	t.Run("config size", func(t *testing.T) {
		dir := t.TempDir()
		md := layouttest.Must(layouttest.Image(dir, "linux", "amd64"))
		r := &layout.Reader{Dir: dir}
		data := layouttest.Must(r.Fetch(ctx, md))
		_, m, err := layout.Parse(md.MediaType, data)
		if err != nil {
			t.Fatal(err)
		}
		m.Config.Size = layout.MaxConfigSize + 1
		huge := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageManifest, m))
		if _, err := r.Walk(ctx, huge); err == nil || !strings.Contains(err.Error(), "more than the 16777216 allowed for an image config") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("media type", func(t *testing.T) {
		dir := t.TempDir()
		d := layouttest.Must(layouttest.Put(dir, "text/plain", []byte("x")))
		if _, err := (&layout.Reader{Dir: dir}).Walk(ctx, d); err == nil || !strings.Contains(err.Error(), `"text/plain"`) {
			t.Errorf("got %v", err)
		}
	})
}

// The first error below an index stops the walk, naming the child.
func TestWalkStopsAtFirstChildError(t *testing.T) {
	dir := t.TempDir()
	a := layouttest.Must(layouttest.Image(dir, "linux", "amd64", []byte("a")))
	b := layouttest.Must(layouttest.Image(dir, "linux", "arm64", []byte("b")))
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", a.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	root := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageIndex, layouttest.Index(a, b)))
	n := 0
	_, err := countingReader(dir, &n).Walk(context.Background(), root)
	if err == nil || !strings.Contains(err.Error(), a.Digest.String()) || n != 2 {
		t.Errorf("%d reads: %v", n, err)
	}
}

func TestBuildIndex(t *testing.T) {
	tmp := t.TempDir()
	amd, arm := filepath.Join(tmp, "amd"), filepath.Join(tmp, "arm")
	ra := image(t, amd, "amd64", "shared", "amd app")
	rb := image(t, arm, "arm64", "shared", "arm app")
	out := filepath.Join(tmp, "idx")
	if err := layout.BuildIndex(out, "multi", []string{amd, arm}); err != nil {
		t.Fatal(err)
	}
	r := layouttest.Must(layout.Open(out))
	root := layouttest.Must(layout.Root(out, layouttest.Must(r.Index()), ""))
	if root.Annotations[v1.AnnotationRefName] != "multi" || root.MediaType != v1.MediaTypeImageIndex {
		t.Errorf("index.json root: %+v", root)
	}
	g := layouttest.Must(r.Walk(context.Background(), root))
	// Children first, the index last; 2 configs + 3 distinct layers.
	if len(g.Nodes) != 3 || g.Nodes[2].Desc.Digest != root.Digest || len(g.Blobs) != 5 {
		t.Fatalf("graph: %d nodes, %d blobs", len(g.Nodes), len(g.Blobs))
	}
	idx := g.Nodes[2].Index
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
		if err := r.VerifyBlob(b); err != nil {
			t.Error(err)
		}
	}
	if err := layout.BuildIndex(filepath.Join(tmp, "dup"), "x", []string{amd, amd}); err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("two images of one platform: %v", err)
	}
	if err := layout.BuildIndex(filepath.Join(tmp, "nest"), "x", []string{out}); err == nil || !strings.Contains(err.Error(), "exactly one image manifest") {
		t.Errorf("an index as an image: %v", err)
	}
}

// Copy copies through the verified sink: a tampered layer leaves nothing.
func TestCopy(t *testing.T) {
	tmp := t.TempDir()
	src, dst := filepath.Join(tmp, "src"), filepath.Join(tmp, "dst")
	md := image(t, src, "amd64", "layer")
	if err := layout.Copy(src, dst, "v2"); err != nil {
		t.Fatal(err)
	}
	r := layouttest.Must(layout.Open(dst))
	root := layouttest.Must(r.Index()).Manifests[0]
	if root.Digest != md.Digest || root.Annotations[v1.AnnotationRefName] != "v2" {
		t.Errorf("copied root %+v", root)
	}
	g := layouttest.Must(r.Walk(context.Background(), root))
	for _, b := range g.Blobs {
		if err := r.VerifyBlob(b); err != nil {
			t.Error(err)
		}
	}
	p := layouttest.Must(r.BlobPath(g.Blobs[1].Digest))
	_ = os.WriteFile(filepath.Join(src, "blobs", "sha256", filepath.Base(p)), []byte("LAYER"), 0o644)
	dst2 := filepath.Join(tmp, "dst2")
	if err := layout.Copy(src, dst2, ""); err == nil || !strings.Contains(err.Error(), "got content with digest") {
		t.Errorf("tampered copy: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, ".dst2*")); len(left) > 0 || fileExists(dst2) {
		t.Errorf("left %v", left)
	}
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

// Parse takes any bytes: an error or a manifest or index whose descriptors
// are all valid (so that no digest names a path outside blobs/), never a
// panic.
func FuzzParse(f *testing.F) {
	f.Add(true, []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":1}]}`))
	f.Add(false, []byte(`{"schemaVersion":2,"config":{"digest":"sha256:`+strings.Repeat("b", 64)+`","size":2},"layers":[{"digest":"sha256:../../etc","size":1}]}`))
	f.Fuzz(func(t *testing.T, index bool, data []byte) {
		mt := v1.MediaTypeImageManifest
		if index {
			mt = v1.MediaTypeImageIndex
		}
		idx, m, err := layout.Parse(mt, data)
		if err != nil {
			return
		}
		var ds []v1.Descriptor
		if idx != nil {
			ds = idx.Manifests
		} else {
			ds = append([]v1.Descriptor{m.Config}, m.Layers...)
			if m.Config.Size > layout.MaxConfigSize {
				t.Errorf("config of %d bytes accepted", m.Config.Size)
			}
		}
		for _, d := range ds {
			if d.Digest.Validate() != nil || d.Size < 0 {
				t.Errorf("descriptor %+v accepted", d)
			}
		}
	})
}
