package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/unpack/unpacktest"
)

// FuzzEntryPath: an accepted name is relative, clean and has no ".."; a
// whiteout of it never names ".", ".." or a path.
func FuzzEntryPath(f *testing.F) {
	for _, s := range []string{"a/b", "./a", "/etc/passwd", "../x", "a/../../b", "a/.wh..wh..opq", "a/.wh...", ".wh..", "a//b/", "\x00", ".wh..wh.plnk", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := entryPath(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.HasSuffix(p, "/") || strings.ContainsRune(p, 0) {
			t.Fatalf("entryPath(%q) = %q: not clean and relative", name, p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." || (c == "" && p != "") {
				t.Fatalf("entryPath(%q) = %q has component %q", name, p, c)
			}
		}
		kind, dir, wname, err := classifyWhiteout(p)
		if err != nil {
			return
		}
		if kind == whiteoutFile && (wname == "" || wname == "." || wname == ".." || strings.Contains(wname, "/")) {
			t.Fatalf("whiteout %q names %q in %q", p, wname, dir)
		}
		if kind != notWhiteout && dir != "" && !strings.HasPrefix(p, dir+"/") {
			t.Fatalf("whiteout %q: directory %q is not its parent", p, dir)
		}
	})
}

// FuzzApplyLayer applies arbitrary tar streams (seeded with hostile ones)
// over a lower layer: whatever happens, nothing outside the root changes.
func FuzzApplyLayer(f *testing.F) {
	seeds := [][]unpacktest.Entry{
		{{Name: "../evil", Body: "x"}},
		{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}, {Name: "l/../evil", Body: "x"}, {Name: "l/evil", Body: "x"}},
		{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../.."}, {Name: "l/evil", Body: "x"}, {Name: "h", Typeflag: tar.TypeLink, Linkname: "l/evil"}},
		{{Name: "d/.wh..wh..opq"}, {Name: ".wh.d"}, {Name: "d/.wh..."}, {Name: "d/x", Body: "x"}},
		{{Name: "f", Typeflag: tar.TypeFifo}, {Name: "c", Typeflag: tar.TypeChar, Devmajor: 1}},
	}
	for _, s := range seeds {
		data, err := unpacktest.Tar(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	lower, err := unpacktest.Tar([]unpacktest.Entry{{Name: "d/", Mode: 0o755}, {Name: "d/a", Body: "a"}, {Name: "s", Typeflag: tar.TypeSymlink, Linkname: ".."}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		dir := t.TempDir()
		rootfs := filepath.Join(dir, "a", "b", "rootfs")
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := openRoot(rootfs)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		a := newApplier(r, false, Limits{MaxBytes: 1 << 20, MaxEntries: 1000})
		ctx := context.Background()
		if err := a.applyLayer(ctx, bytes.NewReader(lower), "lower"); err != nil {
			t.Fatal(err)
		}
		_ = a.applyLayer(ctx, bytes.NewReader(layer), "fuzzed")
		_ = a.finish(ctx)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 || entries[0].Name() != "a" {
			t.Fatalf("something was made beside the root: %v", entries)
		}
		for _, d := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")} {
			entries, err := os.ReadDir(d)
			if err != nil || len(entries) != 1 {
				t.Fatalf("something was made beside the root in %s: %v", d, entries)
			}
		}
		_ = RemoveTree(dir)
	})
}
