package validate

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	specs "github.com/opencontainers/image-spec/specs-go"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image"
	"github.com/ocitools/ocitools/image/internal/storetest"
)

var (
	pApp           = storetest.Path('a', "app")
	specsVersioned = specs.Versioned{SchemaVersion: 2}
)

// buildImage makes a small valid layout with the real builder.
func buildImage(t testing.TB, compression string, config map[string]any) string {
	t.Helper()
	root := storetest.Make(t, []storetest.File{
		{Path: pApp + "/bin/app", Data: "app", Mode: 0o555},
		{Path: pApp + "/bin/sh", Link: "app"},
		{Path: pApp + "/share/doc", Data: "doc"},
	})
	c, err := derivation.NewClosure([]derivation.PathInfoJSON{{Path: pApp, NarHash: "sha256:" + strings.Repeat("0", 52), NarSize: 1}})
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"name": "app", "tag": "t", "compression": compression}
	if config != nil {
		args["config"] = config
	}
	o, _ := json.Marshal(args)
	out := filepath.Join(t.TempDir(), "layout")
	if err := image.Build(image.Request{Closure: c, Options: o, Out: out, Root: root}); err != nil {
		t.Fatal(err)
	}
	return out
}

func problems(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

func TestValidLayouts(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd", "none"} {
		for _, cfg := range []map[string]any{
			{"Entrypoint": []string{pApp + "/bin/app"}},
			{"Entrypoint": []string{pApp + "/bin/sh"}},
			{"Cmd": []string{"sh"}, "Env": []string{"PATH=/usr/bin:" + pApp + "/bin"}},
			{},
		} {
			dir := buildImage(t, comp, cfg)
			if errs := Layout(dir); len(errs) != 0 {
				t.Errorf("%s %v: %s", comp, cfg, problems(errs))
			}
		}
	}
}

type layoutFiles struct {
	dir      string
	index    v1.Index
	manifest v1.Manifest
	config   v1.Image
}

func load(t *testing.T, dir string) *layoutFiles {
	t.Helper()
	l := &layoutFiles{dir: dir}
	read := func(p string, v any) {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatal(err)
		}
	}
	read("index.json", &l.index)
	read("blobs/sha256/"+l.index.Manifests[0].Digest.Encoded(), &l.manifest)
	read("blobs/sha256/"+l.manifest.Config.Digest.Encoded(), &l.config)
	return l
}

func writeBlob(t testing.TB, dir string, data []byte) v1.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	if err := os.WriteFile(filepath.Join(dir, "blobs/sha256", d.Encoded()), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{Digest: d, Size: int64(len(data))}
}

// save writes config, manifest and index back, each pointing at the new blob.
func (l *layoutFiles) save(t *testing.T) {
	t.Helper()
	cfg, _ := json.Marshal(l.config)
	cd := writeBlob(t, l.dir, cfg)
	l.manifest.Config.Digest, l.manifest.Config.Size = cd.Digest, cd.Size
	m, _ := json.Marshal(l.manifest)
	md := writeBlob(t, l.dir, m)
	l.index.Manifests[0].Digest, l.index.Manifests[0].Size = md.Digest, md.Size
	idx, _ := json.Marshal(l.index)
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
}

