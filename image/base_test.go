package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/unpack"
	"github.com/ocitools/ocitools/unpack/unpacktest"
)

type (
	ue = unpacktest.Entry
	ul = unpacktest.Layer
)

// baseLayout writes a base image of two layers (the second hides, links and
// replaces what the first holds) in Docker's media types, for amd64.
func baseLayout(t *testing.T, arch string, extra ...ul) (string, []v1.Descriptor) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	layers := append([]ul{
		{Compression: "gzip", Entries: []ue{{Name: "bin/", Mode: 0o755}, {Name: "bin/sh", Body: "#!/bin/sh\n", Mode: 0o755}, {Name: "old/", Mode: 0o755}, {Name: "old/x", Body: "x"}}},
		{Compression: "gzip", Entries: []ue{{Name: ".wh.old"}, {Name: "bin/ln", Typeflag: tar.TypeLink, Linkname: "bin/sh"}}},
	}, extra...)
	l, err := unpacktest.Write(dir, unpacktest.Image{
		Layers: layers, Arch: arch, Docker: true, Tag: "base",
		Config: v1.ImageConfig{
			Env: []string{"PATH=/usr/bin:/bin", "LANG=C"}, Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "true"},
			WorkingDir: "/srv", User: "1000", Labels: map[string]string{"from": "base", "keep": "yes"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	idx := readIndex(t, dir)
	readJSON(t, l.BlobPath(idx.Manifests[0].Digest), &m)
	return dir, m.Layers
}

func readIndex(t *testing.T, dir string) v1.Index {
	var idx v1.Index
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	return idx
}

func TestBuildFromImage(t *testing.T) {
	root := fakeStore(t)
	base, baseLayers := baseLayout(t, "amd64")
	out := build(t, root, appClosure(t), opts(t, map[string]any{
		"fromImage": base, "arch": "amd64",
		"config": map[string]any{"Entrypoint": []string{pApp + "/bin/app"}, "Env": []string{"PATH=" + pApp + "/bin:/bin", "HOME=/root"}, "Labels": map[string]string{"from": "app"}},
	}))
	b := readLayout(t, out)
	if len(b.manifest.Layers) != 2+4+1 || len(b.config.RootFS.DiffIDs) != 7 || len(b.config.History) != 7 {
		t.Fatalf("%d layers, %d diff_ids, %d history entries; want 7 each (base, store, root)", len(b.manifest.Layers), len(b.config.RootFS.DiffIDs), len(b.config.History))
	}
	for i, bl := range baseLayers {
		got := b.manifest.Layers[i]
		if got.Digest != bl.Digest || got.Size != bl.Size || got.MediaType != v1.MediaTypeImageLayerGzip {
			t.Errorf("layer %d: %+v, want the base's %+v as %s", i, got, bl, v1.MediaTypeImageLayerGzip)
		}
		// A link to the base's blob: no second copy.
		p := filepath.Join(out, "blobs/sha256", bl.Digest.Encoded())
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("layer %d: %s is not a symlink (%v)", i, p, err)
		}
	}
	c := b.config.Config
	want := v1.ImageConfig{
		Env:        []string{"PATH=" + pApp + "/bin:/bin:/usr/bin", "LANG=C", "HOME=/root"},
		Entrypoint: []string{pApp + "/bin/app"}, WorkingDir: "/srv", User: "1000",
		Labels: map[string]string{"from": "app", "keep": "yes"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config\n %+v\nwant\n %+v", c, want)
	}
	// Unpacked, the base's whiteout and hard link are applied in order.
	bundle := filepath.Join(t.TempDir(), "bundle")
	if _, err := unpack.Unpack(context.Background(), unpack.Options{Image: out, Bundle: bundle, Platform: unpack.Platform{OS: "linux", Architecture: "amd64"}}); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	if _, err := os.Lstat(filepath.Join(rootfs, "old")); !os.IsNotExist(err) {
		t.Errorf("/old survived the base's whiteout: %v", err)
	}
	a, err1 := os.Stat(filepath.Join(rootfs, "bin/sh"))
	l, err2 := os.Stat(filepath.Join(rootfs, "bin/ln"))
	if err1 != nil || err2 != nil || !os.SameFile(a, l) {
		t.Errorf("bin/ln is not a hard link of bin/sh: %v %v", err1, err2)
	}
	if _, err := os.Stat(filepath.Join(rootfs, pApp, "bin/app")); err != nil {
		t.Errorf("the store path is missing: %v", err)
	}
}

func TestBuildFromImageRefused(t *testing.T) {
	root := fakeStore(t)
	arm, _ := baseLayout(t, "arm64")
	tampered, layers := baseLayout(t, "amd64")
	p := filepath.Join(tampered, "blobs/sha256", layers[1].Digest.Encoded())
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, layers[1].Size), 0o644); err != nil {
		t.Fatal(err)
	}
	amd, _ := baseLayout(t, "amd64")
	for _, tc := range []struct {
		name string
		o    map[string]any
		want string
	}{
		{"other architecture", map[string]any{"fromImage": arm, "arch": "amd64"}, "is an image for linux/arm64, but this image is for linux/amd64"},
		{"tampered layer", map[string]any{"fromImage": tampered, "arch": "amd64"}, "layer 2"},
		{"not a layout", map[string]any{"fromImage": t.TempDir(), "arch": "amd64"}, "`fromImage`"},
		{"maxLayers counts the base", map[string]any{"fromImage": amd, "arch": "amd64", "maxLayers": 2}, "the 2 layers of fromImage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "image")
			err := Build(Request{Closure: appClosure(t), Options: opts(t, tc.o), Out: out, Root: root})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("%s was written: %v", out, err)
			}
		})
	}
}

