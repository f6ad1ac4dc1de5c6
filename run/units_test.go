package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/rootfs"
)

// fakeExe writes an executable script named name in dir.
func fakeExe(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindRuntime(t *testing.T) {
	both, crunOnly, none, sbin := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	runcBoth := fakeExe(t, both, "runc")
	fakeExe(t, both, "crun")
	crun := fakeExe(t, crunOnly, "crun")
	other := fakeExe(t, none, "my-runtime")
	sbinRunc := fakeExe(t, sbin, "runc")
	notExec := filepath.Join(none, "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, flag, env, path string
		sbin                  []string
		want                  string
		wantErr               []string
	}{
		{name: "runc before crun", path: both, want: runcBoth},
		{name: "crun when runc is missing", path: crunOnly, want: crun},
		{name: "flag wins over env and PATH", flag: other, env: crun, path: both, want: other},
		{name: "flag as a name on PATH", flag: "my-runtime", path: none + ":" + both, want: other},
		{name: "env when no flag", env: crun, path: both, want: crun},
		{name: "flag naming nothing", flag: "/no/such/runtime", path: both,
			wantErr: []string{`OCI runtime "/no/such/runtime" (from --runtime) not found as a file`}},
		{name: "env naming a file that is not executable", env: notExec, path: both,
			wantErr: []string{`(from OCITOOLS_RUNTIME) not found as a file or not executable`}},
		{name: "none: says what was tried and how to install", path: none,
			wantErr: []string{`tried --runtime and $OCITOOLS_RUNTIME (both unset), then "runc" and "crun" on PATH (` + none + `)`, "apt-get install runc", "nixpkgs#runc"}},
		{name: "none on PATH but one in sbin", path: none, sbin: []string{sbin},
			wantErr: []string{sbinRunc + " exists but its directory is not on PATH: pass --runtime " + sbinRunc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			t.Setenv(RuntimeEnv, tt.env)
			saved := sbinDirs
			sbinDirs = tt.sbin
			defer func() { sbinDirs = saved }()
			got, err := FindRuntime(tt.flag)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("found %s, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FindRuntime(%q) = %q, %v; want %q", tt.flag, got, err, tt.want)
			}
		})
	}
}

func TestCheckUserNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{name: "no switches on this kernel", files: nil},
		{name: "enabled", files: map[string]string{"kernel/unprivileged_userns_clone": "1\n", "user/max_user_namespaces": "15000\n"}},
		{name: "Debian switch off", files: map[string]string{"kernel/unprivileged_userns_clone": "0\n", "user/max_user_namespaces": "15000\n"},
			wantErr: "user namespaces are disabled on this host (/proc/sys/kernel/unprivileged_userns_clone is 0), and running as an unprivileged user needs one: enable them as root (sysctl -w kernel.unprivileged_userns_clone=1) or run ocitools as root"},
		{name: "no namespaces allowed", files: map[string]string{"user/max_user_namespaces": "0\n"},
			wantErr: "(/proc/sys/user/max_user_namespaces is 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := checkUserNamespaces(dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseSubIDs(t *testing.T) {
	tests := []struct {
		name string
		user string
		id   uint32
		want []IDRange
	}{
		{"by name, bad lines skipped", "alice", 1000, []IDRange{{Start: 100000, Count: 65536}, {Start: 600000, Count: 5}}},
		{"by numeric id", "carol", 1001, []IDRange{{Start: 300000, Count: 10}}},
		{"absent", "dave", 4242, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open("testdata/subuid")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := parseSubIDs(f, tt.user, tt.id)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseSubIDs(%s, %d) = %v, %v; want %v", tt.user, tt.id, got, err, tt.want)
			}
		})
	}
}

func TestLoadBundleErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		bundle, want string
	}{
		{"", "no bundle given"},
		{"/no/such/bundle", "bundle /no/such/bundle does not exist: name a directory holding config.json and rootfs/"},
		{file, "bundle " + file + " is not a directory"},
		{empty, "bundle " + empty + " has no config.json: it is not an OCI runtime bundle"},
		{"testdata/corrupt", "testdata/corrupt/config.json is not a valid runtime configuration: line 5, column 1: unexpected end of JSON input"},
		{"testdata/wrongtype", "testdata/wrongtype/config.json is not a valid runtime configuration: line 2, column 31: json: cannot unmarshal string into Go struct field"},
		{"testdata/noroot", "root.path is missing"},
		{"testdata/noprocess", "process is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.bundle, func(t *testing.T) {
			_, _, err := loadBundle(tt.bundle)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadBundle(%q) = %v, want an error containing %q", tt.bundle, err, tt.want)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	bundle := t.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A copy-mode bundle's own copies of store paths, one a symlink out.
	const own, esc = "rootfs/nix/store/00000000000000000000000000000000-x", "rootfs/nix/store/00000000000000000000000000000000-esc"
	if err := os.MkdirAll(filepath.Join(bundle, own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(bundle, esc)); err != nil {
		t.Fatal(err)
	}
	base := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Args: []string{"/bin/sh", "-c", "true"}},
			Root:    &specs.Root{Path: "rootfs", Readonly: true},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/data", Type: "none", Source: filepath.Join(bundle, "rootfs"), Options: []string{"rbind", "rw"}},
				{Destination: "/abs", Type: "bind", Source: "/srv/abs"},
			},
		}
	}
	tests := []struct {
		name    string
		edit    func(*specs.Spec)
		args    []string
		tmp     string
		want    []string // process.args
		wantErr string
	}{
		{name: "stored args", want: []string{"/bin/sh", "-c", "true"}},
		{name: "args override", args: []string{"/bin/id", "-u"}, want: []string{"/bin/id", "-u"}},
		{name: "no args anywhere", edit: func(s *specs.Spec) { s.Process.Args = nil }, wantErr: "process.args is empty: give the command after --"},
		{name: "root.path elsewhere", edit: func(s *specs.Spec) { s.Root.Path = "../../.." }, wantErr: `root.path is "../../..": it must be "rootfs"`},
		{name: "root.path absolute", edit: func(s *specs.Spec) { s.Root.Path = bundle + "/rootfs" }, wantErr: `it must be "rootfs"`},
		{name: "relative bind source", edit: func(s *specs.Spec) { s.Mounts[1].Source = "." }, wantErr: `the bind mount at /data has the relative source "."`},
		{name: "own copy", edit: func(s *specs.Spec) { s.Mounts[1].Source = own }, want: []string{"/bin/sh", "-c", "true"}},
		{name: "own copy leading out", edit: func(s *specs.Spec) { s.Mounts[1].Source = esc }, wantErr: `has the source "` + esc + `", which does not lead to a path inside the bundle's rootfs`},
		{name: "own copy climbing out", edit: func(s *specs.Spec) { s.Mounts[1].Source = "rootfs/nix/store/../../../etc" }, wantErr: "has the relative source"},
		{name: "temp dir an overlay cannot name", tmp: filepath.Join(t.TempDir(), "a:b"), wantErr: `contains one of ",:\\", which an overlay mount cannot name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := tt.tmp
			if tmp == "" {
				tmp = t.TempDir()
			} else if err := os.Mkdir(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			pb, err := newPrivateBundle(tmp)
			if err != nil {
				t.Fatal(err)
			}
			s := base()
			if tt.edit != nil {
				tt.edit(s)
			}
			err = pb.prepare(s, bundle, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(pb.dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var got specs.Spec
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", got.Process.Args, tt.want)
			}
			if got.Root.Path != pb.root || !got.Root.Readonly {
				t.Errorf("root = %+v, want %s read-only", got.Root, pb.root)
			}
			overlay := specs.Mount{Destination: "/", Type: "overlay", Source: "overlay", Options: []string{
				"lowerdir=" + filepath.Join(bundle, "rootfs"), "upperdir=" + pb.upper, "workdir=" + pb.work}}
			if len(got.Mounts) != 4 || !reflect.DeepEqual(got.Mounts[0], overlay) {
				t.Fatalf("mounts = %+v, want the overlay %+v first", got.Mounts, overlay)
			}
			// A bind from inside the stored bundle is read-only, whatever it asked.
			if m := got.Mounts[2]; !reflect.DeepEqual(m.Options, []string{"rbind", "ro", "rro"}) {
				t.Errorf("bind from the bundle has options %q, want it read-only", m.Options)
			}
			if m := got.Mounts[2]; !filepath.IsAbs(m.Source) || !strings.HasPrefix(m.Source, bundle+"/rootfs") {
				t.Errorf("bind from the bundle has source %q, want a path in %s/rootfs", m.Source, bundle)
			}
			if m := got.Mounts[3]; m.Source != "/srv/abs" || m.Options != nil {
				t.Errorf("bind from elsewhere became %+v", m)
			}
			if got.Mounts[1].Source != "proc" {
				t.Errorf("proc source became %q", got.Mounts[1].Source)
			}
		})
	}
}

// Only the exact removal stages are taken by Helper, and only the internal
// way: invoked directly (as a bundle's bin/NAME would pass them on) they are
// refused and remove nothing.
func TestHelperArgs(t *testing.T) {
	for _, args := range [][]string{
		{"ocitools"},
		{"ocitools", "run", "b"},
		{"ocitools", helperRemove},
		{"ocitools", helperRemove, "a", "b"},
		{"ocitools", "__ocitools-run-other", "a"},
	} {
		if handled, _ := Helper(args); handled {
			t.Errorf("Helper(%q) handled it", args)
		}
	}
	dir := filepath.Join(t.TempDir(), privatePrefix+"x")
	if err := os.MkdirAll(filepath.Join(dir, "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	for _, args := range [][]string{
		{"ocitools", helperRemove, dir},
		{"/nix/store/x-c/bin/c", helperRemove, dir},
		{helperArgv0, helperRemove, other}, // not a private bundle
		{helperArgv0, helperRemove, dir},   // the host's user namespace
		{helperArgv0, helperWait, dir},
	} {
		if handled, code := Helper(args); !handled || code != 2 {
			t.Errorf("Helper(%q) = %v, %d; want it refused with status 2", args, handled, code)
		}
	}
	for _, d := range []string{dir, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

// The writable layer gets the stored directories outside /nix, with their modes
// and mtimes, and no files.
func TestMirrorDirs(t *testing.T) {
	lower := t.TempDir()
	mtime := time.Unix(1, 0)
	layout := []struct {
		rel  string
		mode fs.FileMode
	}{
		{"etc", 0o555},
		{"etc/ssl", 0o555},
		{"etc/ssl/certs", 0o755},
		{"tmp", 0o777 | fs.ModeSticky},
		{"nix", 0o555},
		{"nix/store", 0o555},
	}
	for _, d := range layout {
		if err := os.Mkdir(filepath.Join(lower, d.rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	for i := len(layout) - 1; i >= 0; i-- {
		p := filepath.Join(lower, layout[i].rel)
		if err := os.Chmod(p, layout[i].mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = rootfs.RemoveAll(lower) })
	pb, err := newPrivateBundle(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pb.lower = lower
	if err := pb.mirrorDirs(nil, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = filepath.WalkDir(pb.upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == pb.upper {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(pb.upper, p)
		got = append(got, fmt.Sprintf("%s %v %v", rel, fi.Mode(), fi.ModTime().Equal(mtime)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc dr-xr-xr-x true", "etc/ssl dr-xr-xr-x true", "etc/ssl/certs drwxr-xr-x true", "tmp dtrwxrwxrwx true"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upper holds %q, want %q", got, want)
	}
	if err := rootfs.RemoveAll(pb.dir); err != nil {
		t.Fatal(err)
	}
}

func TestWritesStored(t *testing.T) {
	bundle := "/nix/store/00000000000000000000000000000000-b"
	tests := []struct {
		source string
		want   bool
	}{
		{"/srv/data", false},
		{"/nix/store", true},
		{"/nix/store/11111111111111111111111111111111-other", true},
		{bundle + "/rootfs/etc", true},
		{"/nix", true},
		{"/", true},
		{"/nixx", false},
	}
	for _, tt := range tests {
		if got := writesStored(tt.source, bundle); got != tt.want {
			t.Errorf("writesStored(%q) = %v, want %v", tt.source, got, tt.want)
		}
	}
	tmpBundle := t.TempDir()
	if !writesStored(filepath.Dir(tmpBundle), tmpBundle) || !writesStored(tmpBundle+"/rootfs", tmpBundle) {
		t.Error("a bundle outside the store is not protected")
	}
}

// The removal helper has a deadline: one that hangs (here a stand-in that
// ignores its stdin and sleeps) is killed, and removeInUserNS returns.
func TestRemoveInUserNSHasADeadline(t *testing.T) {
	hang := filepath.Join(t.TempDir(), "hang")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	oldSelf, oldMap, oldWait := selfExecutable, mapIDs, removeWait
	t.Cleanup(func() { selfExecutable, mapIDs, removeWait = oldSelf, oldMap, oldWait })
	selfExecutable = func() (string, error) { return hang, nil }
	removeWait = 300 * time.Millisecond
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}}
	for _, tt := range []struct {
		name   string
		mapIDs func(int, []specs.LinuxIDMapping, []specs.LinuxIDMapping) error
	}{
		{"mapped", func(int, []specs.LinuxIDMapping, []specs.LinuxIDMapping) error { return nil }},
		{"mapping failed", func(int, []specs.LinuxIDMapping, []specs.LinuxIDMapping) error {
			return errors.New("newuidmap refused")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mapIDs = tt.mapIDs
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- removeInUserNS(filepath.Join(t.TempDir(), privatePrefix+"x"), m, m) }()
			select {
			case err := <-done:
				if err == nil {
					t.Error("no error from a helper that never exited")
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("returned after %v", d)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("removeInUserNS still waits for a helper that hangs after 20 s")
			}
		})
	}
}
