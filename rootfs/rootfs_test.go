package rootfs

import (
	"github.com/ocitools/ocitools/layout"

	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/nar"
)

// fakeStore builds store paths under a temporary source root. A tree maps a
// relative path to "file:CONTENT", "exec:CONTENT", "link:TARGET" or "dir".
type fakeStore struct {
	t    *testing.T
	root string
	n    int
}

func newFakeStore(t *testing.T) *fakeStore {
	return &fakeStore{t: t, root: t.TempDir()}
}

// add creates /nix/store/<hash>-name with the given tree ("" is the top).
func (s *fakeStore) add(name string, tree map[string]string) string {
	s.t.Helper()
	s.n++
	hash := strings.Repeat(string("abcdfghijk"[s.n%10]), 31) + string("0123456789"[s.n/10%10])
	sp := "/nix/store/" + hash + "-" + name
	host := s.root + sp
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if top, ok := tree[""]; ok {
		writeNode(s.t, host, top)
		return sp
	}
	writeNode(s.t, host, "dir")
	for rel, spec := range tree {
		p := filepath.Join(host, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			s.t.Fatal(err)
		}
		writeNode(s.t, p, spec)
	}
	return sp
}

func writeNode(t *testing.T, p, spec string) {
	t.Helper()
	kind, arg, _ := strings.Cut(spec, ":")
	var err error
	switch kind {
	case "dir":
		err = os.MkdirAll(p, 0o755)
	case "file":
		err = os.WriteFile(p, []byte(arg), 0o644)
	case "exec":
		err = os.WriteFile(p, []byte(arg), 0o755)
	case "link":
		err = os.Symlink(arg, p)
	default:
		t.Fatalf("bad node spec %q", spec)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// closure hashes the given store paths as Nix would have, and makes them
// read-only as in a real store.
func (s *fakeStore) closure(paths ...string) *derivation.Closure {
	s.t.Helper()
	var items []derivation.PathInfoJSON
	for _, p := range paths {
		h, size, err := nar.HashPath(s.root + p)
		if err != nil {
			s.t.Fatal(err)
		}
		items = append(items, derivation.PathInfoJSON{Path: p, NarHash: nar.Format(h), NarSize: size, References: []string{}})
	}
	c, err := derivation.NewClosure(items)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func readOnly(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()&^0o222)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = RemoveAll(root) })
}

func build(t *testing.T, s *fakeStore, p Plan) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	p.SourceRoot = s.root
	if err := Build(dir, p); err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { _ = RemoveAll(dir) })
	return dir
}

// describe renders a tree as sorted lines "path mode [target|content]".
func describe(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", data)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func TestCopyKeepsModesSymlinksAndEmptyDirs(t *testing.T) {
	s := newFakeStore(t)
	// A symlink that points outside its store path and outside the store; a
	// following copy would fail (the target does not exist) or copy /etc.
	pkg := s.add("pkg", map[string]string{
		"bin/tool":         "exec:#!/bin/sh\necho hi\n",
		"share/doc/README": "file:hello",
		"share/empty":      "dir",
		"lib/outside":      "link:/etc/shadow",
		"lib/dangling":     "link:../nowhere",
		"lib/dirlink":      "link:../share",
		"share/zero":       "file:",
		// Larger than inlineMax: copied by the worker pool, not the walker.
		"lib/big.so":     "exec:" + strings.Repeat("0123456789abcdef", 20000),
		"share/big/data": "file:" + strings.Repeat("x", 3<<20+5),
	})
	file := s.add("single-file", map[string]string{"": "exec:#!/bin/sh\n"})
	link := s.add("single-link", map[string]string{"": "link:" + pkg + "/bin/tool"})
	c := s.closure(pkg, file, link)
	readOnly(t, s.root)

	for _, verify := range []bool{false, true} {
		t.Run(fmt.Sprintf("verify=%v", verify), func(t *testing.T) {
			dir := build(t, s, Plan{Closure: c, Mode: ModeCopy, Verify: verify, Workers: 3})
			for _, p := range []string{pkg, file, link} {
				if got, want := describe(t, dir+p), describe(t, s.root+p); got != want {
					t.Errorf("copy of %s differs:\n got:\n%s\nwant:\n%s", p, got, want)
				}
			}
			if target, err := os.Readlink(dir + pkg + "/lib/outside"); err != nil || target != "/etc/shadow" {
				t.Errorf("symlink to outside: got %q, %v", target, err)
			}
			n, mm, err := verifyBundleDir(t, dir, c, ModeCopy, s.root)
			if err != nil || len(mm) != 0 || n != 3 {
				t.Errorf("verify after build: %d %v %v", n, mm, err)
			}
		})
	}
}

