package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/internal/storetest"
)

var (
	pApp  = storetest.Path('a', "app")
	pLib  = storetest.Path('b', "lib")
	pLibc = storetest.Path('c', "libc")
	pEtc  = storetest.Path('d', "etc")
)

func fakeStore(t *testing.T) string {
	return storetest.Make(t, []storetest.File{
		{Path: pApp + "/bin/app", Data: "app " + pLib, Mode: 0o555},
		{Path: pLib + "/lib/libx.so", Data: "lib " + pLibc},
		{Path: pLibc + "/lib/libc.so", Data: "libc"},
		{Path: pLibc + "/bin/app", Data: "conflicting app", Mode: 0o555},
		{Path: pEtc + "/etc/motd", Data: "hi"},
	})
}

func closure(t *testing.T, refs map[string][]string) *derivation.Closure {
	t.Helper()
	var items []derivation.PathInfoJSON
	for p, r := range refs {
		items = append(items, derivation.PathInfoJSON{Path: p, NarHash: "sha256:" + strings.Repeat("0", 52), NarSize: 1, References: r})
	}
	c, err := derivation.NewClosure(items)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func appClosure(t *testing.T) *derivation.Closure {
	return closure(t, map[string][]string{pApp: {pLib}, pLib: {pLibc}, pLibc: nil, pEtc: nil})
}

func opts(t *testing.T, o map[string]any) json.RawMessage {
	t.Helper()
	base := map[string]any{"name": "app", "tag": "v1", "config": map[string]any{"Entrypoint": []string{pApp + "/bin/app"}}}
	for k, v := range o {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	data, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type built struct {
	index    v1.Index
	manifest v1.Manifest
	config   v1.Image
}

func readLayout(t *testing.T, dir string) built {
	t.Helper()
	var b built
	readJSON(t, filepath.Join(dir, "index.json"), &b.index)
	if len(b.index.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(b.index.Manifests))
	}
	readJSON(t, filepath.Join(dir, "blobs/sha256", b.index.Manifests[0].Digest.Encoded()), &b.manifest)
	readJSON(t, filepath.Join(dir, "blobs/sha256", b.manifest.Config.Digest.Encoded()), &b.config)
	return b
}

func readJSON(t *testing.T, f string, v any) {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func build(t *testing.T, root string, c *derivation.Closure, o json.RawMessage) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image")
	if err := Build(Request{Closure: c, Options: o, Out: out, Root: root}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildLayerPerPath(t *testing.T) {
	root := fakeStore(t)
	out := build(t, root, appClosure(t), opts(t, map[string]any{"annotations": map[string]string{"a": "b"}, "arch": "aarch64"}))
	b := readLayout(t, out)
	if got := b.index.Manifests[0].Annotations[v1.AnnotationRefName]; got != "v1" {
		t.Errorf("tag %q, want v1", got)
	}
	// One layer per store path, then the root layer (/tmp).
	if len(b.manifest.Layers) != 5 || len(b.config.RootFS.DiffIDs) != 5 || len(b.config.History) != 5 {
		t.Fatalf("%d layers, %d diff_ids, %d history entries; want 5 each", len(b.manifest.Layers), len(b.config.RootFS.DiffIDs), len(b.config.History))
	}
	// libc is the most shared, then lib; app and etc are used by nothing.
	for i, want := range []string{pLibc, pLib, pApp, pEtc} {
		if got := b.config.History[i].Comment; got != "store paths: "+want {
			t.Errorf("history %d: %q, want the store path %s", i, got, want)
		}
		if b.manifest.Layers[i].MediaType != v1.MediaTypeImageLayerGzip {
			t.Errorf("layer %d: %s", i, b.manifest.Layers[i].MediaType)
		}
	}
	if b.config.Architecture != "arm64" || b.config.OS != "linux" || b.config.Created.Format("2006-01-02T15:04:05Z07:00") != defaultCreated(t) {
		t.Errorf("platform %s/%s created %v", b.config.OS, b.config.Architecture, b.config.Created)
	}
	if b.manifest.Annotations["a"] != "b" {
		t.Errorf("annotations %v", b.manifest.Annotations)
	}
}

// The same inputs give the same bytes.
func TestBuildDeterministic(t *testing.T) {
	root := fakeStore(t)
	for _, comp := range []string{"gzip", "zstd", "none"} {
		o := opts(t, map[string]any{"compression": comp})
		a, b := build(t, root, appClosure(t), o), build(t, root, appClosure(t), o)
		if da, db := dirDigest(t, a), dirDigest(t, b); da != db {
			t.Errorf("%s: two builds differ:\n%s\n%s", comp, da, db)
		}
	}
}

func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sb.WriteString(rel + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sb.WriteString(" " + string(data))
		}
		sb.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestBuildMaxLayers(t *testing.T) {
	root := fakeStore(t)
	b := readLayout(t, build(t, root, appClosure(t), opts(t, map[string]any{"maxLayers": 3})))
	if len(b.manifest.Layers) != 3 || b.config.History[1].Comment != "store paths: "+strings.Join([]string{pApp, pLib, pEtc}, " ") {
		t.Errorf("%d layers, history %+v", len(b.manifest.Layers), b.config.History)
	}
}

// An explicit layer is copied as it is, and its paths are left out of the
// automatic layers.
func TestBuildExplicitLayer(t *testing.T) {
	root := fakeStore(t)
	layerDir := filepath.Join(t.TempDir(), "layer")
	lc := closure(t, map[string][]string{pLib: {pLibc}, pLibc: nil})
	if err := BuildLayer(Request{Closure: lc, Options: json.RawMessage(`{"layers":[],"compression":"zstd","perms":[]}`), Out: layerDir, Root: root}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadLayerInfo(layerDir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(info.Paths, " ") != pLib+" "+pLibc || info.MediaType != v1.MediaTypeImageLayerZstd {
		t.Fatalf("layer info %+v", info)
	}
	out := build(t, root, appClosure(t), opts(t, map[string]any{"layers": []string{layerDir}}))
	b := readLayout(t, out)
	if len(b.manifest.Layers) != 4 || b.manifest.Layers[0].Digest != info.Digest || b.config.RootFS.DiffIDs[0] != info.DiffID {
		t.Fatalf("layers %+v, want the explicit layer first then app and etc", b.manifest.Layers)
	}
	if !strings.HasPrefix(b.config.History[0].Comment, "buildLayer ") || b.config.History[1].Comment != "store paths: "+pApp {
		t.Errorf("history %+v", b.config.History)
	}
	// A second layer on top of the first holds only what the first lacks.
	layer2 := filepath.Join(t.TempDir(), "layer2")
	opts2, _ := json.Marshal(map[string]any{"layers": []string{layerDir}})
	if err := BuildLayer(Request{Closure: appClosure(t), Options: opts2, Out: layer2, Root: root}); err != nil {
		t.Fatal(err)
	}
	info2, _ := ReadLayerInfo(layer2)
	if strings.Join(info2.Paths, " ") != pApp+" "+pEtc {
		t.Errorf("stacked layer holds %v", info2.Paths)
	}
}

func TestBuildCopyToRoot(t *testing.T) {
	root := fakeStore(t)
	o := opts(t, map[string]any{"copyToRoot": []string{pApp, pEtc}, "config": map[string]any{"Entrypoint": []string{"/bin/app"}}})
	b := readLayout(t, build(t, root, appClosure(t), o))
	last := b.config.History[len(b.config.History)-1].Comment
	if len(b.manifest.Layers) != 5 || last != "root: copyToRoot (copy) "+pApp+" "+pEtc+"; dirs, files" {
		t.Errorf("%d layers, last history %q", len(b.manifest.Layers), last)
	}
}

func TestBuildErrors(t *testing.T) {
	root := fakeStore(t)
	tests := []buildErrorCase{
		{"copyToRoot conflict names both", map[string]any{"copyToRoot": []string{pApp, pLibc}}, "given by both " + pApp + "/bin/app and " + pLibc + "/bin/app"},
		{"copyToRoot symlink conflict names both", map[string]any{"copyToRoot": []string{pApp, pLibc}, "copyToRootMode": "symlink"}, "provided by both " + pApp + "/bin/app and " + pLibc},
		{"perms outside the image", map[string]any{"perms": []map[string]any{{"path": "/nix/store/" + strings.Repeat("e", 32) + "-x", "mode": "0755"}}}, "`perms`: /nix/store/eeee"},
		{"perms missing file", map[string]any{"perms": []map[string]any{{"path": pApp + "/bin/nope", "mode": "0755"}}}, "not in the image"},
		{"perms below a copyToRoot link", map[string]any{"copyToRoot": []string{pApp}, "copyToRootMode": "symlink", "perms": []map[string]any{{"path": "/bin/app", "mode": "0700"}}}, "give " + pApp + "/bin/app"},
		{"perms on /nix/store", map[string]any{"perms": []map[string]any{{"path": "/nix/store", "mode": "0700"}}}, "cannot be changed"},
		{"perms bad mode", map[string]any{"perms": []map[string]any{{"path": pApp, "mode": "999"}}}, "octal"},
		{"entrypoint not in the image", map[string]any{"config": map[string]any{"Entrypoint": []string{pApp + "/bin/missing"}}}, "the program"},
		{"entrypoint not executable", map[string]any{"config": map[string]any{"Entrypoint": []string{pLib + "/lib/libx.so"}}}, "not an executable file"},
		{"entrypoint made non-executable by perms", map[string]any{"perms": []map[string]any{{"path": pApp + "/bin", "mode": "0644", "recursive": true}}}, "0644 in the image"},
		{"entrypoint outside the store", map[string]any{"config": map[string]any{"Cmd": []string{"/bin/sh"}}}, "not in the image"},
		{"config key", map[string]any{"config": map[string]any{"cmd": []string{"x"}}}, `did you mean "Cmd"`},
		{"bad name", map[string]any{"name": "App"}, "`name` must be an image name"},
		{"bad tag", map[string]any{"tag": "-x"}, "`tag` must be a tag"},
		{"maxLayers", map[string]any{"maxLayers": 200}, "between 1 and 125"},
		{"compression", map[string]any{"compression": "xz"}, "`compression`: unknown value \"xz\""},
		{"created", map[string]any{"created": "yesterday"}, "RFC 3339"},
		{"arch", map[string]any{"arch": "sparc"}, "`arch`"},
		{"layers element", map[string]any{"layers": []string{pEtc}}, "not a buildLayer output"},
		{"unknown option", map[string]any{"bogus": 1}, "unknown argument `bogus`"},
	}
	wantBuildErrors(t, root, tests)
}

type buildErrorCase struct {
	name string
	o    map[string]any
	want string
}

// wantBuildErrors checks that each case fails with its message and leaves
// nothing behind.
func wantBuildErrors(t *testing.T, root string, tests []buildErrorCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "image")
			err := Build(Request{Closure: appClosure(t), Options: opts(t, tt.o), Out: out, Root: root})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("%s was left behind", out)
			}
		})
	}
}

// A failure while writing layers removes everything written so far.
func TestBuildFailureLeavesNothing(t *testing.T) {
	root := fakeStore(t)
	// Readable at planning time, unreadable when the layer is written.
	f := filepath.Join(root, pEtc, "etc/motd")
	if err := os.Chmod(f, 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// root reads anything: make the file a fifo instead.
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		if err := mkfifo(f); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "image")
	err := Build(Request{Closure: appClosure(t), Options: opts(t, nil), Out: out, Root: root})
	if err == nil {
		t.Fatal("build succeeded")
	}
	if _, err := os.Lstat(out); !os.IsNotExist(err) {
		t.Errorf("%s was left behind", out)
	}
}

// A store path's own layer is the same blob in every image that has it, so
// that registries and caches share it.
func TestLayerSharedAcrossImages(t *testing.T) {
	root := fakeStore(t)
	a := readLayout(t, build(t, root, appClosure(t), opts(t, nil)))
	other := closure(t, map[string][]string{pLib: {pLibc}, pLibc: nil})
	b := readLayout(t, build(t, root, other, opts(t, map[string]any{"name": "other", "tag": "x", "config": map[string]any{}, "created": "2024-01-01T00:00:00Z"})))
	// libc and lib are the two most shared paths of both closures.
	for i := 0; i < 2; i++ {
		if a.manifest.Layers[i].Digest != b.manifest.Layers[i].Digest {
			t.Errorf("layer %d differs between the images: %s and %s", i, a.manifest.Layers[i].Digest, b.manifest.Layers[i].Digest)
		}
	}
}

// defaultCreated is the table's default of created.
func defaultCreated(t *testing.T) string {
	var c string
	imageTable().Default("created", &c)
	return c
}
