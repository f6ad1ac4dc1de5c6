package e2e

// Hostile image graphs and a hostile registry (issue 19 items 1, 3, 7, 8):
// crafted layouts that fan out, nest or list one manifest thousands of times,
// and a small registry served from the test on 127.0.0.1
// (registrytest.Layout) that counts what it is asked for and lies about sizes
// and upload locations. Each walk must cost one read per distinct digest and
// stop at the first error.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout/layouttest"
	"github.com/ocitools/ocitools/registry/registrytest"
)

// emptyTar is a layer with no entries: the two zero blocks.
var emptyTar = make([]byte, 1024)

// bounded runs ocitools with a deadline and says how long it took; its
// standard output and error are kept apart.
func bounded(t *testing.T, limit time.Duration, env []string, args ...string) (stdout, stderr string, took time.Duration, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, ocitoolsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err = cmd.Run()
	took = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("ocitools %v still running after %s", args, limit)
	}
	return o.String(), e.String(), took, err
}

// The walks are linear: a graph that fans out (k indexes each listing the
// same k indexes, three levels: k^3 paths, 3k+2 distinct indexes) costs one
// read per digest in unpack, run, validate and archive. Before: unpack of
// k=50 took 4.0 s here (15.6 s on the machine of issue 19; k^3 grows eightfold
// at k=100), validate of k=60 47 s, and 89 s and 368 MiB when the leaf was
// broken (216,000 problems). After: well under a second each. The bound
// (graphBound) only tells linear from k^3 with room for a loaded machine.
func TestAdversarialGraphFanOut(t *testing.T) {
	const graphBound = 15 * time.Second
	requireE2E(t)
	tmp := t.TempDir()
	other := filepath.Join(tmp, "other")
	leaf := layouttest.Must(layouttest.Image(other, "linux", "s390x", emptyTar))
	must(t, layouttest.FanOut(other, 100, 3, leaf))
	for _, cmd := range [][]string{
		{"unpack", other, filepath.Join(tmp, "bundle")},
		{"run", other},
	} {
		_, stderr, took, err := bounded(t, time.Minute, nil, cmd...)
		if err == nil || !strings.Contains(stderr, "no image for platform") || took > graphBound {
			t.Errorf("%s of a fan-out: %v after %s\n%s", cmd[0], err, took, stderr)
		}
	}
	if _, err := os.Lstat(filepath.Join(tmp, "bundle")); err == nil {
		t.Error("unpack left a bundle")
	}

	valid := filepath.Join(tmp, "valid")
	leaf = layouttest.Must(layouttest.Image(valid, "linux", "amd64", emptyTar))
	must(t, layouttest.FanOut(valid, 60, 3, leaf))
	stdout, stderr, took, err := bounded(t, time.Minute, nil, "validate", valid)
	if err != nil || took > graphBound {
		t.Errorf("validate of a valid fan-out: %v after %s\n%s%s", err, took, stdout, stderr)
	}
	layer := layouttest.Must(layouttest.Put(t.TempDir(), v1.MediaTypeImageLayer, emptyTar))
	must(t, os.Remove(filepath.Join(valid, "blobs", "sha256", layer.Digest.Encoded())))
	stdout, stderr, took, err = bounded(t, time.Minute, nil, "validate", valid)
	if err == nil || !strings.Contains(stderr, "1 problem(s)") || took > graphBound {
		t.Errorf("validate of a fan-out with a missing layer: %v after %s\n%.2000s%.2000s", err, took, stdout, stderr)
	}
}

// An index nested deeper than any walk reads says so, instead of "no image
// for linux/amd64 (it has linux/amd64)".
func TestAdversarialGraphNestedTooDeep(t *testing.T) {
	requireE2E(t)
	dir := filepath.Join(t.TempDir(), "deep")
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", emptyTar))
	must(t, layouttest.Nested(dir, 6, leaf))
	_, stderr, _, err := bounded(t, time.Minute, nil, "unpack", "--platform", "linux/amd64", dir, filepath.Join(t.TempDir(), "b"))
	if err == nil || !strings.Contains(stderr, "nested too deep") {
		t.Errorf("unpack: %v\n%s", err, stderr)
	}
	_, stderr, _, err = bounded(t, time.Minute, nil, "validate", dir)
	if err == nil || !strings.Contains(stderr, "nested too deep") {
		t.Errorf("validate: %v\n%s", err, stderr)
	}
}

