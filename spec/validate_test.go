package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const helloPath = "/nix/store/0c5kfzq6xnlvmhba8yvfz3f6zv1j6rj8-hello/bin/hello"

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestValidateBundleFixtures(t *testing.T) {
	tests := []struct {
		bundle string
		want   []string // one substring per expected error; nil means valid
	}{
		{"ok", nil},
		{"nixpkgs", []string{
			"schema: at /mounts/0/options: got null, want array",
			`unknown field "platform"`,
		}},
		{"bad", []string{
			`process.cwd "relative/dir" is not an absolute path`,
			"process.user.uid 4294967295 is out of range",
			`mounts: destination "/data" appears more than once`,
			`mounts[2]: destination "data2" is not an absolute path`,
			`linux.namespaces: "pid" appears more than once`,
			`hostname "nouts" needs a uts namespace`,
		}},
		{"missing", []string{"reading the configuration"}},
	}
	for _, tt := range tests {
		t.Run(tt.bundle, func(t *testing.T) {
			errs := ValidateBundle(filepath.Join("testdata", "bundles", tt.bundle))
			got := joinErrs(errs)
			if tt.want == nil && len(errs) != 0 {
				t.Fatalf("want valid, got:\n%s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not contain %q:\n%s", w, got)
				}
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), "\n") {
					t.Errorf("error is not one line: %q", e)
				}
			}
		})
	}
}

// process.args[0] resolution inside fixture rootfs trees.
func TestValidateProgram(t *testing.T) {
	tests := []struct {
		name, rootfs string
		args         []string
		env          []string
		cwd          string
		want         string // "" means valid
	}{
		{"absolute through relative symlink", "ok", []string{"/bin/hello"}, nil, "/", ""},
		{"store path directly", "ok", []string{helloPath}, nil, "/", ""},
		{"relative to cwd", "ok", []string{"./hello"}, nil, "/bin", ""},
		{"dotdot clamps at root", "ok", []string{"/../../bin/hello"}, nil, "/", ""},
		{"bare name through PATH and absolute symlink", "path", []string{"hello"}, []string{"PATH=/bin:/usr/bin"}, "/", ""},
		{"bare name not in PATH", "path", []string{"hello"}, []string{"PATH=/bin:/sbin"}, "/", "not an executable file in any PATH directory"},
		{"bare name without PATH", "path", []string{"hello"}, nil, "/", "sets no PATH"},
		{"last PATH wins", "path", []string{"hello"}, []string{"PATH=/usr/bin", "PATH=/bin"}, "/", "PATH=/bin"},
		{"missing", "ok", []string{"/nix/store/0c5kfzq6xnlvmhba8yvfz3f6zv1j6rj8-gone/bin/x"}, nil, "/", "does not exist in the rootfs"},
		{"relative symlink cannot climb out", "escape", []string{"/bin/up"}, nil, "/", "/bin/sh does not exist in the rootfs"},
		{"absolute symlink stays inside", "escape", []string{"/bin/abs"}, nil, "/", "/bin/sh does not exist in the rootfs"},
		{"not executable", "noexec", []string{"/bin/data"}, nil, "/", "not executable (mode 0644)"},
		{"directory", "noexec", []string{"/bin/dir"}, nil, "/", "a directory, not a regular file"},
		{"through a file", "noexec", []string{"/bin/data/x"}, nil, "/", "/bin/data is not a directory"},
		{"symlink loop", "loop", []string{"/bin/a"}, nil, "/", "too many levels of symbolic links"},
		{"inside a tmpfs", "ok", []string{"/tmp/x"}, nil, "/", "inside the tmpfs mount at /tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustGenerate(t, `{"args":["/bin/true"]}`, linuxEnv)
			s.Process.Args, s.Process.Env, s.Process.Cwd = tt.args, tt.env, tt.cwd
			errs := Validate(s, filepath.Join("testdata", "bundles", tt.rootfs, "rootfs"))
			got := joinErrs(errs)
			if tt.want == "" {
				if len(errs) != 0 {
					t.Errorf("want valid, got:\n%s", got)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(got, tt.want) || !strings.Contains(got, "process.args[0]") {
				t.Errorf("want one error containing %q, got:\n%s", tt.want, got)
			}
		})
	}
}

// In bind store mode the store paths are not in the rootfs: the check looks at
// the bind sources on this machine, and trusts sources that are not here.
func TestValidateProgramBindMounts(t *testing.T) {
	host := t.TempDir()
	store := filepath.Join(host, "store", "0c5kfzq6xnlvmhba8yvfz3f6zv1j6rj8-hello")
	if err := os.MkdirAll(filepath.Join(store, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "bin", "hello"), []byte("#!/bin/false\n"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello", filepath.Join(store, "bin", "hi")); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(host, "rootfs")
	dest := "/nix/store/0c5kfzq6xnlvmhba8yvfz3f6zv1j6rj8-hello"
	// The rootfs holds the bin directory and the mount point, as in bind mode.
	for _, d := range []string{"bin", dest} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(helloPath, filepath.Join(rootfs, "bin", "hello")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		arg0, source, want string
	}{
		{helloPath, store, ""},
		{"/bin/hello", store, ""},
		{dest + "/bin/hi", store, ""},
		{dest + "/bin/gone", store, "does not exist"},
		{helloPath, filepath.Join(host, "not-on-this-machine"), ""},
	} {
		s := mustGenerate(t, `{"args":["/bin/true"]}`, linuxEnv)
		s.Process.Args = []string{tt.arg0}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: tt.source, Options: []string{"rbind", "ro"}})
		got := joinErrs(Validate(s, rootfs))
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("args[0] %s from %s: got %q, want %q", tt.arg0, tt.source, got, tt.want)
		}
	}
}

