package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
)

// testLayout is a small image layout made for a test, with knobs for the
// ways a layout can be wrong.
type testLayout struct {
	layerType  string // media type of the one layer
	refName    string // index.json's ref.name annotation
	extraBlobs bool   // a blob nothing refers to
}

func writeBlob(t *testing.T, dir string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o444); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// make writes the layout and returns its directory and manifest descriptor.
func (l testLayout) make(t *testing.T) (string, v1.Descriptor) {
	t.Helper()
	dir := t.TempDir()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	body := []byte("hello\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o444, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	diffID := digest.FromBytes(tarBuf.Bytes())
	layer := tarBuf.Bytes()
	if l.layerType == v1.MediaTypeImageLayerGzip {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(layer)
		zw.Close()
		layer = gz.Bytes()
	}
	// zstd layers are not decompressed by the archive: any bytes do.
	layerDesc := v1.Descriptor{MediaType: l.layerType, Digest: writeBlob(t, dir, layer), Size: int64(len(layer))}
	cfg := mustJSON(t, v1.Image{
		Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	cfgDesc := v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: writeBlob(t, dir, cfg), Size: int64(len(cfg))}
	man := mustJSON(t, v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Config: cfgDesc, Layers: []v1.Descriptor{layerDesc}})
	manDesc := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: writeBlob(t, dir, man), Size: int64(len(man))}
	if l.refName != "" {
		manDesc.Annotations = map[string]string{v1.AnnotationRefName: l.refName}
	}
	if l.extraBlobs {
		writeBlob(t, dir, []byte("unreferenced"))
	}
	idx := mustJSON(t, v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{manDesc}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o444); err != nil {
		t.Fatal(err)
	}
	return dir, manDesc
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

func readArchive(t *testing.T, b []byte) []entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var es []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{h, data})
	}
}

func TestWrite(t *testing.T) {
	dir, manDesc := testLayout{layerType: v1.MediaTypeImageLayerGzip, refName: "v1", extraBlobs: true}.make(t)
	var a, b bytes.Buffer
	if err := Write(&a, dir, Options{Name: "example.com/app"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, dir, Options{Name: "example.com/app"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of the same layout differ")
	}
	es := readArchive(t, a.Bytes())
	var names []string
	files := map[string][]byte{}
	for _, e := range es {
		names = append(names, e.hdr.Name)
		files[e.hdr.Name] = e.data
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.ModTime.Unix() != 1 || e.hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: uid %d gid %d mtime %v format %v, want 0 0 1 USTAR", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, e.hdr.ModTime, e.hdr.Format)
		}
	}
	// The manifest, config and layer, not the unreferenced blob.
	if len(names) != 8 {
		t.Fatalf("entries %v, want oci-layout, index.json, manifest.json, 2 directories and 3 blobs", names)
	}
	for i, want := range []string{"oci-layout", "index.json", "manifest.json", "blobs/", "blobs/sha256/", blobPath(manDesc.Digest)} {
		if names[i] != want {
			t.Errorf("entry %d is %s, want %s", i, names[i], want)
		}
	}
	var m v1.Manifest
	if err := json.Unmarshal(files[blobPath(manDesc.Digest)], &m); err != nil {
		t.Fatal(err)
	}
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &docker); err != nil {
		t.Fatal(err)
	}
	if len(docker) != 1 || docker[0].Config != blobPath(m.Config.Digest) ||
		len(docker[0].RepoTags) != 1 || docker[0].RepoTags[0] != "example.com/app:v1" ||
		len(docker[0].Layers) != 1 || docker[0].Layers[0] != blobPath(m.Layers[0].Digest) {
		t.Errorf("manifest.json is %s", files["manifest.json"])
	}
	for _, p := range docker[0].Layers {
		if _, ok := files[p]; !ok {
			t.Errorf("manifest.json names %s, which the archive does not hold", p)
		}
	}
	var idx v1.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if got := idx.Manifests[0].Annotations; got[v1.AnnotationRefName] != "v1" || got[ContainerdNameAnnotation] != "example.com/app:v1" {
		t.Errorf("index.json annotations %v", got)
	}
	if idx.Manifests[0].Digest != manDesc.Digest {
		t.Errorf("index.json names %s, want %s", idx.Manifests[0].Digest, manDesc.Digest)
	}
}