// verifyBundleDir wraps a rootfs into a bundle directory with a manifest.
func verifyBundleDir(t *testing.T, rootfsDir string, c *derivation.Closure, mode, srcRoot string) (int, []Mismatch, error) {
	t.Helper()
	bundle := filepath.Dir(rootfsDir)
	if filepath.Base(rootfsDir) != "rootfs" {
		t.Fatalf("%s is not named rootfs", rootfsDir)
	}
	_ = os.Remove(filepath.Join(bundle, layout.ClosureFile))
	if err := WriteManifest(bundle, c, mode); err != nil {
		t.Fatal(err)
	}
	return verifyBundle(bundle, srcRoot)
}

func TestBindModeCreatesOnlyMountPoints(t *testing.T) {
	s := newFakeStore(t)
	pkg := s.add("pkg", map[string]string{"bin/tool": "exec:x"})
	file := s.add("script", map[string]string{"": "exec:#!/bin/sh\n"})
	c := s.closure(pkg, file)
	readOnly(t, s.root)
	dir := build(t, s, Plan{Closure: c, Mode: ModeBind})
	want := strings.Join([]string{
		". drwxr-xr-x",
		"dev drwxr-xr-x",
		"etc drwxr-xr-x",
		`etc/group -r--r--r-- "root:x:0:\nnogroup:x:65534:\n"`,
		`etc/passwd -r--r--r-- "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"`,
		"nix drwxr-xr-x",
		"nix/store drwxr-xr-x",
		"nix/store/" + filepath.Base(pkg) + " dr-xr-xr-x",
		"nix/store/" + filepath.Base(file) + ` -r--r--r-- ""`,
		"proc drwxr-xr-x",
		"sys drwxr-xr-x",
	}, "\n")
	if got := describe(t, dir); got != want {
		t.Errorf("bind rootfs:\n got:\n%s\nwant:\n%s", got, want)
	}
	n, mm, err := verifyBundleDir(t, dir, c, ModeBind, s.root)
	if err != nil || len(mm) != 0 || n != 2 {
		t.Errorf("verify bind bundle: %d %v %v", n, mm, err)
	}
}

func TestMountPointsAndUsers(t *testing.T) {
	s := newFakeStore(t)
	pkg := s.add("pkg", map[string]string{"bin/tool": "exec:x"})
	c := s.closure(pkg)
	tests := []struct {
		name    string
		plan    Plan
		exists  []string // dirs
		files   []string // empty files
		links   map[string]string
		passwd  string
		wantErr string
	}{
		{
			name:   "mount points and files",
			plan:   Plan{MountPoints: []string{"/data", "/var/lib/app/", "/dev/shm", "/nix/store/" + filepath.Base(pkg)}, MountFiles: []string{"/etc/resolv.conf", "/run/secret"}, UID: 1000, GID: 100},
			exists: []string{"data", "var/lib/app", "dev/shm"},
			files:  []string{"etc/resolv.conf", "run/secret"},
			passwd: "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:100:user:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		},
		{
			name:   "symlinks",
			plan:   Plan{Symlinks: []layout.Symlink{{Path: "/tmp", Target: "/dev/.tmpfs/tmp"}, {Path: "/var/run", Target: "/run"}}},
			exists: []string{"var"},
			links:  map[string]string{"tmp": "/dev/.tmpfs/tmp", "var/run": "/run"},
			passwd: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		},
		{name: "symlink over a mount point", plan: Plan{MountPoints: []string{"/tmp"}, Symlinks: []layout.Symlink{{Path: "/tmp", Target: "/dev/.tmpfs/tmp"}}}, wantErr: "/tmp must be a symlink to /dev/.tmpfs/tmp, but it exists already (a directory"},
		{name: "relative mount point", plan: Plan{MountPoints: []string{"data"}}, wantErr: `mount point "data" is not an absolute path`},
		{name: "inside a store path", plan: Plan{MountPoints: []string{pkg + "/bin/x"}}, wantErr: "is inside a store path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.plan.Closure, tt.plan.Mode = c, ModeCopy
			tt.plan.SourceRoot = s.root
			dir := filepath.Join(t.TempDir(), "rootfs")
			err := Build(dir, tt.plan)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if _, serr := os.Lstat(dir); serr == nil {
					t.Errorf("failed Build left %s behind", dir)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer RemoveAll(dir)
			for _, d := range tt.exists {
				if fi, err := os.Lstat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
					t.Errorf("mount point /%s: %v", d, err)
				}
			}
			for _, f := range tt.files {
				if fi, err := os.Lstat(filepath.Join(dir, f)); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
					t.Errorf("mount file /%s: %v", f, err)
				}
			}
			for l, want := range tt.links {
				if got, err := os.Readlink(filepath.Join(dir, l)); err != nil || got != want {
					t.Errorf("/%s -> %q (%v), want -> %q", l, got, err, want)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "etc/passwd")); string(got) != tt.passwd {
				t.Errorf("passwd = %q, want %q", got, tt.passwd)
			}
		})
	}
}

