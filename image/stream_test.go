package image

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/image/internal/storetest"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/image/stream"
)

// A streamed build records the same manifest as a stored one, and its layers,
// made again by the layout reader, are the stored build's bytes.
func TestStreamSameBytesAsStored(t *testing.T) {
	root := fakeStore(t)
	stream.StoreRoot = root
	defer func() { stream.StoreRoot = "" }()
	for _, tc := range []struct {
		name  string
		extra map[string]any
	}{
		{"gzip", map[string]any{"compression": "gzip"}},
		{"zstd", map[string]any{"compression": "zstd"}},
		{"none", map[string]any{"compression": "none"}},
		// The database layer's generated files are recorded too.
		{"nix database", map[string]any{"initializeNixDatabase": true, "nixUid": 1000, "nixGid": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// perms with a glob and a regex: the record keeps the patterns.
			perms := []map[string]any{{"glob": "/nix/store/*-lib/lib/*.so", "mode": "0700"}, {"regex": "/nix/store/[^/]*-libc/lib/.*", "uid": 7}}
			o := map[string]any{"copyToRoot": []string{pEtc}, "perms": perms}
			for k, v := range tc.extra {
				o[k] = v
			}
			stored := build(t, root, appClosure(t), opts(t, o))
			o["stream"] = true
			streamed := build(t, root, appClosure(t), opts(t, o))
			a, b := readLayout(t, stored), readLayout(t, streamed)
			if a.index.Manifests[0].Digest != b.index.Manifests[0].Digest {
				t.Fatalf("manifest %s streamed, %s stored", b.index.Manifests[0].Digest, a.index.Manifests[0].Digest)
			}
			rec, err := stream.Read(streamed)
			if err != nil || rec == nil || len(rec.Layers) != len(a.manifest.Layers) {
				t.Fatalf("stream.json: %+v, %v; want %d layers", rec, err, len(a.manifest.Layers))
			}
			r, err := layout.Open(streamed)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range b.manifest.Layers {
				if _, err := os.Lstat(filepath.Join(streamed, "blobs/sha256", d.Digest.Encoded())); !os.IsNotExist(err) {
					t.Errorf("layer %s is stored in the streamed layout (%v)", d.Digest, err)
				}
				v, err := r.OpenVerified(d)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(v)
				if err := v.Verify(); err != nil {
					t.Fatal(err)
				}
				v.Close()
				want, err := os.ReadFile(filepath.Join(stored, "blobs/sha256", d.Digest.Encoded()))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("layer %s: %d bytes made again, stored %d (%v)", d.Digest, len(got), len(want), err)
				}
			}
		})
	}
}

// A store path that changed since the image was recorded is an error naming
// the layer and both digests, before anything is read.
func TestStreamMismatchIsAnError(t *testing.T) {
	// Contents of its own: layers made earlier in this process are kept by
	// digest, and this one must be made here.
	root := storetest.Make(t, []storetest.File{
		{Path: pApp + "/bin/app", Data: "app " + pLib + " mismatch test", Mode: 0o555},
		{Path: pLib + "/lib/libx.so", Data: "lib " + pLibc},
		{Path: pLibc + "/lib/libc.so", Data: "libc"},
		{Path: pEtc + "/etc/motd", Data: "hi from the mismatch test"},
	})
	stream.StoreRoot = root
	defer func() { stream.StoreRoot = "" }()
	out := build(t, root, appClosure(t), opts(t, map[string]any{"compression": "zstd", "stream": true}))
	b := readLayout(t, out)
	// The store is read-only in real life; here a test changes a file the
	// layer of etc holds (the fake store is writable).
	f := filepath.Join(root, pEtc, "etc/motd")
	if err := os.Chmod(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := layout.Open(out)
	var failed int
	for _, d := range b.manifest.Layers {
		_, err := r.OpenVerified(d)
		if err == nil {
			continue
		}
		failed++
		for _, want := range []string{string(d.Digest), "came out as", pEtc, "records", "refusing"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d layers failed, want the one holding %s", failed, pEtc)
	}
}
