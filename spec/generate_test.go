package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/options"
)

// defaultPath is the PATH the argument table gives process.env.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var update = flag.Bool("update", false, "rewrite golden files")

func mustGenerate(t *testing.T, js string, env testEnv) *specs.Spec {
	t.Helper()
	o, err := options.Parse([]byte(js), env.System)
	if err != nil {
		t.Fatalf("options.Parse(%s): %v", js, err)
	}
	s, err := Generate(o, env.StorePaths)
	if err != nil {
		t.Fatalf("Generate(%s): %v", js, err)
	}
	if errs := Validate(s, ""); len(errs) > 0 {
		t.Fatalf("generated config does not validate: %v", errs)
	}
	return s
}

func marshal(t *testing.T, s *specs.Spec) []byte {
	t.Helper()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(data, '\n')
}

// testEnv is what a build gives besides the arguments: its Nix system and closure.
type testEnv struct {
	System     string
	StorePaths []string
}

var linuxEnv = testEnv{System: "x86_64-linux"}

// The default configuration, byte for byte (also the config.json of the "ok"
// fixture bundle). Run with -update after a deliberate change.
func TestGenerateDefaultGolden(t *testing.T) {
	got := marshal(t, mustGenerate(t, `{"args":["/bin/hello"]}`, linuxEnv))
	golden := "testdata/bundles/ok/config.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("default config differs from %s (run go test -run Golden -update after a deliberate change):\n%s", golden, got)
	}
}

// Same options, same bytes: maps (env, annotations, rlimits) must not leak
// their random order.
func TestGenerateDeterministic(t *testing.T) {
	js := `{"args":["x"],"env":{"Z":"1","A":"2","M":"3"},"annotations":{"b":"1","a":"2"},
	  "rlimits":{"NPROC":5,"CORE":0,"NOFILE":9},"mounts":{"/z":{"type":"tmpfs","source":"t"},"/a":{"type":"tmpfs","source":"t"},"/a/b":{"type":"tmpfs","source":"t"}},
	  "storeMode":"bind"}`
	env := testEnv{System: "x86_64-linux", StorePaths: []string{"/nix/store/a-1", "/nix/store/b-2"}}
	first := marshal(t, mustGenerate(t, js, env))
	for i := 0; i < 20; i++ {
		if got := marshal(t, mustGenerate(t, js, env)); !bytes.Equal(got, first) {
			t.Fatalf("run %d differs:\n%s\nvs\n%s", i, got, first)
		}
	}
}

func findMount(s *specs.Spec, d string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == d {
			return &s.Mounts[i]
		}
	}
	return nil
}