// Every generated configuration also validates as a bundle on disk.
func TestGeneratedBundleValidates(t *testing.T) {
	for _, js := range []string{
		`{"args":["/bin/hello"]}`,
		`{"args":["hello"],"env":{"PATH":"/bin"},"user":"1000:1000","hostname":"h","readonly":true}`,
		`{"args":["/bin/hello"],"extraConfig":{"process":{"oomScoreAdj":10}},"capabilities":{"bounding":["kill"]}}`,
	} {
		dir := t.TempDir()
		s := mustGenerate(t, js, linuxEnv)
		// An absolute root.path: the fixture's rootfs, shared read-only.
		rootfs, err := filepath.Abs(filepath.Join("testdata", "bundles", "ok", "rootfs"))
		if err != nil {
			t.Fatal(err)
		}
		s.Root.Path = rootfs
		data, _ := json.Marshal(s)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if errs := ValidateBundle(dir); len(errs) != 0 {
			t.Errorf("%s: %s", js, joinErrs(errs))
		}
	}
}

// spec/schema is an exact copy of the runtime-spec module's schema at the
// version go.mod requires: go generate made it, and it must not drift.
func TestSchemaCopyMatchesModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/runtime-spec").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	upstream, err := filepath.Glob(filepath.Join(dir, "schema", "*.json"))
	if err != nil || len(upstream) == 0 {
		t.Fatalf("no schema files in %s", dir)
	}
	upstream = append(upstream, filepath.Join(dir, "LICENSE"))
	local, _ := filepath.Glob(filepath.Join("schema", "*.json"))
	if len(local)+1 != len(upstream) {
		t.Errorf("spec/schema has %d JSON files, the module %d: run go generate ./spec", len(local), len(upstream)-1)
	}
	for _, f := range upstream {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("schema", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("spec/schema/%s differs from %s (%v): run go generate ./spec", filepath.Base(f), f, err)
		}
	}
}

// The schema is really applied: a few documents it must refuse.
func TestSchemaRefuses(t *testing.T) {
	for doc, want := range map[string]string{
		`{}`: "missing property 'ociVersion'",
		`{"ociVersion":"1.3.0","process":{"cwd":"/","args":"sh"}}`:                                    "/process/args",
		`{"ociVersion":"1.3.0","linux":{"namespaces":[{"type":"nope"}]}}`:                             "/linux/namespaces/0/type",
		`{"ociVersion":"1.3.0","process":{"cwd":"/","user":{"uid":0,"gid":0,"additionalGids":[-1]}}}`: "/process/user/additionalGids/0",
		`not json`: "not JSON",
	} {
		got := joinErrs(schemaCheck([]byte(doc)))
		if !strings.Contains(got, want) {
			t.Errorf("schemaCheck(%s) = %q, want %q", doc, got, want)
		}
	}
}
