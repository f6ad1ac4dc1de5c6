package registry

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testLock writes a lock file for a manifest of two blobs, whose files it
// writes too, and returns the file and the blob map.
func testLock(t testing.TB, edit func(*Lock)) (string, map[digest.Digest]string) {
	t.Helper()
	dir := t.TempDir()
	blobs := map[digest.Digest]string{}
	var descs []ocispec.Descriptor
	for i, data := range []string{`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`, "layer bytes"} {
		d := digest.FromString(data)
		p := filepath.Join(dir, d.Encoded())
		if err := os.WriteFile(p, []byte(data), 0o444); err != nil {
			t.Fatal(err)
		}
		blobs[d] = p
		mt := ocispec.MediaTypeImageLayerGzip
		if i == 0 {
			mt = ocispec.MediaTypeImageConfig
		}
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))})
	}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: descs[0], Layers: descs[1:]})
	lock := Lock{Version: LockVersion, ImageName: "127.0.0.1:5000/base", Tag: "1", ImageDigest: digest.FromBytes(m),
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, MediaType: ocispec.MediaTypeImageManifest, Manifest: string(m), Blobs: descs}
	if edit != nil {
		edit(&lock)
	}
	data, _ := json.Marshal(lock)
	f := filepath.Join(dir, "image.lock.json")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return f, blobs
}

func TestLayoutFromLock(t *testing.T) {
	f, blobs := testLock(t, nil)
	out := filepath.Join(t.TempDir(), "layout")
	if err := LayoutFromLock(f, blobs, out); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLayout(out)
	if err != nil {
		t.Fatal(err)
	}
	root := l.Index.Manifests[0]
	if root.Annotations[ocispec.AnnotationRefName] != "1" || root.Platform == nil || root.Platform.Architecture != "amd64" {
		t.Errorf("index.json names %+v", root)
	}
	g, err := l.Walk(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range g.Blobs {
		if err := l.VerifyBlob(b); err != nil {
			t.Error(err)
		}
	}
}

func TestLayoutFromLockRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Lock)
		blobs func(map[digest.Digest]string)
		want  string
	}{
		{"manifest edited", func(l *Lock) { l.Manifest = strings.Replace(l.Manifest, "layers", "layers ", 1) }, nil, "its manifest has digest"},
		{"blob list edited", func(l *Lock) { l.Blobs = l.Blobs[:1] }, nil, "lists 1 blobs, its manifest 2"},
		{"other version", func(l *Lock) { l.Version = 2 }, nil, "version 2"},
		{"blob missing", nil, func(m map[digest.Digest]string) {
			for d := range m {
				delete(m, d)
				return
			}
		}, "no file given"},
		{"blob of another size", nil, func(m map[digest.Digest]string) {
			for _, p := range m {
				_ = os.Chmod(p, 0o644)
				_ = os.WriteFile(p, []byte("x"), 0o644)
			}
		}, "is not a regular file of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, blobs := testLock(t, tc.edit)
			if tc.blobs != nil {
				tc.blobs(blobs)
			}
			out := filepath.Join(t.TempDir(), "layout")
			err := LayoutFromLock(f, blobs, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("%s left behind", out)
			}
		})
	}
}

// FuzzReadLock: a lock file is input; reading one never panics, and one it
// accepts has a manifest of the digest it names.
func FuzzReadLock(f *testing.F) {
	good, _ := testLock(f, nil)
	data, _ := os.ReadFile(good)
	f.Add(data)
	f.Add([]byte(`{"version":1,"manifest":"{}"}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "lock.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lock, _, err := ReadLock(p)
		if err == nil && digest.FromString(lock.Manifest) != lock.ImageDigest {
			t.Errorf("accepted a manifest whose digest is not %s", lock.ImageDigest)
		}
	})
}