// One case per argument: what it changes in the generated configuration.
func TestGenerateArguments(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		env   testEnv
		check func(t *testing.T, s *specs.Spec)
	}{
		{"defaults", `{"args":["/bin/sh","-c","x"]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			p := s.Process
			if p.User.UID != 0 || p.User.GID != 0 || p.Cwd != "/" || p.Terminal || !p.NoNewPrivileges {
				t.Errorf("process defaults: %+v", p)
			}
			if !reflect.DeepEqual(p.Env, []string{"PATH=" + defaultPath}) {
				t.Errorf("env = %v", p.Env)
			}
			if !reflect.DeepEqual(p.Args, []string{"/bin/sh", "-c", "x"}) {
				t.Errorf("args = %v", p.Args)
			}
			want := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
			c := p.Capabilities
			if !reflect.DeepEqual(c.Bounding, want) || !reflect.DeepEqual(c.Effective, want) || !reflect.DeepEqual(c.Permitted, want) || c.Ambient != nil || c.Inheritable != nil {
				t.Errorf("capabilities = %+v", c)
			}
			if !reflect.DeepEqual(p.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}) {
				t.Errorf("rlimits = %v", p.Rlimits)
			}
			var ns []string
			for _, n := range s.Linux.Namespaces {
				ns = append(ns, string(n.Type))
			}
			if strings.Join(ns, ",") != "pid,network,mount,ipc,uts" {
				t.Errorf("namespaces = %v", ns)
			}
			if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.MaskedPaths, "/proc/keys") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
				t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
			if s.Root.Path != "rootfs" || s.Root.Readonly || s.Version != specs.Version || s.Hostname != "" {
				t.Errorf("root %+v version %s hostname %q", s.Root, s.Version, s.Hostname)
			}
			if s.Annotations[AnnotationOS] != "linux" || s.Annotations[AnnotationArch] != "amd64" {
				t.Errorf("annotations = %v", s.Annotations)
			}
			if m := findMount(s, "/tmp"); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "mode=1777") {
				t.Errorf("/tmp mount = %+v", m)
			}
			if m := findMount(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=64m") {
				t.Errorf("/dev/shm mount = %+v", m)
			}
			for _, m := range s.Mounts {
				if m.Options == nil && m.Type != "proc" {
					t.Errorf("mount %s has null options", m.Destination)
				}
			}
		}},
		{"readonly", `{"args":["x"],"readonly":true}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly {
				t.Error("root not read-only")
			}
		}},
		{"arch alias", `{"args":["x"],"arch":"aarch64"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Annotations[AnnotationArch] != "arm64" {
				t.Errorf("arch = %q", s.Annotations[AnnotationArch])
			}
		}},
		{"arch from system", `{"args":["x"]}`, testEnv{System: "aarch64-linux"}, func(t *testing.T, s *specs.Spec) {
			if s.Annotations[AnnotationArch] != "arm64" {
				t.Errorf("arch = %q", s.Annotations[AnnotationArch])
			}
		}},
		{"os darwin has no linux sections", `{"args":["x"],"os":"darwin"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Linux != nil || s.Process.Capabilities != nil || s.Process.NoNewPrivileges || len(s.Mounts) != 0 {
				t.Errorf("linux sections on darwin: linux %+v caps %+v mounts %v", s.Linux, s.Process.Capabilities, s.Mounts)
			}
			if s.Annotations[AnnotationOS] != "darwin" {
				t.Errorf("os annotation %q", s.Annotations[AnnotationOS])
			}
		}},
		{"env object keeps PATH default", `{"args":["x"],"env":{"B":"2","A":"1"}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Env, []string{"PATH=" + defaultPath, "A=1", "B=2"}) {
				t.Errorf("env = %v", s.Process.Env)
			}
		}},
		{"env list sets PATH", `{"args":["x"],"env":["PATH=/opt/bin","X=y=z"]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Env, []string{"PATH=/opt/bin", "X=y=z"}) {
				t.Errorf("env = %v", s.Process.Env)
			}
		}},
		{"workingDir", `{"args":["x"],"workingDir":"/srv/app/"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/srv/app" {
				t.Errorf("cwd = %q", s.Process.Cwd)
			}
		}},
		{"user string", `{"args":["x"],"user":"1000:100"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 1000 || s.Process.User.GID != 100 {
				t.Errorf("user = %+v", s.Process.User)
			}
		}},
		{"user object", `{"args":["x"],"user":{"uid":7,"gid":8,"additionalGids":[9,10]}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.User, specs.User{UID: 7, GID: 8, AdditionalGids: []uint32{9, 10}}) {
				t.Errorf("user = %+v", s.Process.User)
			}
		}},
		{"hostname", `{"args":["x"],"hostname":"box"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Hostname != "box" {
				t.Errorf("hostname = %q", s.Hostname)
			}
		}},
		{"terminal", `{"args":["x"],"terminal":true}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !s.Process.Terminal {
				t.Error("terminal false")
			}
		}},
		{"capabilities list", `{"args":["x"],"capabilities":["sys_admin","kill","CAP_KILL"]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			want := []string{"CAP_KILL", "CAP_SYS_ADMIN"}
			c := s.Process.Capabilities
			if !reflect.DeepEqual(c.Bounding, want) || !reflect.DeepEqual(c.Effective, want) || !reflect.DeepEqual(c.Permitted, want) || c.Ambient != nil {
				t.Errorf("capabilities = %+v", c)
			}
		}},
		{"capabilities list for a non-root user are ambient too", `{"args":["x"],"user":"1000","capabilities":["kill"]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			want := []string{"CAP_KILL"}
			c := s.Process.Capabilities
			if !reflect.DeepEqual(c.Inheritable, want) || !reflect.DeepEqual(c.Ambient, want) || !reflect.DeepEqual(c.Effective, want) {
				t.Errorf("capabilities = %+v", c)
			}
		}},
		{"default capabilities for a non-root user are not ambient", `{"args":["x"],"user":"1000"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if c := s.Process.Capabilities; c.Ambient != nil || c.Inheritable != nil {
				t.Errorf("capabilities = %+v", c)
			}
		}},
		{"capabilities none", `{"args":["x"],"capabilities":[]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities
			if c == nil || len(c.Bounding)+len(c.Effective)+len(c.Permitted) != 0 {
				t.Errorf("capabilities = %+v", c)
			}
		}},
		{"capabilities object", `{"args":["x"],"capabilities":{"bounding":["KILL","CHOWN"],"ambient":["KILL"]}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities
			if !reflect.DeepEqual(c.Bounding, []string{"CAP_CHOWN", "CAP_KILL"}) || !reflect.DeepEqual(c.Ambient, []string{"CAP_KILL"}) || len(c.Effective) != 0 {
				t.Errorf("capabilities = %+v", c)
			}
		}},
		{"noNewPrivileges false", `{"args":["x"],"noNewPrivileges":false}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Process.NoNewPrivileges {
				t.Error("noNewPrivileges still true")
			}
		}},
		{"rlimits replace the default", `{"args":["x"],"rlimits":{"nproc":{"soft":10,"hard":20},"CORE":0}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			want := []specs.POSIXRlimit{{Type: "RLIMIT_CORE"}, {Type: "RLIMIT_NPROC", Soft: 10, Hard: 20}}
			if !reflect.DeepEqual(s.Process.Rlimits, want) {
				t.Errorf("rlimits = %+v", s.Process.Rlimits)
			}
		}},
		{"namespaces", `{"args":["x"],"namespaces":["mount",{"type":"network","path":"/run/netns/a"},"user"]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			want := []specs.LinuxNamespace{{Type: "mount"}, {Type: "network", Path: "/run/netns/a"}, {Type: "user"}}
			if !reflect.DeepEqual(s.Linux.Namespaces, want) {
				t.Errorf("namespaces = %+v", s.Linux.Namespaces)
			}
		}},
		{"maskedPaths and readonlyPaths replace", `{"args":["x"],"maskedPaths":["/proc/a"],"readonlyPaths":[]}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Linux.MaskedPaths, []string{"/proc/a"}) || len(s.Linux.ReadonlyPaths) != 0 {
				t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
		}},
		{"shmSize", `{"args":["x"],"shmSize":"256m"}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			m := findMount(s, "/dev/shm")
			if m == nil || !slices.Contains(m.Options, "size=256m") || slices.Contains(m.Options, "size=64m") {
				t.Errorf("/dev/shm = %+v", m)
			}
		}},
		{"shmSize bytes", `{"args":["x"],"shmSize":1000}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if m := findMount(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=1000") {
				t.Errorf("/dev/shm = %+v", m)
			}
		}},
		{"annotations merge, user wins", `{"args":["x"],"annotations":{"a":"b","org.opencontainers.image.os":"custom"}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Annotations["a"] != "b" || s.Annotations[AnnotationOS] != "custom" || s.Annotations[AnnotationArch] != "amd64" {
				t.Errorf("annotations = %v", s.Annotations)
			}
		}},
		{"mounts merge and sort", `{"args":["x"],"mounts":{"/data/sub":{"type":"tmpfs","source":"t"},"/data":{"type":"tmpfs","source":"t","options":["size=1m"]},"/dev/shm":{"type":"tmpfs","source":"shm"}}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			var order []string
			for _, m := range s.Mounts {
				order = append(order, m.Destination)
			}
			// /data is redirected to /dev/.tmpfs/data: it and its child follow /dev.
			want := "/dev,/data,/data/sub,/tmp,/dev/mqueue,/dev/pts,/dev/shm,/proc,/sys,/sys/fs/cgroup"
			if strings.Join(order, ",") != want {
				t.Errorf("order = %v, want %s", order, want)
			}
			if m := findMount(s, "/dev/shm"); m.Options == nil || len(m.Options) != 0 {
				t.Errorf("user /dev/shm did not replace the default: %+v", m)
			}
		}},
		{"bind store mode", `{"args":["x"],"storeMode":"bind"}`, testEnv{System: "x86_64-linux", StorePaths: []string{"/nix/store/aaa-a", "/nix/store/bbb-b"}}, func(t *testing.T, s *specs.Spec) {
			for _, p := range []string{"/nix/store/aaa-a", "/nix/store/bbb-b"} {
				m := findMount(s, p)
				if m == nil || m.Source != p || m.Type != "bind" || !reflect.DeepEqual(m.Options, []string{"rbind", "ro"}) {
					t.Errorf("bind of %s = %+v", p, m)
				}
			}
		}},
		{"copy mode has no store binds", `{"args":["x"]}`, testEnv{System: "x86_64-linux", StorePaths: []string{"/nix/store/aaa-a"}}, func(t *testing.T, s *specs.Spec) {
			if findMount(s, "/nix/store/aaa-a") != nil {
				t.Error("store path bound in copy mode")
			}
		}},
		{"extraConfig sets an unnamed field", `{"args":["x"],"extraConfig":{"process":{"oomScoreAdj":100},"linux":{"sysctl":{"net.ipv4.ip_forward":"1"}}}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 100 || s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
				t.Errorf("oomScoreAdj %v sysctl %v", s.Process.OOMScoreAdj, s.Linux.Sysctl)
			}
			if len(s.Linux.Namespaces) != 5 || s.Process.Cwd != "/" {
				t.Error("extraConfig lost fields it did not name")
			}
		}},
		{"extraConfig lists replace, null deletes", `{"args":["x"],"extraConfig":{"linux":{"maskedPaths":["/proc/x"],"readonlyPaths":null},"process":{"env":["A=b"]}}}`, linuxEnv, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Linux.MaskedPaths, []string{"/proc/x"}) || s.Linux.ReadonlyPaths != nil || !reflect.DeepEqual(s.Process.Env, []string{"A=b"}) {
				t.Errorf("masked %v readonly %v env %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Process.Env)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustGenerate(t, tt.json, tt.env))
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name, json string
		env        testEnv
		want       string
	}{
		{"extraConfig breaks the schema", `{"args":["x"],"extraConfig":{"process":{"args":"x"}}}`, linuxEnv, "`extraConfig` makes config.json invalid"},
		{"extraConfig unknown field", `{"args":["x"],"extraConfig":{"proces":{"cwd":"/"}}}`, linuxEnv, `unknown field "proces"`},
		{"extraConfig relative cwd", `{"args":["x"],"extraConfig":{"process":{"cwd":"rel"}}}`, linuxEnv, "process.cwd \"rel\" is not an absolute path"},
		{"extraConfig hostname without uts", `{"args":["x"],"extraConfig":{"hostname":"h","linux":{"namespaces":[{"type":"pid"}]}}}`, linuxEnv, "needs a uts namespace"},
		{"unknown system", `{"args":["x"]}`, testEnv{System: "z80-cpm"}, `cannot derive the architecture from the build's system "z80-cpm"; set`},
		{"relative store path", `{"args":["x"],"storeMode":"bind"}`, testEnv{System: "x86_64-linux", StorePaths: []string{"nix/store/a"}}, "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := options.Parse([]byte(tt.json), tt.env.System)
			if err == nil {
				_, err = Generate(o, tt.env.StorePaths)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Generate(nil, nil); err == nil {
		t.Error("Generate(nil) succeeded")
	}
}

func TestDeepMerge(t *testing.T) {
	tests := []struct{ base, patch, want string }{
		{`{"a":1}`, `{"b":2}`, `{"a":1,"b":2}`},
		{`{"a":{"x":1,"y":2}}`, `{"a":{"y":3}}`, `{"a":{"x":1,"y":3}}`},
		{`{"a":[1,2]}`, `{"a":[3]}`, `{"a":[3]}`},
		{`{"a":1,"b":2}`, `{"a":null}`, `{"b":2}`},
		{`{"a":1}`, `{"a":{"b":null,"c":1}}`, `{"a":{"c":1}}`},
		{`{"a":{"b":1}}`, `{"a":"s"}`, `{"a":"s"}`},
		{`[1]`, `{"a":1}`, `{"a":1}`},
		{`{"a":1}`, `[2]`, `[2]`},
	}
	for _, tt := range tests {
		var base, patch, want any
		for _, p := range []struct {
			s string
			v *any
		}{{tt.base, &base}, {tt.patch, &patch}, {tt.want, &want}} {
			if err := json.Unmarshal([]byte(p.s), p.v); err != nil {
				t.Fatal(err)
			}
		}
		baseCopy, _ := json.Marshal(base)
		got := deepMerge(base, patch)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("deepMerge(%s, %s) = %v, want %s", tt.base, tt.patch, got, tt.want)
		}
		if after, _ := json.Marshal(base); !bytes.Equal(after, baseCopy) {
			t.Errorf("deepMerge modified its base: %s", after)
		}
	}
}

func TestRootfsNeeds(t *testing.T) {
	s := mustGenerate(t, `{"args":["x"],"workingDir":"/srv/app","storeMode":"bind",
	  "mounts":{"/data":{"type":"tmpfs","source":"t"},"/etc/app.conf":{"type":"bind","source":"/host/app.conf"},"/aux":{"type":"bind","source":"/srv/aux"},
	    "/host":{"type":"bind","source":"/h","options":["rbind"]},"/host/inner":{"type":"bind","source":"/h2"},
	    "/scratch":{"type":"tmpfs","source":"t","options":["mode=0777"]},"/scratch2/x":{"type":"tmpfs","source":"t","options":["mode=1777"]}}}`,
		testEnv{System: "x86_64-linux", StorePaths: []string{"/nix/store/aaa-a"}})
	dirs, files := RootfsNeeds(s)
	wantDirs := []string{"/aux", "/dev", "/etc/app.conf", "/host", "/host/inner", "/proc", "/srv/app", "/sys"}
	if !reflect.DeepEqual(dirs, wantDirs) || len(files) != 0 {
		t.Errorf("RootfsNeeds = %v, %v; want %v", dirs, files, wantDirs)
	}
	dirs, files = RootfsNeedsWith(s, func(src string) bool { return src == "/host/app.conf" })
	if slices.Contains(dirs, "/etc/app.conf") || !reflect.DeepEqual(files, []string{"/etc/app.conf"}) {
		t.Errorf("RootfsNeedsWith = %v, %v", dirs, files)
	}
	want := []layout.Symlink{{Path: "/data", Target: "/dev/.tmpfs/data"}, {Path: "/scratch", Target: "/dev/.tmpfs/scratch"}, {Path: "/scratch2/x", Target: "/dev/.tmpfs/scratch2/x"}, {Path: "/tmp", Target: "/dev/.tmpfs/tmp"}}
	if got := RootfsSymlinks(s); !reflect.DeepEqual(got, want) {
		t.Errorf("RootfsSymlinks = %v, want %v", got, want)
	}
	// Redirected mounts come after /dev, whatever their name; a bind mount
	// at /aux is not redirected and keeps its place.
	devAt := -1
	for i, m := range s.Mounts {
		switch m.Destination {
		case "/dev":
			devAt = i
		case "/data", "/scratch", "/tmp":
			if devAt < 0 {
				t.Errorf("%s mounted before /dev", m.Destination)
			}
		case "/aux":
			if devAt >= 0 {
				t.Errorf("%s sorted after /dev", m.Destination)
			}
		}
	}

	// Without a /dev tmpfs there is nowhere to redirect to: /tmp is a directory.
	s2 := mustGenerate(t, `{"args":["x"],"mounts":{"/dev":{"type":"bind","source":"/dev"}}}`, linuxEnv)
	if got := RootfsSymlinks(s2); len(got) != 0 {
		t.Errorf("RootfsSymlinks without a /dev tmpfs = %v", got)
	}
	if d, _ := RootfsNeeds(s2); !slices.Contains(d, "/tmp") {
		t.Errorf("RootfsNeeds without a /dev tmpfs = %v, want /tmp", d)
	}
	if d, f := RootfsNeeds(nil); d != nil || f != nil {
		t.Error("RootfsNeeds(nil) not empty")
	}
}

// Integers keep every digit: 2^53+1 in env and in extraConfig is written as
// given, not rounded through a float64.
func TestGenerateExactIntegers(t *testing.T) {
	s := mustGenerate(t, `{"args":["/bin/sh"],"env":{"BIG":9007199254740993},"extraConfig":{"process":{"rlimits":[{"type":"RLIMIT_FSIZE","soft":9007199254740993,"hard":9007199254740993}]}}}`, linuxEnv)
	if !slices.Contains(s.Process.Env, "BIG=9007199254740993") {
		t.Errorf("env %v lacks BIG=9007199254740993", s.Process.Env)
	}
	if r := s.Process.Rlimits; len(r) != 1 || r[0].Soft != 9007199254740993 || r[0].Hard != 9007199254740993 {
		t.Errorf("rlimits %+v, want soft and hard 9007199254740993", r)
	}
}