// archive reads a manifest listed 25,000 times once, and `archive LAYOUT -`
// verifies every blob before it writes a byte: a tampered layer never
// reaches the stream (copyToDockerDaemon pipes it into docker load).
func TestAdversarialArchive(t *testing.T) {
	requireE2E(t)
	dir := filepath.Join(t.TempDir(), "img")
	md := layouttest.Must(layouttest.Image(dir, "linux", "amd64", emptyTar, []byte(strings.Repeat("layer two", 1000))))
	md.Platform = nil // 25,000 descriptors then fit in index.json's 4 MiB
	many := make([]v1.Descriptor, 25000)
	for i := range many {
		many[i] = md
	}
	must(t, layouttest.WriteTop(dir, many...))
	stdout, stderr, took, err := bounded(t, time.Minute, nil, "archive", "--oci-only", dir, "-")
	if err != nil || took > 10*time.Second || len(stdout) == 0 {
		t.Errorf("archive of one manifest listed 25,000 times: %v after %s, %d bytes\n%s", err, took, len(stdout), stderr)
	}

	must(t, layouttest.WriteTop(dir, md))
	p := filepath.Join(dir, "blobs", "sha256", layouttest.Must(layouttest.Put(t.TempDir(), "", []byte(strings.Repeat("layer two", 1000)))).Digest.Encoded())
	data := layouttest.Must(os.ReadFile(p))
	data[len(data)-1] ^= 1 // same size, other bytes: found only by hashing
	must(t, os.Remove(p))
	must(t, os.WriteFile(p, data, 0o444))
	stdout, stderr, _, err = bounded(t, time.Minute, nil, "archive", dir, "-")
	if err == nil || len(stdout) != 0 || !strings.Contains(stderr, "does not match its digest") {
		t.Errorf("archive of a tampered layout to a pipe: %v, %d bytes written\n%s", err, len(stdout), stderr)
	}
}

// pullFrom pulls REPO:TAG from r into a new directory.
func pullFrom(t *testing.T, r *registrytest.Layout, tag string) (string, string, time.Duration, error) {
	dest := filepath.Join(t.TempDir(), "pulled")
	stdout, stderr, took, err := bounded(t, 2*time.Minute, isolatedEnv(t), "pull", "--quiet", "--plain-http", r.Host+"/hostile/app:"+tag, dest)
	if err != nil {
		if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 0 {
			t.Errorf("a failed pull left %v", entries)
		}
	}
	return stdout, stderr, took, err
}