func TestContents(t *testing.T) {
	s := newFakeStore(t)
	busybox := s.add("busybox", map[string]string{"bin/busybox": "exec:bb", "bin/sh": "link:busybox", "share/man/sh.1": "file:m"})
	tools := s.add("tools", map[string]string{"bin/tool": "exec:t", "share/man/tool.1": "file:m", "etc/profile": "file:p"})
	withEtc := s.add("passwd", map[string]string{"etc/passwd": "file:root:x:0:0::/:/bin/sh\n"})
	clash := s.add("othersh", map[string]string{"bin/sh": "exec:other"})
	all := s.closure(busybox, tools, withEtc, clash)
	readOnly(t, s.root)

	t.Run("merge", func(t *testing.T) {
		dir := build(t, s, Plan{Mode: ModeCopy, Closure: all, Contents: []string{busybox, tools, withEtc, busybox}, MountFiles: []string{"/etc/hosts"}})
		links := map[string]string{
			"bin/sh":           busybox + "/bin/sh",
			"bin/tool":         tools + "/bin/tool",
			"share":            "", // real dir: two sources
			"share/man/sh.1":   busybox + "/share/man/sh.1",
			"share/man/tool.1": tools + "/share/man/tool.1",
			"etc/profile":      tools + "/etc/profile",
			"etc/passwd":       withEtc + "/etc/passwd",
		}
		for rel, want := range links {
			got, err := os.Readlink(filepath.Join(dir, rel))
			if want == "" {
				if err == nil {
					t.Errorf("/%s is a symlink, want a real directory", rel)
				}
				continue
			}
			if err != nil || got != want {
				t.Errorf("/%s -> %q (%v), want -> %q", rel, got, err, want)
			}
		}
		// /bin/sh resolves (within the copied store) to busybox.
		if data, err := os.ReadFile(filepath.Join(dir, busybox, "bin/sh")); err != nil || string(data) != "bb" {
			t.Errorf("bin/sh content %q, %v", data, err)
		}
		// contents brought etc/passwd; group is still written; /etc/hosts was created.
		if fi, err := os.Lstat(filepath.Join(dir, "etc/group")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("etc/group: %v", err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "etc/hosts")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("etc/hosts: %v", err)
		}
	})
	t.Run("conflict names both", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "rootfs")
		err := Build(dir, Plan{Mode: ModeCopy, Closure: all, Contents: []string{busybox, clash}, SourceRoot: s.root})
		if err == nil {
			t.Fatal("no error for two /bin/sh")
		}
		for _, want := range []string{"/bin/sh", busybox + "/bin/sh", clash + "/bin/sh"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})
	t.Run("not a store path", func(t *testing.T) {
		err := Build(filepath.Join(t.TempDir(), "rootfs"), Plan{Mode: ModeCopy, Closure: all, Contents: []string{"/usr"}, SourceRoot: s.root})
		if err == nil || !strings.Contains(err.Error(), `"/usr" is not a store path`) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestVerifyDetectsChanges(t *testing.T) {
	s := newFakeStore(t)
	pkg := s.add("pkg", map[string]string{"bin/tool": "exec:#!/bin/sh\n", "data": "file:abc", "sub/x": "file:x"})
	c := s.closure(pkg)
	readOnly(t, s.root)
	tests := []struct {
		name   string
		change func(t *testing.T, p string) // p is the copied store path (writable)
		want   string
	}{
		{"changed byte", func(t *testing.T, p string) {
			must(t, os.Chmod(p+"/data", 0o644))
			must(t, os.WriteFile(p+"/data", []byte("abd"), 0o644))
			must(t, os.Chmod(p+"/data", 0o444))
		}, pkg + ": contents differ"},
		{"added file", func(t *testing.T, p string) { must(t, os.WriteFile(p+"/sub/new", nil, 0o444)) }, pkg + ": contents differ"},
		{"removed file", func(t *testing.T, p string) { must(t, os.Remove(p+"/sub/x")) }, pkg + ": contents differ"},
		{"executable bit", func(t *testing.T, p string) { must(t, os.Chmod(p+"/bin/tool", 0o444)) }, pkg + ": contents differ"},
		{"removed path", func(t *testing.T, p string) { must(t, RemoveAll(p)) }, pkg + ": missing"},
		{"added path", func(t *testing.T, p string) {
			must(t, os.Mkdir(filepath.Dir(p)+"/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-extra", 0o755))
		}, "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-extra: not in the closure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := build(t, s, Plan{Mode: ModeCopy, Closure: c})
			p := dir + pkg
			// Make the copy writable, as someone tampering would.
			must(t, filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					return os.Chmod(q, 0o755)
				}
				return err
			}))
			must(t, os.Chmod(filepath.Dir(p), 0o755))
			tt.change(t, p)
			_, mm, err := verifyBundleDir(t, dir, c, ModeCopy, s.root)
			if err != nil {
				t.Fatal(err)
			}
			if len(mm) != 1 || !strings.HasPrefix(mm[0].String(), tt.want) {
				t.Errorf("mismatches %v, want one starting %q", mm, tt.want)
			}
		})
	}
}

