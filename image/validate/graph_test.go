package validate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout/layouttest"
)

// A graph that fans out (k indexes each listing the same k indexes, three
// levels) is checked once per distinct digest, and a problem it repeats on
// every path is reported once. Before: k=60 took 89 s and 368 MiB for
// 216,000 copies of one problem.
func TestFanOutCheckedOnce(t *testing.T) {
	dir := t.TempDir()
	layer := make([]byte, 1024) // an empty tar
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", layer))
	if err := layouttest.FanOut(dir, 60, 3, leaf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if errs := Layout(dir); len(errs) != 0 {
		t.Errorf("valid fan-out: %s", problems(errs))
	}
	// The layer is gone: one problem.
	d := layouttest.Must(layouttest.Put(t.TempDir(), v1.MediaTypeImageLayer, layer))
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	errs := Layout(dir)
	if len(errs) != 1 || !strings.Contains(problems(errs), "is missing from") {
		t.Errorf("%d problems: %.500s", len(errs), problems(errs))
	}
	// Every path checked was 89 s; linear is well under 1 s. The bound tells
	// them apart even on a loaded machine.
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %s", took)
	}
}

// Problems past MaxProblems are counted, not listed.
func TestProblemsBounded(t *testing.T) {
	dir := t.TempDir()
	var ms []v1.Descriptor
	for i := 0; i < 300; i++ {
		// Distinct manifests, each naming a config that is not there.
		m := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageManifest, map[string]any{
			"schemaVersion": 2, "mediaType": v1.MediaTypeImageManifest, "layers": []any{},
			"config": map[string]any{"mediaType": v1.MediaTypeImageConfig, "size": i, "digest": "sha256:" + strings.Repeat("0", 64)},
		}))
		ms = append(ms, m)
	}
	if err := layouttest.WriteTop(dir, ms...); err != nil {
		t.Fatal(err)
	}
	errs := Layout(dir)
	if len(errs) != MaxProblems+1 || !strings.Contains(errs[MaxProblems].Error(), "and 200 more problems") {
		t.Errorf("%d problems, last %v", len(errs), errs[len(errs)-1])
	}
}

// Docker's uncompressed layer media type, which unpack reads, is read here
// too (one table: image/compress).
func TestDockerUncompressedLayer(t *testing.T) {
	dir := t.TempDir()
	md := layouttest.Must(layouttest.Image(dir, "linux", "amd64", make([]byte, 1024)))
	var m v1.Manifest
	if err := json.Unmarshal(layouttest.Must(os.ReadFile(filepath.Join(dir, "blobs", "sha256", md.Digest.Encoded()))), &m); err != nil {
		t.Fatal(err)
	}
	m.Layers[0].MediaType = "application/vnd.docker.image.rootfs.diff.tar"
	if err := layouttest.WriteTop(dir, layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageManifest, m))); err != nil {
		t.Fatal(err)
	}
	if errs := Layout(dir); len(errs) != 0 {
		t.Errorf("problems: %s", problems(errs))
	}
}
