package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/schemadrift"
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
		// A copy of the fixture's rootfs (root.path is always "rootfs").
		if out, err := exec.Command("cp", "-a", filepath.Join("testdata", "bundles", "ok", "rootfs"), dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
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
	schemadrift.Check(t, "github.com/opencontainers/runtime-spec", "schema", "go generate ./spec")
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

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`{"a":1,"b":{"c":[1,{"d":2,"e":3}],"f":4},"g":[]}`, nil},
		{`{"a":1,"a":2}`, []string{`key "a" appears more than once in the object at /`}},
		{`{"p":{"args":[],"x":{},"args":[1]},"q":1}`, []string{`key "args" appears more than once in the object at /p`}},
		{`{"m":[{"d":1},{"d":1,"t":{"u":1},"d":2}]}`, []string{`key "d" appears more than once in the object at /m/1`}},
		{`{"a":{"b":1},"c":2,"a":3}`, []string{`key "a" appears more than once in the object at /`}},
		{`{"a":`, nil},
	}
	for _, tt := range tests {
		errs := duplicateKeys([]byte(tt.in))
		if len(errs) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.in, errs, tt.want)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(errs[i].Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tt.in, errs[i], w)
			}
		}
	}
}

// Configurations that would escape the bundle, or that a runtime would refuse
// only after the bundle is stored, are validation problems.
func TestValidateRefusesHostile(t *testing.T) {
	adj := func(n int) *int { return &n }
	tests := []struct {
		name string
		edit func(s *specs.Spec)
		want string
	}{
		{"root.path up", func(s *specs.Spec) { s.Root.Path = "../../.." }, `root.path is "../../..": it must be "rootfs"`},
		{"root.path /", func(s *specs.Spec) { s.Root.Path = "/" }, `root.path is "/": it must be "rootfs"`},
		{"relative bind none", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/b", Type: "none", Source: ".", Options: []string{"rbind", "rw"}})
		}, `bind mount at /b has source ".", which is not an absolute path`},
		{"relative bind", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/b", Type: "bind", Source: "rootfs/etc"})
		}, `bind mount at /b has source "rootfs/etc"`},
		{"own copy writable", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/b", Type: "bind", Source: "rootfs/nix/store/00000000000000000000000000000000-x", Options: []string{"rbind", "ro", "rw"}})
		}, `source "rootfs/nix/store/00000000000000000000000000000000-x", the bundle's own copy of a store path: it must be read-only`},
		{"own copy climbing out", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/b", Type: "bind", Source: "rootfs/nix/store/../../../etc", Options: []string{"rbind", "ro"}})
		}, `bind mount at /b has source "rootfs/nix/store/../../../etc", which is not an absolute path`},
		{"own copy missing", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/b", Type: "bind", Source: "rootfs/nix/store/00000000000000000000000000000000-x", Options: []string{"rbind", "ro"}})
		}, `the bind mount at /b: its source "rootfs/nix/store/00000000000000000000000000000000-x" is not in the bundle`},
		{"mount at /", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/", Type: "tmpfs", Source: "tmpfs"})
		}, `destination "/": the root file system is root.path`},
		{"hostname", func(s *specs.Spec) { s.Hostname = strings.Repeat("h", 65) }, "hostname is 65 bytes long: the kernel allows at most 64"},
		{"domainname", func(s *specs.Spec) { s.Domainname = strings.Repeat("h", 65) }, "domainname is 65 bytes long"},
		{"cwd in proc", func(s *specs.Spec) { s.Process.Cwd = "/proc/self" }, `process.cwd "/proc/self" is inside the proc mount at /proc`},
		{"cwd in sys", func(s *specs.Spec) { s.Process.Cwd = "/sys/kernel" }, `process.cwd "/sys/kernel" is inside the sysfs mount at /sys`},
		{"oom high", func(s *specs.Spec) { s.Process.OOMScoreAdj = adj(1001) }, "process.oomScoreAdj 1001 is out of range"},
		{"oom low", func(s *specs.Spec) { s.Process.OOMScoreAdj = adj(-1001) }, "process.oomScoreAdj -1001 is out of range"},
		{"capability", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_NOPE"} }, `process.capabilities.ambient: unknown capability "CAP_NOPE"`},
		{"rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOPE", Soft: 1, Hard: 1})
		}, `process.rlimits: unknown type "RLIMIT_NOPE"`},
		{"soft above hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, "RLIMIT_NOFILE has soft limit 2048 above its hard limit 1024"},
		{"ambient not permitted", func(s *specs.Spec) {
			c := s.Process.Capabilities
			c.Ambient, c.Inheritable = []string{"CAP_SETUID"}, []string{"CAP_SETUID"}
		}, "CAP_SETUID is ambient but not both permitted and inheritable"},
		{"ambient not inheritable", func(s *specs.Spec) {
			c := s.Process.Capabilities
			c.Ambient, c.Permitted, c.Inheritable = []string{"CAP_SETUID"}, append(c.Permitted, "CAP_SETUID"), nil
		}, "CAP_SETUID is ambient but not both permitted and inheritable"},
		{"effective not permitted", func(s *specs.Spec) {
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_CHOWN")
		}, "CAP_CHOWN is effective but not permitted"},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/x"} }, `linux.sysctl: "kernel.core_pattern" is not namespaced`},
		{"net sysctl without netns", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			var keep []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != specs.NetworkNamespace {
					keep = append(keep, ns)
				}
			}
			s.Linux.Namespaces = keep
		}, `"net.ipv4.ip_forward" needs a network namespace`},
		{"cwd a file", func(s *specs.Spec) { s.Process.Cwd = "/bin/hello" }, `process.cwd "/bin/hello" resolves to`},
		{"proc tmpfs", func(s *specs.Spec) {
			for i := range s.Mounts {
				if s.Mounts[i].Destination == "/proc" {
					s.Mounts[i] = specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"}
				}
			}
		}, `/proc must be a mount of type "proc"`},
		{"store mount point", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/nix/store/00000000000000000000000000000000-new", Type: "tmpfs", Source: "tmpfs"})
		}, `destination "/nix/store/00000000000000000000000000000000-new" is under /nix/store but is not in the closure`},
		{"store cwd", func(s *specs.Spec) { s.Process.Cwd = "/nix/store/00000000000000000000000000000000-new" }, `process.cwd "/nix/store/00000000000000000000000000000000-new" is under /nix/store but is not in the closure`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustGenerate(t, `{"args":["/bin/hello"]}`, linuxEnv)
			if errs := Validate(s, filepath.Join("testdata", "bundles", "ok", "rootfs")); len(errs) != 0 {
				t.Fatalf("before the edit: %s", joinErrs(errs))
			}
			tt.edit(s)
			errs := Validate(s, filepath.Join("testdata", "bundles", "ok", "rootfs"))
			got := joinErrs(errs)
			if !strings.Contains(got, tt.want) {
				t.Fatalf("errors do not contain %q:\n%s", tt.want, got)
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), "\n") {
					t.Errorf("error is not one line: %q", e)
				}
			}
		})
	}
}

