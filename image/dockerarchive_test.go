package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
)

// archEntry is one entry of a test archive.
type archEntry struct {
	name, link string
	typ        byte
	data       []byte
}

func tarBytes(t testing.TB, entries []archEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Size: int64(len(e.data))}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil && typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dockerArchive is the entries of a Docker archive of one amd64 image of
// two layers (the layer tars named as `docker save` names them), its config
// with Env, Cmd and a label; edit changes manifest.json and the config
// before they are written.
func dockerArchive(t testing.TB, edit func(m []map[string]any, c map[string]any) []map[string]any) []archEntry {
	t.Helper()
	l1 := tarBytes(t, []archEntry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/sh", data: []byte("#!sh\n")}})
	l2 := tarBytes(t, []archEntry{{name: "etc/release", data: []byte("docker base\n")}})
	c := map[string]any{
		"architecture": "amd64", "os": "linux",
		"config":  map[string]any{"Env": []string{"PATH=/bin", "LANG=C"}, "Cmd": []string{"/bin/sh"}, "Labels": map[string]string{"from": "docker"}, "Healthcheck": map[string]any{"Test": []string{"NONE"}}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2)}},
		"history": []map[string]any{{"created_by": "one"}, {"created_by": "two"}},
	}
	m := []map[string]any{{"Config": "cfg.json", "RepoTags": []string{"base:1"}, "Layers": []string{"a/layer.tar", "b/layer.tar"}}}
	if edit != nil {
		m = edit(m, c)
	}
	mj, _ := json.Marshal(m)
	cj, _ := json.Marshal(c)
	return []archEntry{
		{name: "a/", typ: tar.TypeDir}, {name: "a/layer.tar", data: l1},
		{name: "b/", typ: tar.TypeDir}, {name: "b/layer.tar", data: l2},
		{name: "cfg.json", data: cj}, {name: "manifest.json", data: mj},
	}
}

func writeArchive(t *testing.T, entries []archEntry, gz bool) string {
	t.Helper()
	data := tarBytes(t, entries)
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(data)
		_ = w.Close()
		data = buf.Bytes()
	}
	p := filepath.Join(t.TempDir(), "base.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildFromDockerArchive(t *testing.T) {
	for _, gz := range []bool{false, true} {
		entries := dockerArchive(t, nil)
		base := writeArchive(t, entries, gz)
		out := build(t, fakeStore(t), appClosure(t), opts(t, map[string]any{"fromImage": base, "arch": "amd64", "compression": "zstd"}))
		b := readLayout(t, out)
		want := []digest.Digest{digest.FromBytes(entries[1].data), digest.FromBytes(entries[3].data)}
		if len(b.config.RootFS.DiffIDs) < 3 || len(b.config.History) != len(b.config.RootFS.DiffIDs) {
			t.Fatalf("gzip %v: diff_ids %v, %d history entries", gz, b.config.RootFS.DiffIDs, len(b.config.History))
		}
		for i, d := range want {
			if b.config.RootFS.DiffIDs[i] != d || b.config.History[i].CreatedBy != []string{"one", "two"}[i] {
				t.Errorf("gzip %v: layer %d: diff_id %s history %+v, want the base's %s", gz, i, b.config.RootFS.DiffIDs[i], b.config.History[i], d)
			}
			ld := b.manifest.Layers[i]
			f, err := os.Open(filepath.Join(out, "blobs/sha256", ld.Digest.Encoded()))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := compress.NewReader(compress.Zstd, f)
			if err != nil {
				t.Fatal(err)
			}
			tarData, err := io.ReadAll(zr)
			f.Close()
			if err != nil || digest.FromBytes(tarData) != d || ld.MediaType != v1.MediaTypeImageLayerZstd {
				t.Errorf("gzip %v: layer %d %+v: holds %d bytes (%v), not the base's tar as zstd", gz, i, ld, len(tarData), err)
			}
		}
		c := b.config.Config
		if strings.Join(c.Env, " ") != "PATH=/bin LANG=C" || c.Labels["from"] != "docker" || c.Entrypoint[0] != pApp+"/bin/app" {
			t.Errorf("gzip %v: config %+v does not inherit the base's", gz, c)
		}
		if a := b.manifest.Annotations; a[v1.AnnotationBaseImageName] != "base:1" || a[v1.AnnotationBaseImageDigest] != "" {
			t.Errorf("gzip %v: annotations %v, want base name base:1 and no base digest", gz, a)
		}
		var full imageJSON
		readJSON(t, filepath.Join(out, "blobs/sha256", b.manifest.Config.Digest.Encoded()), &full)
		if full.Config.Healthcheck == nil {
			t.Errorf("gzip %v: the base's Healthcheck (a Docker field) was not inherited", gz)
		}
	}
}

