package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocitools/ocitools/sbom"
)

// On Debian's docker-registry 2.8, which has no referrers API, push attaches
// the image's SBOM through the sha256-<hex> tag fallback; ocitools sbom and
// pull read it back; oras-go's own ExtendedCopy finds it there too; a layout
// holding it (as oras-go's layout store writes it) archives for podman load
// with the image alone.
func TestSBOMReferrerFallback(t *testing.T) {
	requireTools(t, "podman")
	r := startRegistry(t, registryOpts{})
	img := consumerImagesFor(t)["gzip"]
	file := filepath.Join(img.layout, sbom.CycloneDXFile)
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := isolatedEnv(t)
	dst := r.addr + "/sbom/app:v1"
	m := r.mark()
	if out := push(t, env, img.layout, dst); !strings.Contains(out, "SBOM attached") {
		t.Errorf("push summary: %s", out)
	}
	// The image manifest, the referrer, and the fallback tag's index.
	if tr := r.traffic(m, "sbom/app"); tr.manifestPuts != 3 {
		t.Errorf("the registry got %d manifest PUTs, want 3 (image, SBOM referrer, sha256-<hex> index)", tr.manifestPuts)
	}
	subject := readImage(t, img.layout).index.Manifests[0].Digest.String()
	resp, err := r.httpClient().Get(r.url() + "/v2/sbom/app/referrers/" + subject)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET referrers answered %d: this registry was expected to have no referrers API (REFERENCE.md)", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", r.url()+"/v2/sbom/app/manifests/sha256-"+strings.TrimPrefix(subject, "sha256:"), nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err = r.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	err = json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	if err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/vnd.cyclonedx+json" {
		t.Fatalf("the sha256-<hex> fallback tag: %v %+v", err, idx)
	}

	for _, arg := range []string{dst, img.layout} {
		out, err := ocitoolsCmdOut(t, env, "sbom", arg)
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("ocitools sbom %s: %v, %d bytes, want the %d of %s", arg, err, len(out), len(want), file)
		}
	}
	if out, err := ocitoolsCmd(t, env, "sbom", r.addr+"/sbom/none:v1"); err == nil || !strings.Contains(out, "not found") && !strings.Contains(out, "no SBOM") {
		t.Errorf("ocitools sbom of a missing image: %v %s", err, out)
	}
	m = r.mark()
	push(t, env, img.layout, dst)
	if tr := r.traffic(m, "sbom/app"); tr.manifestPuts != 0 || len(tr.blobsSent) != 0 {
		t.Errorf("second push: %+v, want no manifest PUT and no blob", tr)
	}
	// Another repository: the image's blobs and the referrer's two ({} and
	// the SBOM) are all mounted, none sent.
	m = r.mark()
	push(t, env, img.layout, r.addr+"/sbom/other:v1")
	_, layers := manifestOf(t, img.layout)
	if tr := r.traffic(m, "sbom/other"); len(tr.blobsSent) != 0 || tr.mounts != len(layers)+1+2 || tr.manifestPuts != 3 {
		t.Errorf("push to another repository: %+v, want %d mounts (%d layers, the config, the referrer's 2 blobs), nothing sent, 3 manifest PUTs", tr, len(layers)+3, len(layers))
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", dst, pulled); err != nil || !strings.Contains(out, "and its SBOM") {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(pulled, sbom.CycloneDXFile)); !bytes.Equal(got, want) {
		t.Errorf("the pulled sbom.cdx.json differs from the built one")
	}

	// oras-go, with the image and what refers to it, into a layout store.
	ctx := context.Background()
	repo, err := remote.NewRepository(r.addr + "/sbom/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	withRef := filepath.Join(t.TempDir(), "with-referrer")
	store, err := oci.New(withRef)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.ExtendedCopy(ctx, repo, "v1", store, "v1", oras.DefaultExtendedCopyOptions); err != nil {
		t.Fatalf("oras ExtendedCopy: %v", err)
	}
	var layoutIdx ocispec.Index
	readJSONFile(t, filepath.Join(withRef, "index.json"), &layoutIdx)
	if len(layoutIdx.Manifests) != 2 {
		t.Fatalf("oras-go's layout lists %d manifests, want the image and its SBOM", len(layoutIdx.Manifests))
	}
	archive := filepath.Join(t.TempDir(), "app.tar")
	if out, err := ocitoolsCmd(t, env, "archive", "--name", "sbom/app", "--tag", "v1", withRef, archive); err != nil {
		t.Fatalf("ocitools archive: %v\n%s", err, out)
	}
	podman := podmanCmd(t)
	if out, errOut, err := podman("load", "--input", archive); err != nil {
		t.Fatalf("podman load of the archive of a layout holding a referrer: %v\n%s%s", err, out, errOut)
	}
}

