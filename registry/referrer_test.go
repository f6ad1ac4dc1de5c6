package registry

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/image/layout/layouttest"
	"github.com/ocitools/ocitools/sbom"
)

// sbomImage writes a layout at dir with one image tagged v1 (layouttest's).
func sbomImage(t *testing.T, dir string) ocispec.Descriptor {
	t.Helper()
	md := layouttest.Must(layouttest.Image(dir, "linux", "amd64", []byte("layer one")))
	md.Platform = nil
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	if err := layouttest.WriteTop(dir, md); err != nil {
		t.Fatal(err)
	}
	return md
}

// minimalSBOM is the smallest document the CycloneDX 1.6 schema accepts.
const minimalSBOM = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`

// A registry with the referrers API (go-containerregistry's, with referrers
// on) gets the SBOM as a referrer of the image through the API, not the tag
// fallback; a second push sends nothing; pull and FetchSBOM read it back.
func TestSBOMReferrerAPI(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	root := sbomImage(t, dir)
	if err := os.WriteFile(filepath.Join(dir, sbom.CycloneDXFile), []byte(minimalSBOM), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := ParseRef(host + "/test/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Cache: "-", PlainHTTP: true}
	ctx := context.Background()
	st, err := Push(ctx, dir, ref, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.SBOMsAttached != 1 || !strings.Contains(st.Summary("pushed"), "SBOM attached") {
		t.Errorf("first push: %s", st.Summary("pushed"))
	}
	// The referrers API lists it; the fallback tag does not exist.
	resp, err := http.Get(srv.URL + "/v2/test/app/referrers/" + root.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	err = json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	if err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("referrers of %s: %v %+v", root.Digest, err, idx)
	}
	resp, err = http.Get(srv.URL + "/v2/test/app/manifests/sha256-" + root.Digest.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the sha256-<hex> fallback tag answers %d with the API present, want 404", resp.StatusCode)
	}
	st, err = Push(ctx, dir, ref, o)
	if err != nil || st.SBOMsAttached != 0 {
		t.Errorf("second push: %v %+v", err, st)
	}

	out := filepath.Join(t.TempDir(), "pulled")
	o.PullSBOM = true
	st, err = Pull(ctx, ref, out, o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, sbom.CycloneDXFile))
	if err != nil || string(got) != minimalSBOM || !strings.Contains(st.Summary("pulled"), "and its SBOM") {
		t.Errorf("pulled SBOM %q, %v; %s", got, err, st.Summary("pulled"))
	}
	// Without PullSBOM (unpack, run, pullImage) there is none.
	o.PullSBOM = false
	plain := filepath.Join(t.TempDir(), "plain")
	if _, err := Pull(ctx, ref, plain, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(plain, sbom.CycloneDXFile)); !os.IsNotExist(err) {
		t.Errorf("a pull without PullSBOM wrote the SBOM: %v", err)
	}
	// The pulled layout pushed elsewhere attaches the same referrer.
	ref2, _ := ParseRef(host + "/test/copy:v1")
	if _, err := Push(ctx, out, ref2, o); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(srv.URL + "/v2/test/copy/referrers/" + root.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var idx2 ocispec.Index
	_ = json.NewDecoder(resp.Body).Decode(&idx2)
	resp.Body.Close()
	if len(idx2.Manifests) != 1 || idx2.Manifests[0].Digest != idx.Manifests[0].Digest {
		t.Errorf("referrer after a round trip %+v, want %s", idx2.Manifests, idx.Manifests[0].Digest)
	}
}

// An SBOM that is not valid CycloneDX is refused before anything is sent;
// one that is a link out of the layout is not read.
func TestSBOMInvalidRefused(t *testing.T) {
	var writes []string
	reg := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writes = append(writes, r.Method+" "+r.URL.Path)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref, err := ParseRef(strings.TrimPrefix(srv.URL, "http://") + "/test/bad:v1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sbomImage(t, dir)
	if err := os.WriteFile(filepath.Join(dir, sbom.CycloneDXFile), []byte(`{"bomFormat":"SPDX"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Cache: "-", PlainHTTP: true}
	if _, err := Push(context.Background(), dir, ref, o); err == nil || !strings.Contains(err.Error(), "CycloneDX 1.6 schema") ||
		!strings.Contains(err.Error(), sbom.CycloneDXFile) || !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("invalid SBOM: %v", err)
	}
	if len(writes) != 0 {
		t.Errorf("the registry got %v before the invalid SBOM was refused", writes)
	}
	if err := os.Remove(filepath.Join(dir, sbom.CycloneDXFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, sbom.CycloneDXFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Push(context.Background(), dir, ref, o); err == nil || len(writes) != 0 {
		t.Errorf("an SBOM that is a symbolic link out of the layout was read: %v, %v", err, writes)
	}
}

// The referrer is a function of the SBOM, the subject and the time given.
func TestSBOMManifestDeterministic(t *testing.T) {
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Size: 10}
	_, a, _, err := sbomManifest(context.Background(), []byte(minimalSBOM), subject, sbom.DefaultCreated)
	if err != nil {
		t.Fatal(err)
	}
	_, b, _, _ := sbomManifest(context.Background(), []byte(minimalSBOM), subject, sbom.DefaultCreated)
	if a.Digest != b.Digest || a.ArtifactType != SBOMArtifactType {
		t.Errorf("%+v\n%+v", a, b)
	}
}