// The read/write fallback (file systems without copy_file_range) copies exactly.
func TestReadWriteFallback(t *testing.T) {
	dir := t.TempDir()
	data := []byte(strings.Repeat("fallback ", 100000))
	must(t, os.WriteFile(filepath.Join(dir, "in"), data, 0o644))
	in, err := os.Open(filepath.Join(dir, "in"))
	must(t, err)
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "out"))
	must(t, err)
	must(t, readWrite(int(in.Fd()), int(out.Fd()), int64(len(data))))
	must(t, out.Close())
	got, err := os.ReadFile(filepath.Join(dir, "out"))
	must(t, err)
	if string(got) != string(data) {
		t.Fatalf("copied %d bytes, want %d identical ones", len(got), len(data))
	}
	// A source shorter than announced is an error, not a short copy.
	out2, err := os.Create(filepath.Join(dir, "out2"))
	must(t, err)
	defer out2.Close()
	_, _ = in.Seek(0, 0)
	if err := readWrite(int(in.Fd()), int(out2.Fd()), int64(len(data))+1); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("error %v for a short source", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBuildErrors(t *testing.T) {
	s := newFakeStore(t)
	pkg := s.add("pkg", map[string]string{"bin/tool": "exec:x"})
	c := s.closure(pkg)
	missing := derivationClosure(t, "/nix/store/"+strings.Repeat("q", 32)+"-gone")
	tests := []struct {
		name string
		plan Plan
		want string
	}{
		{"bad mode", Plan{Closure: c, Mode: "link"}, `store mode "link" is not valid`},
		{"no closure", Plan{}, "no closure"},
		{"missing store path", Plan{Mode: ModeCopy, Closure: missing}, "gone"},
		{"wrong hash", Plan{Mode: ModeCopy, Closure: wrongHash(t, s, pkg), Verify: true}, pkg + ": NAR hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.plan.SourceRoot = s.root
			dir := filepath.Join(t.TempDir(), "rootfs")
			err := Build(dir, tt.plan)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if _, serr := os.Lstat(dir); serr == nil {
				t.Errorf("failed Build left %s behind", dir)
			}
		})
	}
}

func derivationClosure(t *testing.T, paths ...string) *derivation.Closure {
	var items []derivation.PathInfoJSON
	for _, p := range paths {
		items = append(items, derivation.PathInfoJSON{Path: p, NarHash: "sha256:" + strings.Repeat("0", 52)})
	}
	c, err := derivation.NewClosure(items)
	must(t, err)
	return c
}

func wrongHash(t *testing.T, s *fakeStore, p string) *derivation.Closure {
	_, size, err := nar.HashPath(s.root + p)
	must(t, err)
	c, err := derivation.NewClosure([]derivation.PathInfoJSON{{Path: p, NarHash: "sha256:" + strings.Repeat("1", 52), NarSize: size}})
	must(t, err)
	return c
}