func TestWriteOptions(t *testing.T) {
	tests := []struct {
		name     string
		layout   testLayout
		opts     Options
		repoTags []string
		docker   bool
	}{
		{"no name: unnamed", testLayout{layerType: v1.MediaTypeImageLayerGzip, refName: "v1"}, Options{}, []string{}, true},
		{"full reference in ref.name", testLayout{layerType: v1.MediaTypeImageLayer, refName: "hello:1.0"}, Options{}, []string{"hello:1.0"}, true},
		{"name option over a full reference", testLayout{layerType: v1.MediaTypeImageLayer, refName: "hello:1.0"}, Options{Name: "other"}, []string{"other:1.0"}, true},
		{"tag option wins", testLayout{layerType: v1.MediaTypeImageLayer, refName: "v1"}, Options{Name: "hello", Tag: "v2"}, []string{"hello:v2"}, true},
		{"tag given, no ref.name", testLayout{layerType: v1.MediaTypeImageLayer}, Options{Name: "hello", Tag: "v2"}, []string{"hello:v2"}, true},
		{"zstd", testLayout{layerType: v1.MediaTypeImageLayerZstd, refName: "v1"}, Options{Name: "hello"}, []string{"hello:v1"}, true},
		{"zstd, OCI only", testLayout{layerType: v1.MediaTypeImageLayerZstd, refName: "v1"}, Options{Name: "hello", OCIOnly: true}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := tc.layout.make(t)
			var b bytes.Buffer
			if err := Write(&b, dir, tc.opts); err != nil {
				t.Fatal(err)
			}
			var manifestJSON []byte
			for _, e := range readArchive(t, b.Bytes()) {
				if e.hdr.Name == "manifest.json" {
					manifestJSON = e.data
				}
			}
			if !tc.docker {
				if manifestJSON != nil {
					t.Fatalf("OCI-only archive holds manifest.json")
				}
				return
			}
			var docker []struct{ RepoTags []string }
			if err := json.Unmarshal(manifestJSON, &docker); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(docker[0].RepoTags, ","); got != strings.Join(tc.repoTags, ",") {
				t.Errorf("RepoTags %q, want %q", got, tc.repoTags)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name   string
		layout testLayout
		opts   Options
		breaks func(t *testing.T, dir string, man v1.Descriptor)
		want   []string
	}{
		{name: "unknown layer type", layout: testLayout{layerType: "application/x-tar+xz", refName: "v1"},
			want: []string{"layer 0", "x-tar+xz", "not one this tool reads"}},
		{name: "not a layout", layout: testLayout{layerType: v1.MediaTypeImageLayer},
			breaks: func(t *testing.T, dir string, _ v1.Descriptor) { os.Remove(filepath.Join(dir, "oci-layout")) },
			want:   []string{"not an OCI image layout", "oci-layout"}},
		{name: "tampered layer", layout: testLayout{layerType: v1.MediaTypeImageLayerGzip},
			breaks: func(t *testing.T, dir string, man v1.Descriptor) {
				var m v1.Manifest
				data, _ := os.ReadFile(filepath.Join(dir, blobPath(man.Digest)))
				json.Unmarshal(data, &m)
				p := filepath.Join(dir, blobPath(m.Layers[0].Digest))
				b, _ := os.ReadFile(p)
				b[len(b)-1] ^= 1
				os.Remove(p)
				os.WriteFile(p, b, 0o444)
			},
			want: []string{"does not match its digest"}},
		{name: "missing manifest", layout: testLayout{layerType: v1.MediaTypeImageLayer},
			breaks: func(t *testing.T, dir string, man v1.Descriptor) { os.Remove(filepath.Join(dir, blobPath(man.Digest))) },
			want:   []string{"manifests[0]", "is missing from"}},
		{name: "bad name", layout: testLayout{layerType: v1.MediaTypeImageLayer, refName: "v1"}, opts: Options{Name: "Hello"},
			want: []string{"`name` must be an image name", "lower-case", `not "Hello"`}},
		{name: "bad tag", layout: testLayout{layerType: v1.MediaTypeImageLayer}, opts: Options{Name: "hello", Tag: "-x"},
			want: []string{"`tag` must be a tag", `not "-x"`}},
		{name: "name without tag", layout: testLayout{layerType: v1.MediaTypeImageLayer}, opts: Options{Name: "hello"},
			want: []string{"needs a tag"}},
		{name: "nested index", layout: testLayout{layerType: v1.MediaTypeImageLayer},
			breaks: func(t *testing.T, dir string, man v1.Descriptor) {
				man.MediaType = v1.MediaTypeImageIndex
				idx := mustJSON(t, v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []v1.Descriptor{man}})
				os.Remove(filepath.Join(dir, "index.json"))
				os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o444)
			},
			want: []string{"multi-platform"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, man := tc.layout.make(t)
			if tc.breaks != nil {
				tc.breaks(t, dir, man)
			}
			// Nothing reaches the output of a failed archive: it may be
			// a pipe into docker load.
			var out bytes.Buffer
			err := Write(&out, dir, tc.opts)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if out.Len() != 0 {
				t.Errorf("%d bytes written before the error", out.Len())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestQualify(t *testing.T) {
	for in, want := range map[string]string{
		"hello:1":                 "docker.io/library/hello:1",
		"user/app:1":              "docker.io/user/app:1",
		"example.com/app:1":       "example.com/app:1",
		"localhost/app:1":         "localhost/app:1",
		"127.0.0.1:5000/a/b:v1.2": "127.0.0.1:5000/a/b:v1.2",
	} {
		if got := qualify(in); got != want {
			t.Errorf("qualify(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzIndex: whatever index.json holds, Write returns (no panic, no hang).
func FuzzIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../etc/passwd","size":2,"annotations":{"org.opencontainers.image.ref.name":"a:b"}}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, idx []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
		_ = Write(io.Discard, dir, Options{Name: "fuzz"})
	})
}

// TestGolden: the archive of testdata/layout is these bytes on every machine
// (a change of entry order, header format or JSON encoding shows up here).
func TestGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "testdata/layout", Options{Name: "example.com/app"}); err != nil {
		t.Fatal(err)
	}
	const want = "sha256:a0609668062f7da6a0b3e048565da39817bc2c8dd8c4f7efd44532d7a6b74460"
	if got := digest.FromBytes(b.Bytes()).String(); got != want {
		t.Errorf("archive digest %s, want %s", got, want)
	}
}

// A layout that lists a referrer (here an SBOM attached with oras-go's layout
// store, as OCI 1.1 tools do) is archived without it: index.json and
// manifest.json name the image alone, which podman load needs.
func TestWriteSkipsReferrers(t *testing.T) {
	dir, manDesc := testLayout{layerType: v1.MediaTypeImageLayerGzip, refName: "v1"}.make(t)
	ctx := context.Background()
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	sbomData := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`)
	layer := content.NewDescriptorFromBytes("application/vnd.cyclonedx+json", sbomData)
	if err := store.Push(ctx, layer, bytes.NewReader(sbomData)); err != nil {
		t.Fatal(err)
	}
	subject := v1.Descriptor{MediaType: manDesc.MediaType, Digest: manDesc.Digest, Size: manDesc.Size}
	ref, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.cyclonedx+json",
		oras.PackManifestOptions{Subject: &subject, Layers: []v1.Descriptor{layer}, ManifestAnnotations: map[string]string{v1.AnnotationCreated: "1970-01-01T00:00:01Z"}})
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.Index
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "index.json")), &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("the layout lists %d manifests (%v), want the image and its referrer", len(idx.Manifests), err)
	}
	for _, o := range []Options{{}, {OCIOnly: true}, {Name: "example.com/app", Tag: "v2"}} {
		var buf bytes.Buffer
		if err := Write(&buf, dir, o); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		for _, e := range readArchive(t, buf.Bytes()) {
			switch {
			case e.hdr.Name == "index.json":
				var got v1.Index
				if err := json.Unmarshal(e.data, &got); err != nil || len(got.Manifests) != 1 || got.Manifests[0].Digest != manDesc.Digest {
					t.Errorf("%+v: archived index.json %s", o, e.data)
				}
			case e.hdr.Name == "manifest.json" && strings.Count(string(e.data), `"Config"`) != 1:
				t.Errorf("%+v: manifest.json %s", o, e.data)
			case strings.HasSuffix(e.hdr.Name, ref.Digest.Encoded()) || strings.HasSuffix(e.hdr.Name, layer.Digest.Encoded()):
				t.Errorf("%+v: the archive holds the referrer's blob %s", o, e.hdr.Name)
			}
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