// ValidateBundle reads config.json only when it is a regular file of sane
// size, reports duplicate keys, and never follows a rootfs symlink.
func TestValidateBundleHostileFiles(t *testing.T) {
	ok, err := os.ReadFile(filepath.Join("testdata", "bundles", "ok", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := func(t *testing.T) string {
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-a", filepath.Join("testdata", "bundles", "ok", "rootfs"), dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		return dir
	}
	tests := []struct {
		name string
		make func(t *testing.T, dir string)
		want string
	}{
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "config.json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
		{"dev zero", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"huge", func(t *testing.T, dir string) {
			big := append(bytes.TrimRight(ok, "}\n"), []byte(`,"annotations":{"x":"`+strings.Repeat("x", 5<<20)+`"}}`)...)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), big, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "bytes allowed"},
		{"duplicate key", func(t *testing.T, dir string) {
			dup := bytes.Replace(ok, []byte(`"cwd"`), []byte(`"cwd": "/tmp", "cwd"`), 1)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), dup, 0o644); err != nil {
				t.Fatal(err)
			}
		}, `key "cwd" appears more than once in the object at /process`},
		{"rootfs symlink", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "config.json"), ok, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "rootfs"), filepath.Join(dir, "real")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("real", filepath.Join(dir, "rootfs")); err != nil {
				t.Fatal(err)
			}
		}, "is not a directory (a symlink is not followed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := bundle(t)
			tt.make(t, dir)
			done := make(chan []error, 1)
			go func() { done <- ValidateBundle(dir) }()
			select {
			case errs := <-done:
				if got := joinErrs(errs); !strings.Contains(got, tt.want) {
					t.Fatalf("errors do not contain %q:\n%s", tt.want, got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ValidateBundle blocked")
			}
		})
	}
}