// A multi-arch layout (buildIndex) carries each image's SBOM; push attaches
// each to its image, and FetchSBOM reads them back by image digest.
func TestSBOMIndexPush(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	var images []string
	want := map[digest.Digest]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		dir := filepath.Join(t.TempDir(), arch)
		md := layouttest.Must(layouttest.Image(dir, "linux", arch, []byte("layer "+arch)))
		md.Platform = nil
		if err := layouttest.WriteTop(dir, md); err != nil {
			t.Fatal(err)
		}
		doc := `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"type":"container","name":"` + arch + `"}}}`
		if err := os.WriteFile(filepath.Join(dir, sbom.CycloneDXFile), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		want[md.Digest] = doc
		images = append(images, dir)
	}
	idx := filepath.Join(t.TempDir(), "index")
	if err := layout.BuildIndex(idx, "both", images); err != nil {
		t.Fatal(err)
	}
	ref, _ := ParseRef(host + "/test/multi:both")
	o := Options{Cache: "-", PlainHTTP: true}
	st, err := Push(context.Background(), idx, ref, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.SBOMsAttached != 2 {
		t.Errorf("%d SBOMs attached, want one per image", st.SBOMsAttached)
	}
	repo, err := o.Repository(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	for d, doc := range want {
		got, err := FetchSBOM(context.Background(), repo, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d}, &o)
		if err != nil || string(got) != doc {
			t.Errorf("SBOM of %s: %v %s", d, err, got)
		}
	}

	// Pulled, the index layout holds each image's SBOM where buildIndex
	// puts it, and a push of it elsewhere attaches them again.
	po := o
	po.PullSBOM = true
	pulled := filepath.Join(t.TempDir(), "pulled")
	st, err = Pull(context.Background(), ref, pulled, po)
	if err != nil {
		t.Fatal(err)
	}
	if st.SBOMsAttached != 2 || !strings.Contains(st.Summary("pulled"), "2 SBOMs") {
		t.Errorf("pull of the index: %d SBOMs (%s), want 2", st.SBOMsAttached, st.Summary("pulled"))
	}
	for d, doc := range want {
		if got, err := os.ReadFile(filepath.Join(pulled, sbom.IndexFile(d))); err != nil || string(got) != doc {
			t.Errorf("pulled %s: %v %s", sbom.IndexFile(d), err, got)
		}
	}
	ref2, _ := ParseRef(strings.TrimPrefix(srv.URL, "http://") + "/test/again:both")
	if st, err := Push(context.Background(), pulled, ref2, o); err != nil || st.SBOMsAttached != 2 {
		t.Fatalf("push of the pulled index: %v %+v", err, st)
	}
	repo2, err := o.Repository(context.Background(), ref2)
	if err != nil {
		t.Fatal(err)
	}
	for d, doc := range want {
		got, err := FetchSBOM(context.Background(), repo2, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d}, &o)
		if err != nil || string(got) != doc {
			t.Errorf("SBOM of %s after the round trip: %v %s", d, err, got)
		}
	}
}

// An index whose images have no SBOM pulls without an sbom/ directory.
func TestSBOMIndexPullNone(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	var images []string
	for _, arch := range []string{"amd64", "arm64"} {
		dir := filepath.Join(t.TempDir(), arch)
		md := layouttest.Must(layouttest.Image(dir, "linux", arch, []byte("plain "+arch)))
		md.Platform = nil
		if err := layouttest.WriteTop(dir, md); err != nil {
			t.Fatal(err)
		}
		images = append(images, dir)
	}
	idx := filepath.Join(t.TempDir(), "index")
	if err := layout.BuildIndex(idx, "both", images); err != nil {
		t.Fatal(err)
	}
	ref, _ := ParseRef(strings.TrimPrefix(srv.URL, "http://") + "/test/plain:both")
	o := Options{Cache: "-", PlainHTTP: true}
	if _, err := Push(context.Background(), idx, ref, o); err != nil {
		t.Fatal(err)
	}
	o.PullSBOM = true
	pulled := filepath.Join(t.TempDir(), "pulled")
	st, err := Pull(context.Background(), ref, pulled, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pulled, sbom.IndexDir)); st.SBOMsAttached != 0 || !os.IsNotExist(err) {
		t.Errorf("%d SBOMs, sbom/: %v", st.SBOMsAttached, err)
	}
}