// pull fetches each manifest once however often the graph lists it (25,004
// GETs before for an index listing one manifest 25,000 times), and checks
// limits from the descriptors before fetching any blob.
func TestAdversarialRegistryPull(t *testing.T) {
	requireE2E(t)
	r := registrytest.NewLayout(t)
	dir := t.TempDir()
	md := layouttest.Must(layouttest.Image(dir, "linux", "amd64", emptyTar))
	md.Platform = nil
	many := make([]v1.Descriptor, 25000)
	for i := range many {
		many[i] = md
	}
	dup := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageIndex, layouttest.Index(many...)))
	// A manifest whose config declares more than the config limit, and one
	// whose layer declares more than any disk holds.
	var m v1.Manifest
	must(t, json.Unmarshal(blobOf(t, dir, md), &m))
	m.Config.Size = 17 << 20
	bigConfig := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageManifest, m))
	must(t, json.Unmarshal(blobOf(t, dir, md), &m))
	m.Layers[0].Size = 1 << 50
	bigLayer := layouttest.Must(layouttest.PutJSON(dir, v1.MediaTypeImageManifest, m))
	deep := filepath.Join(t.TempDir(), "deep")
	deepRoot := layouttest.Must(layouttest.Image(deep, "linux", "amd64", emptyTar))
	must(t, layouttest.Nested(deep, 6, deepRoot))
	deepIdx := layouttest.Must(os.ReadFile(filepath.Join(deep, "index.json")))
	var top v1.Index
	must(t, json.Unmarshal(deepIdx, &top))
	fan := filepath.Join(t.TempDir(), "fan")
	fanLeaf := layouttest.Must(layouttest.Image(fan, "linux", "amd64", emptyTar))
	must(t, layouttest.FanOut(fan, 30, 3, fanLeaf))
	var fanTop v1.Index
	must(t, json.Unmarshal(layouttest.Must(os.ReadFile(filepath.Join(fan, "index.json"))), &fanTop))
	r.Load(t, dir, map[string]v1.Descriptor{"dup": dup, "bigconfig": bigConfig, "biglayer": bigLayer, "one": md})
	r.Load(t, deep, map[string]v1.Descriptor{"deep": top.Manifests[0]})
	r.Load(t, fan, map[string]v1.Descriptor{"fan": fanTop.Manifests[0]})

	// Each distinct image also gets one SBOM lookup: the referrers API (this
	// registry has none) and the sha256-<hex> fallback tag, a manifest GET.
	_, stderr, took, err := pullFrom(t, r, "dup")
	if err != nil || r.Count("GET manifests") != 2+1 || r.Count("GET blobs") != 2 || r.Count("GET referrers") != 1 {
		t.Errorf("pull of one manifest listed 25,000 times: %v after %s, %d manifest and %d blob GETs\n%s", err, took, r.Count("GET manifests"), r.Count("GET blobs"), stderr)
	}
	before := r.Count("GET manifests")
	_, stderr, took, err = pullFrom(t, r, "fan")
	if n := r.Count("GET manifests") - before; err != nil || n != 3*30+2+1 || took > 20*time.Second {
		t.Errorf("pull of a fan-out: %v after %s, %d manifest GETs\n%s", err, took, n, stderr)
	}
	blobs := r.Count("GET blobs")
	for tag, want := range map[string]string{
		"bigconfig": "more than the 16777216 allowed for an image config",
		"biglayer":  "nothing was fetched",
		"deep":      "nested too deep",
	} {
		_, stderr, _, err := pullFrom(t, r, tag)
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("pull %s: %v\n%s", tag, err, stderr)
		}
	}
	if n := r.Count("GET blobs") - blobs; n != 0 {
		t.Errorf("%d blobs fetched by pulls refused from their descriptors", n)
	}

	// A blob longer than its descriptor: the message says by how much.
	r.Lie(m.Layers[0].Digest, append(append([]byte{}, emptyTar...), 'x'))
	_, stderr, _, err = pullFrom(t, r, "one")
	if err == nil || !strings.Contains(stderr, "sent more than 1024 bytes") {
		t.Errorf("pull of a blob longer than declared: %v\n%s", err, stderr)
	}
}

// blobOf reads the blob d of the layout dir.
func blobOf(t *testing.T, dir string, d v1.Descriptor) []byte {
	t.Helper()
	return layouttest.Must(os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded())))
}

// push walks a fan-out once (each manifest sent once), and a blob upload
// sent to another host is refused, naming that host.
func TestAdversarialRegistryPush(t *testing.T) {
	requireE2E(t)
	r := registrytest.NewLayout(t)
	dir := filepath.Join(t.TempDir(), "fan")
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", emptyTar))
	must(t, layouttest.FanOut(dir, 40, 3, leaf))
	// The registry has every blob: the push checks each manifest once (the
	// root by its tag) and sends the root.
	r.Load(t, dir, nil)
	_, stderr, took, err := bounded(t, 2*time.Minute, isolatedEnv(t), "push", "--quiet", "--plain-http", dir, r.Host+"/hostile/app:1")
	if heads, puts := r.Count("HEAD manifests"), r.Count("PUT manifests"); err != nil || heads != 3*40+2 || puts != 1 || took > 20*time.Second {
		t.Errorf("push of a fan-out: %v after %s, %d manifest HEADs and %d PUTs\n%s", err, took, heads, puts, stderr)
	}
	// Without the layer, the upload the registry sends to another host is
	// refused, naming it.
	r.Forget(layouttest.Must(layouttest.Put(t.TempDir(), "", emptyTar)).Digest)
	r.UploadLocation("http://upload.attacker.invalid:8080/steal")
	_, stderr, _, err = bounded(t, 2*time.Minute, isolatedEnv(t), "push", "--quiet", "--plain-http", dir, r.Host+"/hostile/app:2")
	if err == nil || !strings.Contains(stderr, "upload.attacker.invalid") {
		t.Errorf("push with an upload Location on another host: %v\n%s", err, stderr)
	}
}
