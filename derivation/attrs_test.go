package derivation

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nixhash"
)

const (
	realBusybox = "/nix/store/980anh6dywkxmrhyscfwdgh4ik2dppi1-capture-busybox"
	realDep     = "/nix/store/dfnaghxb0dnaj56w53rhr1587gg8znbs-capture-dep"
)

func TestParseAttrsFixtures(t *testing.T) {
	tests := []struct {
		file    string
		wantErr string // "" for success
	}{
		{"attrs-real.json", ""},
		{"ok-minimal.json", ""},
		{"ref-outside.json", realDep + " refers to " + realBusybox + ", which the closure does not contain"},
		{"duplicate.json", realBusybox + " is listed twice"},
		{"bad-narhash.json", `narHash "sha256:notbase32"`},
		{"bad-narhash-algo.json", `narHash "md5:00"`},
		{"not-store-path.json", `"/usr/lib/x" is not a valid store path`},
		{"subpath.json", `it has a trailing path "/bin/sh"`},
		{"bad-hash-chars.json", "-bad-hash-chars\" is not a valid store path"},
		{"bad-reference.json", `reference: "relative" is not a valid store path`},
		{"no-closure.json", `no "closure" key`},
		{"no-container.json", `no "container" attribute`},
		{"truncated.json", "not valid JSON"},
		{"closure-not-list.json", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			a, err := ReadAttrsFile(path, ContainerKey)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q, want one naming %s and containing %q", err, path, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Closure.StorePaths(); strings.Join(got, " ") != realBusybox+" "+realDep {
				t.Errorf("closure %v", got)
			}
			dep, ok := a.Closure.Lookup(realDep)
			if !ok || len(dep.References) != 1 || dep.References[0] != realBusybox {
				t.Errorf("dep references %+v", dep)
			}
			if out, err := a.Out(); err != nil || !strings.HasPrefix(out, "/nix/store/zrsnx20w1cd4d42n0p7l9ac50pcdllv3-") {
				t.Errorf("Out() = %q, %v", out, err)
			}
			if len(a.Options) == 0 {
				t.Error("no options")
			}
		})
	}
}

func TestParseAttrsRealValues(t *testing.T) {
	a, err := ReadAttrsFile(filepath.Join("testdata", "attrs-real.json"), ContainerKey)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := a.Closure.Lookup(realBusybox)
	if got := bb.NarHash.Format(nixhash.NixBase32, true); got != "sha256:1q8d572y0czwykhyh20djy5lqs7f6ckbcr43ynpbrn3l7blgvb6z" {
		t.Errorf("narHash parsed as %q", got)
	}
	if bb.NarSize != 1982760 || a.Name != "capture-attrs" || a.System != "x86_64-linux" {
		t.Errorf("values: narSize %d name %q system %q", bb.NarSize, a.Name, a.System)
	}
	if bb.StorePath.Name != "capture-busybox" {
		t.Errorf("store path name %q", bb.StorePath.Name)
	}
}

func TestOutMissing(t *testing.T) {
	a := &Attrs{Outputs: map[string]string{"dev": "/nix/store/x"}}
	if _, err := a.Out(); err == nil {
		t.Fatal("no error without an out output")
	}
}

func TestFindAttrsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, attrsFileName)
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env, top, want string
	}{
		{"variable points at a file", file, "", file},
		{"variable points at a missing host path (sandbox)", "/build/host-side/.attrs.json", dir, file},
		{"no variable", "", dir, file},
		{"nothing", "", filepath.Join(dir, "elsewhere"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NIX_ATTRS_JSON_FILE", tt.env)
			t.Setenv("NIX_BUILD_TOP", tt.top)
			chdir(t, t.TempDir())
			got, err := FindAttrsFile()
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "__structuredAttrs") {
					t.Fatalf("got %q, %v; want an error explaining the builder", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// chdir changes the working directory for one test (t.Chdir needs Go 1.24;
// the module says go 1.22).
func chdir(t *testing.T, dir string) {
	t.Helper()
	old, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(old) })
}

// FuzzParseAttrs: the attrs come from a derivation anyone can write; any input
// must give either attrs or an error, never a panic.
func FuzzParseAttrs(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAttrs(data, ContainerKey)
		if err != nil {
			return
		}
		// A parsed closure is closed under references.
		for _, p := range a.Closure.Paths {
			for _, r := range p.References {
				if _, ok := a.Closure.Lookup(r); !ok {
					t.Fatalf("reference %s of %s not in the closure", r, p.Path())
				}
			}
		}
	})
}

// ReadAttrsFile reads only a bounded regular file: a FIFO (outside Nix, --attrs
// is the user's) must not block it, nor a device exhaust memory.
func TestReadAttrsFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(AttrsLimit + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tt := range []struct{ path, want string }{
		{fifo, "not a regular file"},
		{"/dev/zero", "not a regular file"},
		{big, "more than the"},
	} {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := ReadAttrsFile(tt.path, ContainerKey); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("ReadAttrsFile(%s) = %v, want an error with %q", tt.path, err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadAttrsFile(%s) still blocks after 10 s", tt.path)
			}
		})
	}
}