func TestDockerArchiveRefused(t *testing.T) {
	layers := func(names ...string) func(m []map[string]any, c map[string]any) []map[string]any {
		return func(m []map[string]any, _ map[string]any) []map[string]any { m[0]["Layers"] = names; return m }
	}
	cases := []struct {
		name    string
		entries []archEntry
		want    string
	}{
		{"dotdot layer", dockerArchive(t, layers("../a/layer.tar", "b/layer.tar")), `layer 1 "../a/layer.tar" is not a relative path inside the archive`},
		{"absolute config", dockerArchive(t, func(m []map[string]any, _ map[string]any) []map[string]any { m[0]["Config"] = "/etc/passwd"; return m }), `the config "/etc/passwd" is not a relative path`},
		{"missing layer", dockerArchive(t, layers("a/layer.tar", "c/layer.tar")), `layer 2 "c/layer.tar" is not in the archive`},
		{"symlink layer", append(dockerArchive(t, layers("a/layer.tar", "s/layer.tar")), archEntry{name: "s/layer.tar", typ: tar.TypeSymlink, link: "../b/layer.tar"}), `layer 2 "s/layer.tar" is not a regular file in the archive`},
		{"escaping entry", append(dockerArchive(t, nil), archEntry{name: "../evil", data: []byte("x")}), `entry "../evil" is not a relative path`},
		{"duplicate entry", append(dockerArchive(t, nil), archEntry{name: "./cfg.json", data: []byte("{}")}), `entry "cfg.json" appears twice`},
		{"diff_id mismatch", dockerArchive(t, layers("b/layer.tar", "a/layer.tar")), `layer 1 "b/layer.tar" has digest sha256:`},
		{"diff_id count", dockerArchive(t, layers("a/layer.tar")), `rootfs is type "layers" with 2 diff_ids, but manifest.json lists 1 layers`},
		{"two images", dockerArchive(t, func(m []map[string]any, _ map[string]any) []map[string]any {
			return append(m, map[string]any{"Config": "cfg.json", "RepoTags": []string{"other:2"}, "Layers": []string{}})
		}), "manifest.json lists 2 images (1: base:1; 2: other:2): pick one with `fromImageName` and `fromImageTag`"},
		{"other platform", dockerArchive(t, func(m []map[string]any, c map[string]any) []map[string]any { c["architecture"] = "arm64"; return m }), "is an image for linux/arm64, but this image is for linux/amd64"},
		{"no manifest", dockerArchive(t, nil)[:5], `the manifest "manifest.json" is not in the archive`},
		{"not a tar", []archEntry{}, `manifest.json" is not in the archive`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := writeArchive(t, c.entries, false)
			out := filepath.Join(t.TempDir(), "image")
			err := Build(Request{Closure: appClosure(t), Options: opts(t, map[string]any{"fromImage": base, "arch": "amd64"}), Out: out, Root: fakeStore(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), base) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, base, c.want)
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", out, err)
			}
		})
	}
	// Garbage that is no tar at all.
	base := filepath.Join(t.TempDir(), "junk.tar")
	if err := os.WriteFile(base, bytes.Repeat([]byte("junk"), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readBase(base, v1.Platform{OS: "linux", Architecture: "amd64"}, basePick{}); err == nil || !strings.Contains(err.Error(), "not a readable tar") {
		t.Errorf("junk: %v", err)
	}
}

// FuzzDockerArchive: any bytes are indexed and checked as a Docker archive
// with an error or an image whose layers match their diff_ids, never a
// panic.
func FuzzDockerArchive(f *testing.F) {
	f.Add(tarBytes(f, dockerArchive(f, nil)), "", "")
	f.Add(tarBytes(f, dockerArchive(f, nil)), "base", "1")
	f.Add(tarBytes(f, append(dockerArchive(f, nil), archEntry{name: "x", typ: tar.TypeSymlink, link: "/etc"})), "", "x")
	f.Add(tarBytes(f, []archEntry{{name: "manifest.json", data: []byte(`[{"Config":"c","Layers":["l"]}]`)}, {name: "c", data: []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}`)}}), "docker.io/library/c", "")
	f.Fuzz(func(t *testing.T, data []byte, name, tag string) {
		pick := basePick{name: name, tag: tag}
		img, err := checkArchive(bytes.NewReader(data), pick)
		if err != nil {
			return
		}
		if pick.set() {
			hit := false
			for _, r := range img.tags {
				hit = hit || pick.matches(r, false)
			}
			if !hit {
				t.Fatalf("%v accepted an image tagged %q", pick, img.tags)
			}
		}
		if len(img.layers) != len(img.config.RootFS.DiffIDs) {
			t.Fatalf("%d layers, %d diff_ids accepted", len(img.layers), len(img.config.RootFS.DiffIDs))
		}
		for _, l := range img.layers {
			if !localName(l) {
				t.Fatalf("layer %q accepted", l)
			}
		}
	})
}

// fromImageName and fromImageTag pick one image of an archive holding
// several, as dockerTools' pair does; a pick that names none, or several, is
// refused with the archive's names.
func TestDockerArchivePick(t *testing.T) {
	// Three images: the real one as base:1 (and base:latest), two more with
	// no layers (a config whose rootfs does not match them: picking them
	// fails on that, which tells which one was picked).
	entries := dockerArchive(t, func(m []map[string]any, _ map[string]any) []map[string]any {
		m[0]["RepoTags"] = []string{"base:1", "base:latest"}
		return append(m,
			map[string]any{"Config": "cfg.json", "RepoTags": []string{"other:1"}, "Layers": []string{}},
			map[string]any{"Config": "cfg.json", "RepoTags": []string{"registry.example:5000/team/other:2"}, "Layers": []string{}})
	})
	base := writeArchive(t, entries, false)
	str := strPtr
	cases := []struct {
		name      string
		pick      map[string]any
		want      string // the base name recorded, or
		wantError string
	}{
		{"name and tag", map[string]any{"fromImageName": str("base"), "fromImageTag": str("latest")}, "base:latest", ""},
		{"name alone", map[string]any{"fromImageName": str("base")}, "base:1", ""},
		{"name in Docker's long form", map[string]any{"fromImageName": str("docker.io/library/base"), "fromImageTag": str("latest")}, "base:latest", ""},
		{"tag alone, one match", map[string]any{"fromImageTag": str("latest")}, "base:latest", ""},
		{"name with a registry", map[string]any{"fromImageName": str("registry.example:5000/team/other")}, "", `rootfs is type "layers" with 2 diff_ids, but manifest.json lists 0 layers`},
		{"tag alone, two matches", map[string]any{"fromImageTag": str("1")}, "", "`fromImageTag` \"1\" picks 2 images of manifest.json (base:1, base:latest; other:1): give both `fromImageName` and `fromImageTag`"},
		{"no match", map[string]any{"fromImageName": str("base"), "fromImageTag": str("2")}, "", "`fromImageName` \"base\" and `fromImageTag` \"2\" (base:2) picks none of the 3 images of manifest.json (base:1, base:latest, other:1, registry.example:5000/team/other:2)"},
		{"no pick", map[string]any{}, "", "manifest.json lists 3 images (1: base:1, base:latest; 2: other:1; 3: registry.example:5000/team/other:2): pick one with `fromImageName` and `fromImageTag`"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := buildOnPick(t, base, c.pick)
			if c.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantError) {
					t.Fatalf("error %v, want one saying %q", err, c.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readLayout(t, out).manifest.Annotations[v1.AnnotationBaseImageName]; got != c.want {
				t.Errorf("base name %q, want %q", got, c.want)
			}
		})
	}
}

// A sparse entry claiming a terabyte of holes in a few hundred bytes is
// refused at once: read, it would be hashed for hours (the fuzzer stalled on
// such inputs).
func TestDockerArchiveSparse(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// archive/tar writes no GNU sparse records: write look-alikes, then
	// rename them in the bytes (a PAX header's records are not checksummed).
	recs := map[string]string{"XNU.sparse.major": "0", "XNU.sparse.minor": "1", "XNU.sparse.numblocks": "1", "XNU.sparse.map": "0,0", "XNU.sparse.size": "1099511627776"}
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: recs, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := bytes.ReplaceAll(buf.Bytes(), []byte("XNU.sparse."), []byte("GNU.sparse."))
	h, err := tar.NewReader(bytes.NewReader(data)).Next()
	if err != nil || h.Size != 1<<40 {
		t.Fatalf("the crafted entry reads as %+v, %v; want a sparse file of 1 TiB", h, err)
	}
	done := make(chan error, 1)
	go func() { _, err := checkArchive(bytes.NewReader(data), basePick{}); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), `entry "big" is a sparse file`) {
			t.Errorf("error %v, want the sparse entry refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a sparse entry of 1 TiB is being read")
	}
}