// A base layer that escapes is carried unchanged (the image is the base's),
// and refused where it would act: when the image is unpacked.
func TestBuildFromHostileBase(t *testing.T) {
	root := fakeStore(t)
	base, _ := baseLayout(t, "amd64", ul{Entries: []ue{{Name: "../../escape", Body: "x"}}})
	out := build(t, root, appClosure(t), opts(t, map[string]any{"fromImage": base, "arch": "amd64"}))
	bundle := filepath.Join(t.TempDir(), "bundle")
	_, err := unpack.Unpack(context.Background(), unpack.Options{Image: out, Bundle: bundle, Platform: unpack.Platform{OS: "linux", Architecture: "amd64"}})
	if err == nil || !strings.Contains(err.Error(), `".."`) {
		t.Fatalf("unpack: %v, want the dot-dot entry refused", err)
	}
	if _, err := os.Lstat(bundle); !os.IsNotExist(err) {
		t.Errorf("bundle left behind: %v", err)
	}
}

func TestMergeConfig(t *testing.T) {
	base := v1.ImageConfig{Env: []string{"PATH=/bin", "A=1"}, Entrypoint: []string{"/e"}, Cmd: []string{"c"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}}
	for _, tc := range []struct {
		name    string
		c, want v1.ImageConfig
	}{
		{"nothing given", v1.ImageConfig{}, base},
		{"cmd only keeps the entrypoint", v1.ImageConfig{Cmd: []string{"d"}},
			v1.ImageConfig{Env: base.Env, Entrypoint: []string{"/e"}, Cmd: []string{"d"}, ExposedPorts: base.ExposedPorts}},
		{"entrypoint drops the base's cmd", v1.ImageConfig{Entrypoint: []string{"/f"}},
			v1.ImageConfig{Env: base.Env, Entrypoint: []string{"/f"}, ExposedPorts: base.ExposedPorts}},
		{"env by name, PATH prepended once", v1.ImageConfig{Env: []string{"A=2", "PATH=/nix/bin:/bin", "B=3"}},
			v1.ImageConfig{Env: []string{"PATH=/nix/bin:/bin", "A=2", "B=3"}, Entrypoint: []string{"/e"}, Cmd: []string{"c"}, ExposedPorts: base.ExposedPorts}},
		{"ports merged", v1.ImageConfig{ExposedPorts: map[string]struct{}{"53/udp": {}}},
			v1.ImageConfig{Env: base.Env, Entrypoint: []string{"/e"}, Cmd: []string{"c"}, ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}}}},
	} {
		if got := mergeImageConfig(base, tc.c); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// Docker's fields are inherited too, and replaced when given.
func TestMergeConfigDocker(t *testing.T) {
	five := 5
	base := Config{DockerConfig: DockerConfig{Healthcheck: &HealthConfig{Test: []string{"CMD", "true"}}, Shell: []string{"/bin/sh", "-c"}}}
	got := mergeConfig(base, Config{DockerConfig: DockerConfig{Shell: []string{"/bin/bash", "-c"}, StopTimeout: &five}})
	if got.Healthcheck == nil || got.Healthcheck.Test[1] != "true" || got.Shell[0] != "/bin/bash" || got.StopTimeout == nil || *got.StopTimeout != 5 {
		t.Errorf("got %+v", got.DockerConfig)
	}
}

// A layout holding several images (by ref name): fromImageTag picks one, as
// does fromImageName with it when the ref names are bare tags; without a
// pick the layout is refused with its tags.
func TestBuildFromImagePick(t *testing.T) {
	base, _ := baseLayout(t, "amd64")
	other, _ := baseLayout(t, "amd64", ul{Compression: "gzip", Entries: []ue{{Name: "other", Body: "other"}}})
	// other's image joins base's layout under the ref name "other".
	idx, oidx := readIndex(t, base), readIndex(t, other)
	oidx.Manifests[0].Annotations[v1.AnnotationRefName] = "other"
	idx.Manifests = append(idx.Manifests, oidx.Manifests[0])
	blobs, err := os.ReadDir(filepath.Join(other, "blobs/sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		data, err := os.ReadFile(filepath.Join(other, "blobs/sha256", b.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, "blobs/sha256", b.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(t, filepath.Join(base, "index.json"), idx)
	str := strPtr
	cases := []struct {
		name      string
		pick      map[string]any
		layers    int // the base's layers in the image, or
		wantError string
	}{
		{"tag", map[string]any{"fromImageTag": str("other")}, 3, ""},
		{"name and bare tag", map[string]any{"fromImageName": str("registry.example/other"), "fromImageTag": str("base")}, 2, ""},
		{"name alone", map[string]any{"fromImageName": str("base")}, 0, "`fromImageName` \"base\" picks none of the 2 images of index.json (base, other)"},
		{"no such tag", map[string]any{"fromImageTag": str("nope")}, 0, "`fromImageTag` \"nope\" picks none of the 2 images of index.json (base, other)"},
		{"no pick", map[string]any{}, 0, "holds several images"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := buildOnPick(t, base, c.pick)
			if c.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantError) || !strings.Contains(err.Error(), base) {
					t.Fatalf("error %v, want one naming %s and saying %q", err, base, c.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(readLayout(t, out).manifest.Layers); got != c.layers+4+1 {
				t.Errorf("%d layers, want the base's %d, 4 store layers and the root layer", got, c.layers)
			}
		})
	}
	// Picking needs a fromImage.
	err = Build(Request{Closure: appClosure(t), Options: opts(t, map[string]any{"fromImageTag": str("x")}), Out: filepath.Join(t.TempDir(), "image"), Root: fakeStore(t)})
	if err == nil || !strings.Contains(err.Error(), "`fromImageTag` \"x\" picks an image inside `fromImage`, which is not given") {
		t.Errorf("fromImageTag without fromImage: %v", err)
	}
}

func writeJSON(t *testing.T, f string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func strPtr(s string) *string { return &s }

// buildOnPick builds the test app on base with the pick arguments given,
// and returns the layout written.
func buildOnPick(t *testing.T, base string, pick map[string]any) (string, error) {
	t.Helper()
	o := map[string]any{"fromImage": base, "arch": "amd64"}
	for k, v := range pick {
		o[k] = v
	}
	out := filepath.Join(t.TempDir(), "image")
	return out, Build(Request{Closure: appClosure(t), Options: opts(t, o), Out: out, Root: fakeStore(t)})
}
