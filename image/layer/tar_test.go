package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ocitools/ocitools/image/internal/storetest"
)

type hdr struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	data       string
}

func list(t *testing.T, data []byte) []hdr {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []hdr
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(MTime) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, MTime)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: user/group names %q/%q, want none", h.Name, h.Uname, h.Gname)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, hdr{h.Name, h.Linkname, h.Typeflag, h.Mode, h.Uid, h.Gid, string(b)})
	}
}

func write(t *testing.T, s Spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	pa = storetest.Path('a', "app")
	pb = storetest.Path('b', "lib")
)

func fixture(t *testing.T) string {
	root := storetest.Make(t, []storetest.File{
		{Path: pa + "/bin/app", Data: "#!app", Mode: 0o555},
		{Path: pa + "/bin/app-link", Link: "app"},
		{Path: pa + "/share/z", Data: "z"},
		{Path: pa + "/share/a", Data: "a"},
		{Path: pb + "/lib/libx.so", Data: "lib"},
	})
	// A hard link: written as a second regular file.
	if err := os.Link(filepath.Join(root, pa, "share/a"), filepath.Join(root, pa, "share/hard")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestWriteEntries(t *testing.T) {
	root := fixture(t)
	got := list(t, write(t, Spec{StorePaths: []string{pb, pa}, Root: root}))
	rel := func(p string) string { return strings.TrimPrefix(p, "/") }
	want := []hdr{
		{name: "nix/", typ: tar.TypeDir, mode: 0o755},
		{name: "nix/store/", typ: tar.TypeDir, mode: 0o755},
		{name: rel(pa) + "/", typ: tar.TypeDir, mode: 0o755},
		{name: rel(pa) + "/bin/", typ: tar.TypeDir, mode: 0o755},
		{name: rel(pa) + "/bin/app", typ: tar.TypeReg, mode: 0o555, data: "#!app"},
		{name: rel(pa) + "/bin/app-link", typ: tar.TypeSymlink, mode: 0o777, link: "app"},
		{name: rel(pa) + "/share/", typ: tar.TypeDir, mode: 0o755},
		{name: rel(pa) + "/share/a", typ: tar.TypeReg, mode: 0o444, data: "a"},
		{name: rel(pa) + "/share/hard", typ: tar.TypeReg, mode: 0o444, data: "a"},
		{name: rel(pa) + "/share/z", typ: tar.TypeReg, mode: 0o444, data: "z"},
		{name: rel(pb) + "/", typ: tar.TypeDir, mode: 0o755},
		{name: rel(pb) + "/lib/", typ: tar.TypeDir, mode: 0o755},
		{name: rel(pb) + "/lib/libx.so", typ: tar.TypeReg, mode: 0o444, data: "lib"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The same input gives the same bytes, whatever the order paths are given in.
func TestWriteDeterministic(t *testing.T) {
	root := fixture(t)
	a := write(t, Spec{StorePaths: []string{pa, pb}, Root: root})
	b := write(t, Spec{StorePaths: []string{pb, pa}, Root: root})
	if !bytes.Equal(a, b) {
		t.Error("two writes of the same paths differ")
	}
}

// /nix and /nix/store are the same in every layer, so that the order layers
// are applied in cannot change them.
func TestStoreDirsIdentical(t *testing.T) {
	root := fixture(t)
	for _, p := range []string{pa, pb} {
		got := list(t, write(t, Spec{StorePaths: []string{p}, Root: root}))
		if got[0] != (hdr{name: "nix/", typ: tar.TypeDir, mode: 0o755}) || got[1] != (hdr{name: "nix/store/", typ: tar.TypeDir, mode: 0o755}) {
			t.Errorf("layer of %s starts with %+v %+v", p, got[0], got[1])
		}
	}
}

func TestPerms(t *testing.T) {
	root := fixture(t)
	mode, uid, gid := int64(0o700), 1000, 100
	got := list(t, write(t, Spec{StorePaths: []string{pa}, Root: root, Perms: []Perm{
		{Path: pa + "/bin/app", Mode: &mode},
		{Path: pa + "/share", UID: &uid, GID: &gid, Recursive: true},
	}}))
	for _, h := range got {
		switch {
		case strings.HasSuffix(h.name, "/bin/app"):
			if h.mode != 0o700 || h.uid != 0 {
				t.Errorf("%s: mode %o uid %d, want 0700 and 0", h.name, h.mode, h.uid)
			}
		case strings.Contains(h.name, "/share"):
			if h.uid != 1000 || h.gid != 100 {
				t.Errorf("%s: owner %d:%d, want 1000:100 (recursive)", h.name, h.uid, h.gid)
			}
		default:
			if h.uid != 0 || h.gid != 0 {
				t.Errorf("%s: owner %d:%d, want 0:0", h.name, h.uid, h.gid)
			}
		}
	}
}

func TestGeneratedEntries(t *testing.T) {
	root := fixture(t)
	got := list(t, write(t, Spec{Root: root, Entries: []Entry{
		{Path: "/usr", Dir: true},
		{Path: "/bin", Linkname: pa + "/bin"},
		{Path: "/usr/lib", Linkname: pb + "/lib"},
	}}))
	want := []hdr{
		{name: "bin", typ: tar.TypeSymlink, mode: 0o777, link: pa + "/bin"},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/lib", typ: tar.TypeSymlink, mode: 0o777, link: pb + "/lib"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Generated files, and directories with their own mode and owner (the Nix
// database, /etc files): parents come from the spec's owner.
func TestGeneratedFilesAndOwners(t *testing.T) {
	got := list(t, write(t, Spec{UID: 7, GID: 8, Entries: []Entry{
		{Path: "/nix/var/nix/db/schema", File: true, Data: []byte("10"), UID: 1000, GID: 100},
		{Path: "/nix/var/nix/db", Dir: true, Mode: 0o700, UID: 1000, GID: 100},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
		{Path: "/etc/secret", File: true, Mode: 0o600},
	}}))
	want := []hdr{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755, uid: 7, gid: 8},
		{name: "etc/secret", typ: tar.TypeReg, mode: 0o600},
		{name: "nix/", typ: tar.TypeDir, mode: 0o755, uid: 7, gid: 8},
		{name: "nix/var/", typ: tar.TypeDir, mode: 0o755, uid: 7, gid: 8},
		{name: "nix/var/nix/", typ: tar.TypeDir, mode: 0o755, uid: 7, gid: 8},
		{name: "nix/var/nix/db/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 100},
		{name: "nix/var/nix/db/schema", typ: tar.TypeReg, mode: 0o644, uid: 1000, gid: 100, data: "10"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Spec.UID and GID own every store entry and /nix, /nix/store; perms still win.
func TestSpecOwner(t *testing.T) {
	root := fixture(t)
	zero := 0
	got := list(t, write(t, Spec{StorePaths: []string{pa}, Root: root, UID: 1000, GID: 100, Perms: []Perm{{Path: pa + "/bin/app", UID: &zero}}}))
	for _, h := range got {
		wantUID := 1000
		if strings.HasSuffix(h.name, "/bin/app") {
			wantUID = 0
		}
		if h.uid != wantUID || h.gid != 100 {
			t.Errorf("%s: owner %d:%d, want %d:100", h.name, h.uid, h.gid, wantUID)
		}
	}
}

// Long names need PAX records; they are written the same way every time.
func TestLongNames(t *testing.T) {
	long := pa + "/" + strings.Repeat("d", 90) + "/" + strings.Repeat("f", 120)
	root := storetest.Make(t, []storetest.File{{Path: long, Data: "x"}})
	a := write(t, Spec{StorePaths: []string{pa}, Root: root})
	b := write(t, Spec{StorePaths: []string{pa}, Root: root})
	if !bytes.Equal(a, b) {
		t.Error("two writes differ")
	}
	got := list(t, a)
	if got[len(got)-1].name != strings.TrimPrefix(long, "/") {
		t.Errorf("last entry %q", got[len(got)-1].name)
	}
}

func TestWriteErrors(t *testing.T) {
	root := fixture(t)
	if err := syscall.Mkfifo(filepath.Join(root, pa, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"special file", Spec{StorePaths: []string{pa}, Root: root}, "not a directory, regular file or symlink"},
		{"not a store path", Spec{StorePaths: []string{"/etc"}}, "not a store path"},
		{"sub-path", Spec{StorePaths: []string{pa + "/bin"}}, "not a store path"},
		{"missing", Spec{StorePaths: []string{pb + "x"}, Root: root}, "no such file"},
		{"twice", Spec{StorePaths: []string{pb, pb}, Root: root}, "given twice"},
		{"relative entry", Spec{Entries: []Entry{{Path: "bin", Dir: true}}}, "not an absolute path"},
		{"bad mode", Spec{Entries: []Entry{{Path: "/bin", Dir: true, Mode: 0o10000}}}, "not a valid entry"},
		{"negative owner", Spec{Entries: []Entry{{Path: "/f", File: true, UID: -1}}}, "not a valid entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(io.Discard, tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	if err := Write(io.Discard, Spec{StorePaths: []string{pa}, Root: root}); !errors.Is(err, ErrSpecial) {
		t.Errorf("fifo: %v is not ErrSpecial", err)
	}
}
