package unpack

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/readfile"
	bundlelayout "github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/spec"
	"github.com/ocitools/ocitools/unpack/unpacktest"
)

type E = unpacktest.Entry
type L = unpacktest.Layer

// base is a layer that makes a valid bundle: an executable to run.
var base = L{Entries: []E{{Name: "bin/", Mode: 0o755}, {Name: "bin/sh", Body: "#!/bin/sh\n", Mode: 0o755}}}

func img(layers ...L) unpacktest.Image {
	return unpacktest.Image{Layers: append([]L{base}, layers...), Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}
}

// world is a test's directory: a sentinel directory that no image may touch,
// the layout, and the directory the bundle is made in.
type world struct {
	dir, sentinel, out, bundle string
	snapshot                   map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{dir: dir, sentinel: filepath.Join(dir, "sentinel"), out: filepath.Join(dir, "out")}
	w.bundle = filepath.Join(w.out, "bundle")
	for _, d := range []string{w.sentinel, filepath.Join(w.sentinel, "sub"), w.out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(w.sentinel, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.snapshot = tree(t, w.sentinel)
	return w
}

// tree describes every entry under dir: type, mode, size, content, link.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			desc += " " + string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// check asserts that the sentinel is as it was, and that the output
// directory holds the bundle (ok) or nothing at all.
func (w *world) check(t *testing.T, ok bool) {
	t.Helper()
	if got := tree(t, w.sentinel); !equalMaps(got, w.snapshot) {
		t.Errorf("the sentinel directory changed:\n got %v\nwant %v", got, w.snapshot)
	}
	names, err := os.ReadDir(w.out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		got = append(got, n.Name())
	}
	want := []string{}
	if ok {
		want = []string{"bundle"}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("output directory holds %v, want %v (nothing half-written may survive)", got, want)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (w *world) layout(t *testing.T, im unpacktest.Image) *unpacktest.Layout {
	t.Helper()
	l, err := unpacktest.Write(filepath.Join(w.dir, "layout"), im)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (w *world) unpack(t *testing.T, o Options) (*Result, error) {
	t.Helper()
	if o.Image == "" {
		o.Image = filepath.Join(w.dir, "layout")
	}
	o.Bundle = w.bundle
	return Unpack(context.Background(), o)
}

func TestHostileLayers(t *testing.T) {
	t.Run("openat2", testHostileLayers)
	t.Run("walk", func(t *testing.T) {
		noOpenat2 = true
		defer func() { noOpenat2 = false }()
		testHostileLayers(t)
	})
}

func testHostileLayers(t *testing.T) {
	type tc struct {
		name    string
		layers  []L
		limits  Limits
		wantErr string            // "" means the unpack succeeds
		want    map[string]string // rootfs paths: "reg CONTENT", "link TARGET", "dir", "absent"
		skipped string            // a kind of skipped entry to be reported
	}
	cases := func(w *world) []tc {
		sen := w.sentinel
		return []tc{
			{name: "dotdot", layers: []L{{Entries: []E{{Name: "../../sentinel/evil", Body: "x"}}}}, wantErr: `".."`},
			{name: "dotdot inside", layers: []L{{Entries: []E{{Name: "bin/../../x", Body: "x"}}}}, wantErr: `".."`},
			{name: "absolute", layers: []L{{Entries: []E{{Name: sen + "/evil", Body: "x"}}}}, wantErr: "absolute"},
			{name: "symlink out then write through it", layers: []L{{Entries: []E{
				{Name: "link", Typeflag: tar.TypeSymlink, Linkname: sen},
				{Name: "link/evil", Body: "x"},
				{Name: "rel", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../" + sen},
				{Name: "rel/evil2", Body: "y"},
				{Name: "link/sub/", Mode: 0o777},
			}}}, want: map[string]string{
				"link": "link " + sen, strings.TrimPrefix(sen, "/") + "/evil": "reg x",
				strings.TrimPrefix(sen, "/") + "/evil2": "reg y", strings.TrimPrefix(sen, "/") + "/sub": "dir",
			}},
			{name: "symlink out in a lower layer", layers: []L{
				{Entries: []E{{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: sen}}},
				{Entries: []E{{Name: "etc/secret", Body: "overwritten"}}},
			}, want: map[string]string{strings.TrimPrefix(sen, "/") + "/secret": "reg overwritten"}},
			{name: "file replaces a symlink to outside", layers: []L{
				{Entries: []E{{Name: "f", Typeflag: tar.TypeSymlink, Linkname: sen + "/secret"}}},
				{Entries: []E{{Name: "f", Body: "new"}}},
			}, want: map[string]string{"f": "reg new"}},
			{name: "hard link absolute", layers: []L{{Entries: []E{{Name: "h", Typeflag: tar.TypeLink, Linkname: sen + "/secret"}}}}, wantErr: "absolute"},
			{name: "hard link dotdot", layers: []L{{Entries: []E{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../sentinel/secret"}}}}, wantErr: `".."`},
			{name: "hard link through a symlink out", layers: []L{{Entries: []E{
				{Name: "s", Typeflag: tar.TypeSymlink, Linkname: sen},
				{Name: "h", Typeflag: tar.TypeLink, Linkname: "s/secret"},
			}}}, wantErr: "not in the layers"},
			{name: "hard link to a symlink out links the symlink", layers: []L{{Entries: []E{
				{Name: "s", Typeflag: tar.TypeSymlink, Linkname: sen + "/secret"},
				{Name: "h", Typeflag: tar.TypeLink, Linkname: "s"},
			}}}, want: map[string]string{"h": "link " + sen + "/secret"}},
			{name: "whiteout naming dotdot", layers: []L{{Entries: []E{{Name: "bin/.wh...", Body: ""}}}}, wantErr: "whiteout"},
			{name: "whiteout naming dot", layers: []L{{Entries: []E{{Name: ".wh..", Body: ""}}}}, wantErr: "whiteout"},
			{name: "whiteout through a symlink out", layers: []L{
				{Entries: []E{{Name: "s", Typeflag: tar.TypeSymlink, Linkname: sen}}},
				{Entries: []E{{Name: "s/.wh.secret"}, {Name: "s/sub/.wh..wh..opq"}, {Name: "s/.wh.sub"}}},
			}, want: map[string]string{"s": "link " + sen}},
			{name: "whiteout of a lower symlink the layer wrote through", layers: []L{
				{Entries: []E{{Name: "d/", Mode: 0o755}, {Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "d"}}},
				{Entries: []E{{Name: "lnk/x", Body: "x"}, {Name: ".wh.lnk"}}},
			}, want: map[string]string{"lnk": "absent", "d/x": "reg x"}},
			{name: "device nodes skipped", layers: []L{{Entries: []E{
				{Name: "dev/", Mode: 0o755},
				{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o666},
				{Name: "dev/mem", Typeflag: tar.TypeChar, Devmajor: 1, Mode: 0o666},
			}}}, want: map[string]string{"dev/sda": "absent", "dev/mem": "absent", "dev": "dir"}, skipped: "device node"},
			{name: "symlink loop", layers: []L{{Entries: []E{
				{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "b"},
				{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "a"},
				{Name: "a/x", Body: "x"},
			}}}, wantErr: "too many levels of symbolic links"},
			{name: "bytes limit", layers: []L{{Compression: "gzip", Entries: []E{{Name: "zeros", Body: strings.Repeat("\x00", 4<<20)}}}},
				limits: Limits{MaxBytes: 1 << 20}, wantErr: "limit"},
			{name: "entries limit", layers: []L{{Entries: manyFiles(50)}}, limits: Limits{MaxEntries: 20}, wantErr: "more than 20 entries"},
			{name: "diff_id mismatch", layers: []L{{WrongDiffID: true, Entries: []E{{Name: "x", Body: "x"}}}}, wantErr: "diff_id"},
			{name: "trailing garbage after the tar", layers: []L{{Raw: append(mustTar(t, []E{{Name: "x", Body: "x"}}), []byte("garbage-not-a-block")...)}},
				want: map[string]string{"x": "reg x"}},
			{name: "truncated layer", layers: []L{{Raw: mustTar(t, []E{{Name: "x", Body: strings.Repeat("y", 2000)}})[:1024]}}, wantErr: "EOF"},
			{name: "aufs metadata skipped", layers: []L{{Entries: []E{{Name: ".wh..wh.plnk/", Mode: 0o700}}}}, want: map[string]string{".wh..wh.plnk": "absent"}, skipped: "aufs metadata entry"},
			{name: "trusted xattr skipped", layers: []L{{Entries: []E{{Name: "x", Body: "x", PAX: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}}}},
				want: map[string]string{"x": "reg x"}, skipped: "extended attribute trusted.overlay.opaque"},
		}
	}
	n := len(cases(&world{sentinel: "/s"}))
	for i := 0; i < n; i++ {
		w := newWorld(t)
		c := cases(w)[i]
		t.Run(c.name, func(t *testing.T) {
			w.layout(t, img(c.layers...))
			res, err := w.unpack(t, Options{Limits: c.limits})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, c.wantErr)
				}
				w.check(t, false)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w.check(t, true)
			rootfs := filepath.Join(w.bundle, bundlelayout.RootfsDir)
			for p, want := range c.want {
				if got := describe(filepath.Join(rootfs, p)); got != want {
					t.Errorf("%s: got %q, want %q", p, got, want)
				}
			}
			if c.skipped != "" {
				found := false
				for _, s := range res.Skipped {
					found = found || s.What == c.skipped
				}
				if !found {
					t.Errorf("skipped %+v, want a %q", res.Skipped, c.skipped)
				}
			}
		})
	}
}

func describe(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return "absent"
	}
	switch {
	case fi.IsDir():
		return "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		l, _ := os.Readlink(p)
		return "link " + l
	case fi.Mode().IsRegular():
		data, _ := os.ReadFile(p)
		return "reg " + string(data)
	}
	return fi.Mode().String()
}

func manyFiles(n int) []E {
	var out []E
	for i := 0; i < n; i++ {
		out = append(out, E{Name: "f" + strconv.Itoa(i), Body: "x"})
	}
	return out
}

func mustTar(t *testing.T, es []E) []byte {
	data, err := unpacktest.Tar(es)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTamperedBlobs(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest)
		wantErr string
	}{
		{"layer larger than declared", func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest) {
			appendTo(t, l.BlobPath(m.Layers[1].Digest), make([]byte, 1<<20))
		}, "declares"},
		{"layer changed, same size", func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest) {
			flipLastByte(t, l.BlobPath(m.Layers[1].Digest))
		}, "does not match its digest"},
		{"config larger than declared", func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest) {
			appendTo(t, l.BlobPath(m.Config.Digest), []byte("                "))
		}, "declares"},
		{"layer is a FIFO", func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest) {
			p := l.BlobPath(m.Layers[1].Digest)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"config is a device", func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest) {
			p := l.BlobPath(m.Config.Digest)
			os.Remove(p)
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"layer missing", func(t *testing.T, l *unpacktest.Layout, m ocispec.Manifest) {
			os.Remove(l.BlobPath(m.Layers[1].Digest))
		}, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			l := w.layout(t, img(L{Compression: "gzip", Entries: []E{{Name: "x", Body: "x"}}}))
			idx, err := (&Layout{Dir: l.Dir}).Index()
			if err != nil {
				t.Fatal(err)
			}
			var m ocispec.Manifest
			data, _ := os.ReadFile(l.BlobPath(idx.Manifests[0].Digest))
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			c.tamper(t, l, m)
			_, err = w.unpack(t, Options{})
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
			}
			w.check(t, false)
		})
	}
	t.Run("manifest larger than declared", func(t *testing.T) {
		w := newWorld(t)
		l := w.layout(t, img())
		idx, _ := (&Layout{Dir: l.Dir}).Index()
		appendTo(t, l.BlobPath(idx.Manifests[0].Digest), make([]byte, 100<<20))
		_, err := w.unpack(t, Options{})
		if err == nil || !strings.Contains(err.Error(), "declares") {
			t.Fatalf("got %v", err)
		}
		w.check(t, false)
	})
}

func appendTo(t *testing.T, p string, data []byte) {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	f.Close()
}

func flipLastByte(t *testing.T, p string) {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-5] ^= 0x55
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWhiteouts(t *testing.T) {
	lower := L{Entries: []E{
		{Name: "a/", Mode: 0o755}, {Name: "a/1", Body: "1"}, {Name: "a/2", Body: "2"},
		{Name: "b/", Mode: 0o755}, {Name: "b/x", Body: "x"}, {Name: "b/d/", Mode: 0o755}, {Name: "b/d/deep", Body: "deep"},
		{Name: "c/", Mode: 0o755}, {Name: "c/file", Body: "c"},
		{Name: "e/", Mode: 0o755}, {Name: "e/old", Body: "old"},
	}}
	for _, comp := range []string{"", "gzip", "zstd"} {
		t.Run("compression="+comp, func(t *testing.T) {
			upper := L{Compression: comp, Entries: []E{
				{Name: "a/.wh.1"},
				{Name: "b/.wh..wh..opq"}, {Name: "b/y", Body: "y"},
				{Name: ".wh.c"},
				// Whiteouts after the layer's own entries hide only lower ones.
				{Name: "e/new", Body: "new"}, {Name: "e/.wh..wh..opq"}, {Name: "e/.wh.new"},
				{Name: "f/", Mode: 0o755}, {Name: "f/g/", Mode: 0o755}, {Name: "f/g/h", Body: "h"}, {Name: ".wh.f"},
			}}
			w := newWorld(t)
			w.layout(t, img(lower, upper))
			if _, err := w.unpack(t, Options{}); err != nil {
				t.Fatal(err)
			}
			w.check(t, true)
			got := tree(t, filepath.Join(w.bundle, bundlelayout.RootfsDir))
			var paths []string
			for p := range got {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			want := "., a, a/2, b, b/y, bin, bin/sh, dev, e, e/new, f, f/g, f/g/h, proc, sys, tmp"
			if strings.Join(paths, ", ") != want {
				t.Errorf("rootfs holds\n %s\nwant\n %s", strings.Join(paths, ", "), want)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	w := newWorld(t)
	w.layout(t, img(L{Entries: []E{
		{Name: "ro/", Mode: 0o555, UID: 1234, GID: 99},
		{Name: "ro/file", Body: "f", Mode: 0o4755, UID: 1234, GID: 99},
		{Name: "ro/fifo", Typeflag: tar.TypeFifo, Mode: 0o640},
		{Name: "ro/hl", Typeflag: tar.TypeLink, Linkname: "ro/file"},
		{Name: "implicit/dir/file", Body: "i"},
		{Name: "x", Body: "x", PAX: map[string]string{"SCHILY.xattr.user.k": "v"}},
	}}))
	if _, err := w.unpack(t, Options{Privileged: PrivilegedYes}); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(w.bundle, bundlelayout.RootfsDir)
	st := func(p string) *syscall.Stat_t {
		var s syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(rootfs, p), &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	if s := st("ro"); s.Mode&0o7777 != 0o555 || s.Uid != 1234 || s.Gid != 99 {
		t.Errorf("ro: mode %o owner %d:%d", s.Mode&0o7777, s.Uid, s.Gid)
	}
	if s := st("ro/file"); s.Mode&0o7777 != 0o4755 || s.Uid != 1234 || s.Nlink != 2 {
		t.Errorf("ro/file: mode %o owner %d links %d", s.Mode&0o7777, s.Uid, s.Nlink)
	}
	if s := st("ro/fifo"); s.Mode&syscall.S_IFMT != syscall.S_IFIFO || s.Mode&0o777 != 0o640 {
		t.Errorf("ro/fifo: mode %o", s.Mode)
	}
	if s := st("implicit/dir"); s.Mode&0o777 != 0o755 {
		t.Errorf("implicit/dir: mode %o", s.Mode&0o777)
	}
	if s := st("ro/file"); s.Mtim.Sec != 1700000000 {
		t.Errorf("ro/file: mtime %d", s.Mtim.Sec)
	}
	fi, err := os.Stat(w.bundle)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("a privileged bundle is %v, want 0700 (it holds set-id files)", fi.Mode())
	}

	// Unprivileged: the caller owns everything.
	w2 := newWorld(t)
	w2.layout(t, img(L{Entries: []E{{Name: "ro/", Mode: 0o555, UID: 1234}, {Name: "ro/file", Body: "f", UID: 1234}}}))
	if _, err := w2.unpack(t, Options{Privileged: PrivilegedNo}); err != nil {
		t.Fatal(err)
	}
	var s syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(w2.bundle, bundlelayout.RootfsDir, "ro/file"), &s); err != nil {
		t.Fatal(err)
	}
	if int(s.Uid) != os.Getuid() {
		t.Errorf("unprivileged: ro/file owned by %d, want the caller %d", s.Uid, os.Getuid())
	}
	if err := RemoveTree(w2.bundle); err != nil {
		t.Errorf("RemoveTree: %v", err)
	}
}

func TestConfig(t *testing.T) {
	etc := L{Entries: []E{
		{Name: "etc/passwd", Body: "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"},
		{Name: "etc/group", Body: "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n"},
		{Name: "srv/"},
	}}
	im := img(etc)
	im.Config = ocispec.ImageConfig{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"},
		Env: []string{"PATH=/bin", "A=1", "A=2"}, WorkingDir: "/srv/app", User: "app",
		StopSignal: "SIGQUIT", ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Labels: map[string]string{"l": "v"},
	}
	w := newWorld(t)
	w.layout(t, im)
	if _, err := w.unpack(t, Options{}); err != nil {
		t.Fatal(err)
	}
	if errs := spec.ValidateBundle(w.bundle); len(errs) > 0 {
		t.Fatalf("ocitools validate: %v", errs)
	}
	var s specs.Spec
	data, _ := os.ReadFile(filepath.Join(w.bundle, bundlelayout.ConfigFile))
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if strings.Join(p.Args, " ") != "/bin/sh -c echo hi" {
		t.Errorf("args %q", p.Args)
	}
	if strings.Join(p.Env, " ") != "PATH=/bin A=2" {
		t.Errorf("env %q", p.Env)
	}
	if p.Cwd != "/srv/app" || describe(filepath.Join(w.bundle, bundlelayout.RootfsDir, "srv/app")) != "dir" {
		t.Errorf("cwd %q, or it was not made", p.Cwd)
	}
	if p.User.UID != 1000 || p.User.GID != 1000 || len(p.User.AdditionalGids) != 2 {
		t.Errorf("user %+v, want 1000:1000 with groups 10, 29", p.User)
	}
	a := s.Annotations
	if a[AnnotationStopSignal] != "SIGQUIT" || a[AnnotationExposedPorts] != "53/udp,80/tcp" || a["l"] != "v" || a[spec.AnnotationArch] != runtime.GOARCH {
		t.Errorf("annotations %v", a)
	}
	if !p.NoNewPrivileges || p.Capabilities == nil || s.Linux == nil || len(s.Linux.MaskedPaths) == 0 {
		t.Errorf("the hardened defaults are missing: %+v", p)
	}
	// Not the host's name: the manifest digest's first 12 hex digits.
	if want := a[AnnotationManifest]; len(s.Hostname) != 12 || !strings.HasPrefix(want, "sha256:"+s.Hostname) {
		t.Errorf("hostname %q, want the first 12 hex digits of %s", s.Hostname, want)
	}
}

func TestResolveUser(t *testing.T) {
	db := userDB{
		passwd: parsePasswd("root:x:0:0::/:/bin/sh\napp:x:1000:100::/:/bin/sh\nbad line\n"),
		group:  parseGroup("users:x:100:\nwheel:x:10:app\ndocker:x:999:app\n"),
	}
	cases := []struct {
		in      string
		want    specs.User
		wantErr bool
	}{
		{"", specs.User{}, false},
		{"app", specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{10, 999}}, false},
		{"1000", specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{10, 999}}, false},
		{"app:wheel", specs.User{UID: 1000, GID: 10}, false},
		{"app:5", specs.User{UID: 1000, GID: 5}, false},
		{"4242", specs.User{UID: 4242}, false},
		{"4242:4243", specs.User{UID: 4242, GID: 4243}, false},
		{"nobody", specs.User{}, true},
		{"app:nogroup", specs.User{}, true},
		{":", specs.User{}, true},
		{"app:", specs.User{}, true},
		{"4294967296", specs.User{}, true},
		{"app:99999999999999999999", specs.User{}, true},
	}
	if _, err := resolveUser("4294967296:0", db); err == nil || !strings.Contains(err.Error(), "numeric id 4294967296 is out of range (ids go from 0 to 4294967294)") {
		t.Errorf("out of range: %v", err)
	}
	for _, c := range cases {
		got, err := resolveUser(c.in, db)
		if (err != nil) != c.wantErr {
			t.Errorf("%q: error %v", c.in, err)
			continue
		}
		if !c.wantErr && (got.UID != c.want.UID || got.GID != c.want.GID || len(got.AdditionalGids) != len(c.want.AdditionalGids)) {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

// The image's /etc/passwd is read inside the rootfs: a symlink to the host's
// files gives the image's (missing) ones, never the host's.
func TestUsersReadInsideRootfs(t *testing.T) {
	w := newWorld(t)
	if err := os.WriteFile(filepath.Join(w.sentinel, "passwd"), []byte("evil:x:4321:4321::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.snapshot = tree(t, w.sentinel)
	im := img(L{Entries: []E{{Name: "etc/"}, {Name: "etc/passwd", Typeflag: tar.TypeSymlink, Linkname: w.sentinel + "/passwd"}}})
	im.Config.User = "evil"
	w.layout(t, im)
	_, err := w.unpack(t, Options{})
	if err == nil || !strings.Contains(err.Error(), `no user "evil"`) {
		t.Fatalf("got %v, want the user not found in the image", err)
	}
	w.check(t, false)
}

func TestSelection(t *testing.T) {
	w := newWorld(t)
	l, err := unpacktest.NewLayout(filepath.Join(w.dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(arch, marker string) ocispec.Descriptor {
		im := img(L{Entries: []E{{Name: "marker", Body: marker}}})
		im.Arch = arch
		d, err := l.WriteImage(im)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if err := l.AddIndex("multi", []ocispec.Descriptor{mk(other, "other"), mk(runtime.GOARCH, "host")}); err != nil {
		t.Fatal(err)
	}
	// A layout listing each platform's manifest directly, all with one tag.
	a, b := mk(other, "other"), mk(runtime.GOARCH, "host")
	a.Annotations = map[string]string{ocispec.AnnotationRefName: "flat"}
	b.Annotations = map[string]string{ocispec.AnnotationRefName: "flat"}
	l.AddDescriptors(a, b)
	single := img(L{Entries: []E{{Name: "marker", Body: "single"}}})
	single.Tag = "single"
	if _, err := l.AddImage(single); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ref, platform, want, wantErr string
	}{
		{ref: ":multi", want: "host"},
		{ref: ":multi", platform: "linux/" + other, want: "other"},
		{ref: ":single", want: "single"},
		{ref: ":flat", want: "host"},
		{ref: ":flat", platform: "linux/" + other, want: "other"},
		{ref: "", wantErr: "several images"},
		{ref: ":nope", wantErr: `no image tagged "nope"`},
		{ref: ":multi", platform: "linux/s390x", wantErr: "no image for platform linux/s390x"},
		{ref: ":single", platform: "linux/s390x", wantErr: "--platform linux/" + runtime.GOARCH},
	}
	for _, c := range cases {
		t.Run(c.ref+c.platform, func(t *testing.T) {
			os.RemoveAll(w.bundle)
			o := Options{Image: l.Dir + c.ref}
			if c.platform != "" {
				p, err := ParsePlatform(c.platform)
				if err != nil {
					t.Fatal(err)
				}
				o.Platform = p
			}
			_, err := w.unpack(t, o)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want %q", err, c.wantErr)
				}
				w.check(t, false)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(filepath.Join(w.bundle, bundlelayout.RootfsDir, "marker")); got != "reg "+c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestNothingHalfWritten(t *testing.T) {
	t.Run("cancelled", func(t *testing.T) {
		w := newWorld(t)
		w.layout(t, img(L{Entries: manyFiles(10)}))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Unpack(ctx, Options{Image: filepath.Join(w.dir, "layout"), Bundle: w.bundle})
		if err == nil {
			t.Fatal("a cancelled unpack succeeded")
		}
		w.check(t, false)
	})
	t.Run("bundle exists", func(t *testing.T) {
		w := newWorld(t)
		w.layout(t, img())
		os.Mkdir(w.bundle, 0o755)
		if _, err := w.unpack(t, Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no command", func(t *testing.T) {
		w := newWorld(t)
		im := img()
		im.Config.Cmd = nil
		w.layout(t, im)
		if _, err := w.unpack(t, Options{}); err == nil || !strings.Contains(err.Error(), "Entrypoint or Cmd") {
			t.Fatalf("got %v", err)
		}
		w.check(t, false)
		if _, err := w.unpack(t, Options{Args: []string{"/bin/sh", "-c", "true"}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("program missing", func(t *testing.T) {
		w := newWorld(t)
		im := img()
		im.Config.Cmd = []string{"/bin/nothere"}
		w.layout(t, im)
		if _, err := w.unpack(t, Options{}); err == nil || !strings.Contains(err.Error(), "would not start") {
			t.Fatalf("got %v", err)
		}
		w.check(t, false)
	})
}

// /etc/passwd that is not a regular file matters only when User needs it.
func TestPasswdNotAFile(t *testing.T) {
	for _, user := range []string{"", "0", "app"} {
		t.Run("user="+user, func(t *testing.T) {
			w := newWorld(t)
			im := img(L{Entries: []E{{Name: "etc/"}, {Name: "etc/passwd", Typeflag: tar.TypeFifo}}})
			im.Config.User = user
			w.layout(t, im)
			_, err := w.unpack(t, Options{})
			if user == "" && err != nil {
				t.Fatalf("no User, yet: %v", err)
			}
			if user != "" && (err == nil || !strings.Contains(err.Error(), "not a regular file")) {
				t.Fatalf("got %v, want /etc/passwd named as not a regular file", err)
			}
			w.check(t, user == "")
		})
	}
}

func TestDockerMediaTypes(t *testing.T) {
	w := newWorld(t)
	im := img(L{Entries: []E{{Name: "x", Body: "docker"}}})
	im.Docker = true
	w.layout(t, im)
	if _, err := w.unpack(t, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := describe(filepath.Join(w.bundle, bundlelayout.RootfsDir, "x")); got != "reg docker" {
		t.Errorf("x: %s", got)
	}
}

func TestUnknownLayerType(t *testing.T) {
	w := newWorld(t)
	l := w.layout(t, img())
	idx, _ := (&Layout{Dir: l.Dir}).Index()
	d := idx.Manifests[0]
	data, _ := os.ReadFile(l.BlobPath(d.Digest))
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers[0].MediaType = "application/vnd.oci.image.layer.v1.tar+bzip2"
	if _, err := l.AddImageManifest(m, "bz"); err != nil {
		t.Fatal(err)
	}
	_, err := w.unpack(t, Options{Image: l.Dir + ":bz"})
	if err == nil || !strings.Contains(err.Error(), "tar+bzip2") {
		t.Fatalf("got %v, want the media type named", err)
	}
	w.check(t, false)
}

// An image larger than the free space of the bundle's file system is refused
// before the disk fills (here a 16 MiB tmpfs; it needs root to mount).
func TestDiskSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	w := newWorld(t)
	if err := syscall.Mount("tmpfs", w.out, "tmpfs", 0, "size=16m,nr_inodes=2000"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	defer syscall.Unmount(w.out, 0)
	w.layout(t, img(L{Compression: "gzip", Entries: []E{{Name: "big", Body: strings.Repeat("x", 20<<20)}}}))
	_, err := w.unpack(t, Options{})
	if err == nil || !strings.Contains(err.Error(), "free on the file system") {
		t.Fatalf("got %v, want the free space named", err)
	}
	w.check(t, false)
	os.RemoveAll(filepath.Join(w.dir, "layout"))
	w.layout(t, img(L{Entries: manyFiles(2500)}))
	_, err = w.unpack(t, Options{})
	if err == nil || !strings.Contains(err.Error(), "inodes free") {
		t.Fatalf("got %v, want the free inodes named", err)
	}
	w.check(t, false)
}

// Each skipped attribute name is a kind of skip; their number is bounded.
func TestSkipKindsBounded(t *testing.T) {
	pax := map[string]string{}
	for i := 0; i < 100; i++ {
		pax["SCHILY.xattr.trusted.x"+strconv.Itoa(i)] = "v"
	}
	w := newWorld(t)
	w.layout(t, img(L{Entries: []E{{Name: "x", Body: "x", PAX: pax}}}))
	res, err := w.unpack(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range res.Skipped {
		total += s.Count
	}
	if len(res.Skipped) != maxSkipKinds+1 || total != 100 || res.Skipped[maxSkipKinds].What != "other kinds of entries and attributes" {
		t.Errorf("%d kinds, %d skipped; want %d kinds and 100", len(res.Skipped), total, maxSkipKinds+1)
	}
}

// An image config whose Env or Cmd would make config.json bigger than run
// and validate read is refused by unpack, with their limit and message, and
// nothing is left.
func TestConfigTooBig(t *testing.T) {
	big := strings.Repeat("x", readfile.ConfigLimit)
	for name, c := range map[string]ocispec.ImageConfig{
		"env": {Cmd: []string{"/bin/sh"}, Env: []string{"BIG=" + big}},
		"cmd": {Cmd: []string{"/bin/sh", big}},
	} {
		t.Run(name, func(t *testing.T) {
			im := img(L{Entries: []E{{Name: "bin/sh", Body: "#!", Mode: 0o755}}})
			im.Config = c
			w := newWorld(t)
			w.layout(t, im)
			_, err := w.unpack(t, Options{})
			want := fmt.Sprintf("more than the %d bytes allowed", readfile.ConfigLimit)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), bundlelayout.ConfigFile+" is ") {
				t.Fatalf("got %v, want the config.json size refusal (%s)", err, want)
			}
			if ents, _ := os.ReadDir(w.out); len(ents) != 0 {
				t.Errorf("left %v", ents)
			}
		})
	}
}