// ocitoolsCmdOut runs ocitools and returns its standard output alone.
func ocitoolsCmdOut(t *testing.T, env []string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(ocitoolsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("ocitools %v: %s", args, stderr.String())
	}
	return out, err
}

// emptyConfigDigest is the digest of {}, the config of an artifact manifest.
const emptyConfigDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

// referrerManifestPuts is what attaching an SBOM costs in manifest PUTs on
// docker-registry 2.8: the referrer and the sha256-<hex> index.
const referrerManifestPuts = 2

// imageBlobsSent is what the registry got for the image itself: the blobs
// sent minus the SBOM referrer's (the layout's sbom.cdx.json, and {}).
func imageBlobsSent(t *testing.T, tr traffic, layoutDir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(layoutDir, sbom.CycloneDXFile))
	if err != nil {
		t.Fatalf("%s has no SBOM: %v", layoutDir, err)
	}
	sbomDigest := digest.FromBytes(data).String()
	return slices.DeleteFunc(slices.Clone(tr.blobsSent), func(d string) bool { return d == sbomDigest || d == emptyConfigDigest })
}

// A multi-arch index whose images carry SBOMs, through docker-registry 2.8
// (the tag fallback): push attaches each image's; pull writes each back as
// sbom/HEX.cdx.json, the layout build-index makes; a push of the pulled
// index to another repository attaches them there too, and ocitools sbom
// reads each image's by digest.
func TestSBOMIndexRoundTrip(t *testing.T) {
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	tmp := t.TempDir()
	want := map[string]string{}
	var images []string
	for _, arch := range []string{"amd64", "arm64"} {
		dir := filepath.Join(tmp, arch)
		root := testImage(t, dir, arch, "sbom "+arch, "1")
		doc := `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"type":"container","name":"app-` + arch + `"}}}`
		if err := os.WriteFile(filepath.Join(dir, sbom.CycloneDXFile), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		want[root.Digest] = doc
		images = append(images, dir)
	}
	idx := filepath.Join(tmp, "index")
	if out, err := ocitoolsCmd(t, env, append([]string{"build-index", "--out", idx, "--tag", "multi"}, images...)...); err != nil {
		t.Fatalf("build-index: %v\n%s", err, out)
	}
	if out := push(t, env, idx, r.addr+"/idx/app:multi"); !strings.Contains(out, "SBOM attached") {
		t.Errorf("push summary: %s", out)
	}
	pulled := filepath.Join(tmp, "pulled")
	out, err := ocitoolsCmd(t, env, "pull", r.addr+"/idx/app:multi", pulled)
	if err != nil || !strings.Contains(out, "2 SBOMs") {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	for d, doc := range want {
		got, err := os.ReadFile(filepath.Join(pulled, "sbom", strings.TrimPrefix(d, "sha256:")+".cdx.json"))
		if err != nil || string(got) != doc {
			t.Errorf("pulled SBOM of %s: %v %s", d, err, got)
		}
	}
	if out, err := ocitoolsCmd(t, env, "validate", pulled); err != nil {
		t.Errorf("validate of the pulled index: %v\n%s", err, out)
	}
	m := r.mark()
	push(t, env, pulled, r.addr+"/idx/again:multi")
	if tr := r.traffic(m, "idx/again"); len(tr.blobsSent) != 0 {
		t.Errorf("push of the pulled index to another repository sent %v, want every blob mounted", tr.blobsSent)
	}
	for d, doc := range want {
		got, err := ocitoolsCmdOut(t, env, "sbom", r.addr+"/idx/again@"+d)
		if err != nil || string(got) != doc {
			t.Errorf("ocitools sbom of %s in the other repository: %v %s", d, err, got)
		}
	}
}