func uncompressedTar(t *testing.T, entries []tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestProblems(t *testing.T) {
	cfg := map[string]any{"Entrypoint": []string{pApp + "/bin/app"}}
	tests := []struct {
		name   string
		comp   string
		tamper func(t *testing.T, l *layoutFiles)
		want   string
	}{
		{"layer blob changed", "gzip", func(t *testing.T, l *layoutFiles) {
			p := filepath.Join(l.dir, "blobs/sha256", l.manifest.Layers[0].Digest.Encoded())
			data, _ := os.ReadFile(p)
			data[len(data)-10] ^= 0xff
			os.WriteFile(p, data, 0o644)
		}, "digest"},
		{"layer blob missing", "zstd", func(t *testing.T, l *layoutFiles) {
			os.Remove(filepath.Join(l.dir, "blobs/sha256", l.manifest.Layers[0].Digest.Encoded()))
		}, "is missing from"},
		{"layer size wrong", "none", func(t *testing.T, l *layoutFiles) {
			l.manifest.Layers[0].Size++
			l.save(t)
		}, "its descriptor declares"},
		{"diff_id wrong", "gzip", func(t *testing.T, l *layoutFiles) {
			l.config.RootFS.DiffIDs[0] = digest.FromString("x")
			l.save(t)
		}, "diff_ids[0]"},
		{"diff_id missing", "gzip", func(t *testing.T, l *layoutFiles) {
			l.config.RootFS.DiffIDs = []digest.Digest{}
			l.save(t)
		}, "0 diff_ids for 2 layers"},
		{"entrypoint missing", "gzip", func(t *testing.T, l *layoutFiles) {
			l.config.Config.Entrypoint = []string{pApp + "/bin/nope"}
			l.save(t)
		}, "not an executable in the image"},
		{"entrypoint not executable", "gzip", func(t *testing.T, l *layoutFiles) {
			l.config.Config.Entrypoint = []string{pApp + "/share/doc"}
			l.save(t)
		}, "not executable"},
		{"entrypoint not in PATH", "gzip", func(t *testing.T, l *layoutFiles) {
			l.config.Config.Entrypoint = []string{"app"}
			l.save(t)
		}, "not an executable in the image"},
		{"manifest schema", "gzip", func(t *testing.T, l *layoutFiles) {
			l.manifest.SchemaVersion = 1
			l.save(t)
		}, "schema"},
		{"config schema", "gzip", func(t *testing.T, l *layoutFiles) {
			l.config.RootFS.Type = "nope"
			l.save(t)
		}, "rootfs"},
		{"escaping tar entry", "none", func(t *testing.T, l *layoutFiles) {
			data := uncompressedTar(t, []tar.Header{{Name: "../../etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}})
			d := writeBlob(t, l.dir, data)
			l.manifest.Layers[0].Digest, l.manifest.Layers[0].Size = d.Digest, d.Size
			l.config.RootFS.DiffIDs[0] = d.Digest
			l.save(t)
		}, "escape the root"},
		{"blob symlink to another file", "none", func(t *testing.T, l *layoutFiles) {
			p := filepath.Join(l.dir, "blobs/sha256", l.manifest.Layers[0].Digest.Encoded())
			os.Remove(p)
			os.Symlink("/etc/passwd", p)
		}, "its descriptor declares"},
		{"index not JSON", "gzip", func(t *testing.T, l *layoutFiles) {
			os.WriteFile(filepath.Join(l.dir, "index.json"), []byte("{"), 0o644)
		}, "index.json"},
		{"digest with a path", "gzip", func(t *testing.T, l *layoutFiles) {
			l.index.Manifests[0].Digest = "sha256:../../../etc/passwd"
			idx, _ := json.Marshal(l.index)
			os.WriteFile(filepath.Join(l.dir, "index.json"), idx, 0o644)
		}, "index.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := load(t, buildImage(t, tt.comp, cfg))
			tt.tamper(t, l)
			errs := Layout(l.dir)
			if len(errs) == 0 || !strings.Contains(problems(errs), tt.want) {
				t.Errorf("got %q, want a problem with %q", problems(errs), tt.want)
			}
		})
	}
}

func TestIsLayout(t *testing.T) {
	if IsLayout(t.TempDir()) {
		t.Error("an empty directory is a layout")
	}
	if !IsLayout(buildImage(t, "none", nil)) {
		t.Error("a built layout is not")
	}
}

// FuzzTarEntries: whatever the layer holds, the tree never panics and never
// keeps a name outside the root.
func FuzzTarEntries(f *testing.F) {
	f.Add("nix/store/x/bin/sh", byte(tar.TypeReg), "", "x")
	f.Add("a/.wh.b", byte(tar.TypeReg), "", "a/b")
	f.Add("a/.wh..wh..opq", byte(tar.TypeReg), "", "/")
	f.Add("bin", byte(tar.TypeSymlink), "../../..", "bin/sh")
	f.Add("l", byte(tar.TypeLink), "../x", "l")
	f.Fuzz(func(t *testing.T, name string, typ byte, link, prog string) {
		tr := newTree(1000)
		_ = tr.add(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o755})
		_ = tr.add(&tar.Header{Name: name, Typeflag: typ, Linkname: link, Mode: 0o755})
		for k := range tr.nodes {
			if !strings.HasPrefix(k, "/") || strings.Contains(k, "/../") || strings.HasSuffix(k, "/..") {
				t.Fatalf("kept %q", k)
			}
		}
		_ = tr.checkProgram(v1.ImageConfig{Entrypoint: []string{prog}})
	})
}

// FuzzLayoutJSON: any manifest (and the config it names, when it is one of
// the layout's blobs) gives problems, never a panic or a read outside the
// layout.
func FuzzLayoutJSON(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2}`), int64(-1))
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":1},"layers":[]}`), int64(0))
	f.Fuzz(func(t *testing.T, manifest []byte, sizeDelta int64) {
		d := t.TempDir()
		if err := os.MkdirAll(filepath.Join(d, "blobs/sha256"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		md := writeBlob(t, d, manifest)
		idx, _ := json.Marshal(v1.Index{Versioned: specsVersioned, Manifests: []v1.Descriptor{{MediaType: v1.MediaTypeImageManifest, Digest: md.Digest, Size: md.Size + sizeDelta}}})
		os.WriteFile(filepath.Join(d, "index.json"), idx, 0o644)
		_ = Layout(d)
	})
}

// Blobs that are symlinks to the same bytes elsewhere (a buildIndex layout
// links to its images' blobs in the store) are valid: the digest check is
// what makes them trusted.
func TestSymlinkedBlobs(t *testing.T) {
	l := load(t, buildImage(t, "gzip", map[string]any{"Entrypoint": []string{pApp + "/bin/app"}}))
	elsewhere := t.TempDir()
	blobs := filepath.Join(l.dir, "blobs/sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil || len(ents) == 0 {
		t.Fatalf("blobs: %v, %v", ents, err)
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(blobs, e.Name()), filepath.Join(elsewhere, e.Name())); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(elsewhere, e.Name()), filepath.Join(blobs, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if errs := Layout(l.dir); len(errs) != 0 {
		t.Errorf("layout with symlinked blobs: %s", problems(errs))
	}
}

// A FIFO where a blob should be is reported, without waiting for a writer.
func TestFIFOBlob(t *testing.T) {
	l := load(t, buildImage(t, "gzip", nil))
	for _, d := range []digest.Digest{l.manifest.Layers[0].Digest, l.index.Manifests[0].Digest} {
		p := filepath.Join(l.dir, "blobs/sha256", d.Encoded())
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		errs := Layout(l.dir)
		if !strings.Contains(problems(errs), "not a regular file") {
			t.Errorf("FIFO %s: %q", d, problems(errs))
		}
	}
}

// A layout whose index.json points at an image index (a multi-platform
// image) is checked through it, down to each manifest's layers.
func TestNestedIndex(t *testing.T) {
	l := load(t, buildImage(t, "gzip", map[string]any{"Entrypoint": []string{pApp + "/bin/app"}}))
	inner := l.index
	data, _ := json.Marshal(inner)
	d := writeBlob(t, l.dir, data)
	outer := v1.Index{Versioned: specsVersioned, MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{{MediaType: v1.MediaTypeImageIndex, Digest: d.Digest, Size: d.Size}}}
	data, _ = json.Marshal(outer)
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := Layout(l.dir); len(errs) != 0 {
		t.Fatalf("nested index: %s", problems(errs))
	}
	// A broken layer below the nested index is still found.
	if err := os.Remove(filepath.Join(l.dir, "blobs/sha256", l.manifest.Layers[0].Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	if errs := Layout(l.dir); !strings.Contains(problems(errs), "is missing from") {
		t.Errorf("missing layer under a nested index: %q", problems(errs))
	}
}
