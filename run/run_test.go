package run

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests start real containers with runc, as root. Without root or runc
// they skip, unless OCITOOLS_E2E=1 asks for everything to run.
func requireRunc(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("runc")
	switch {
	case err == nil && os.Geteuid() == 0:
		return p
	case os.Getenv("OCITOOLS_E2E") == "1":
		t.Fatalf("runc tests need root and runc on PATH (euid %d, runc: %v)", os.Geteuid(), err)
	default:
		t.Skipf("runc tests need root and runc on PATH (euid %d, runc: %v)", os.Geteuid(), err)
	}
	return ""
}

// testConfig is a configuration shaped like the ones ocitools generates.
func testConfig(args ...string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"},
				Effective: []string{"CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"},
				Permitted: []string{"CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "mount"}, {Type: "ipc"}, {Type: "uts"}},
		},
	}
}

// makeBundle lays out a bundle with busybox-static as its only program and
// makes it read-only, as a bundle in the store is.
func makeBundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed: %v", err)
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "data"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o555); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "echo", "id", "sleep", "ls", "touch", "rm", "grep"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data", "file"), []byte("stored\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o444); err != nil {
		t.Fatal(err)
	}
	// Read-only like the store; t.TempDir's clean-up needs write bits back.
	t.Cleanup(func() { chmodTree(dir, true) })
	chmodTree(dir, false)
	return dir
}

func chmodTree(dir string, writable bool) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		mode := fs.FileMode(0o444)
		if d.IsDir() || p == filepath.Join(dir, "rootfs", "bin", "busybox") {
			mode = 0o555
		}
		if writable {
			mode |= 0o200
		}
		return os.Chmod(p, mode)
	})
}

// treeDigest sums names, modes, sizes, mtimes, link targets and contents.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintln(h, target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type result struct {
	code           int
	err            error
	stdout, stderr string
}

// runIt runs bundle with a private state and temp dir, and checks that both
// are empty afterwards: no runtime state, no private bundle left behind.
func runIt(t *testing.T, ctx context.Context, o Options) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	o.StateDir = t.TempDir()
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
	}
	o.Stdout, o.Stderr = &stdout, &stderr
	if o.Stdin == nil {
		o.Stdin = strings.NewReader("")
	}
	code, err := Run(ctx, o)
	for _, d := range []string{o.StateDir, o.TempDir} {
		if left, _ := os.ReadDir(d); len(left) != 0 {
			t.Errorf("%s holds %v after the run, want nothing", d, left)
		}
	}
	return result{code, err, stdout.String(), stderr.String()}
}

func TestRunExitStatusAndStdio(t *testing.T) {
	requireRunc(t)
	bundle := makeBundle(t, testConfig("/bin/sh", "-c", "cat; echo to-stderr >&2; exit 7"))
	r := runIt(t, context.Background(), Options{Bundle: bundle, Stdin: strings.NewReader("from stdin\n")})
	if r.err != nil || r.code != 7 {
		t.Fatalf("code %d, err %v, want 7; stderr: %s", r.code, r.err, r.stderr)
	}
	if r.stdout != "from stdin\n" || !strings.Contains(r.stderr, "to-stderr") {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestRunArgsOverride(t *testing.T) {
	requireRunc(t)
	bundle := makeBundle(t, testConfig("/bin/sh", "-c", "exit 9"))
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"args", Options{Args: []string{"/bin/echo", "overridden", "args"}}, "overridden args\n"},
		{"program args keep the program", Options{ProgramArgs: []string{"-c", "echo $0", "given"}}, "given\n"},
		{"args win over program args", Options{Args: []string{"/bin/echo", "a"}, ProgramArgs: []string{"-c", "exit 8"}}, "a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Bundle = bundle
			r := runIt(t, context.Background(), tt.o)
			if r.err != nil || r.code != 0 || r.stdout != tt.want {
				t.Fatalf("code %d, err %v, stdout %q, stderr %s; want %q", r.code, r.err, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

// Writes succeed with readonly = false and vanish with the run; the stored
// bundle keeps every byte, mtime and mode, even for a mount point runc has to
// create (as root it would otherwise create it inside the stored rootfs).
func TestRunWritableRootLeavesBundleAlone(t *testing.T) {
	requireRunc(t)
	s := testConfig("/bin/sh", "-c", "echo new > /new && echo changed >> /data/file && rm /bin/ls && cat /new /data/file && grep -c ' /made-by-runc ' /proc/mounts")
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/made-by-runc", Type: "tmpfs", Source: "tmpfs"})
	bundle := makeBundle(t, s)
	before := treeDigest(t, bundle)
	r := runIt(t, context.Background(), Options{Bundle: bundle})
	if r.err != nil || r.code != 0 || r.stdout != "new\nstored\nchanged\n1\n" {
		t.Fatalf("code %d, err %v, stdout %q, stderr %s", r.code, r.err, r.stdout, r.stderr)
	}
	if after := treeDigest(t, bundle); after != before {
		t.Fatal("the stored bundle changed")
	}
	// A second run starts from the stored rootfs again.
	r = runIt(t, context.Background(), Options{Bundle: bundle, Args: []string{"/bin/sh", "-c", "cat /data/file; test -e /new || echo no-new; test -e /bin/ls && echo has-ls"}})
	if r.code != 0 || r.stdout != "stored\nno-new\nhas-ls\n" {
		t.Fatalf("second run: code %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
}

func TestRunReadonlyRootRefusesWrites(t *testing.T) {
	requireRunc(t)
	s := testConfig("/bin/sh", "-c", "echo x > /new; echo rc=$?; touch /data/file; echo rc=$?")
	s.Root.Readonly = true
	bundle := makeBundle(t, s)
	before := treeDigest(t, bundle)
	r := runIt(t, context.Background(), Options{Bundle: bundle})
	if r.err != nil || r.code != 0 || r.stdout != "rc=1\nrc=1\n" || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("code %d, err %v, stdout %q, stderr %q", r.code, r.err, r.stdout, r.stderr)
	}
	if treeDigest(t, bundle) != before {
		t.Fatal("the stored bundle changed")
	}
}

// A PID 1 that ignores SIGTERM (busybox sleep has no handler, and the kernel
// drops unhandled signals to PID 1) gets SIGKILL after the grace period.
func TestRunSignalEscalatesToKill(t *testing.T) {
	requireRunc(t)
	bundle := makeBundle(t, testConfig("/bin/sh", "-c", "echo ready; exec sleep 100"))
	tests := []struct {
		name string
		stop func(chan os.Signal, context.CancelFunc)
	}{
		{"SIGTERM", func(c chan os.Signal, _ context.CancelFunc) { c <- syscall.SIGTERM }},
		{"context cancelled", func(_ chan os.Signal, cancel context.CancelFunc) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan result, 1)
			go func() {
				var stderr bytes.Buffer
				code, err := Run(ctx, Options{Bundle: bundle, Signals: sigs, Stdout: pw, Stderr: &stderr, StateDir: t.TempDir(), TempDir: t.TempDir(), Grace: 300 * time.Millisecond})
				pw.Close()
				done <- result{code: code, err: err, stderr: stderr.String()}
			}()
			out := make([]byte, 6)
			if _, err := io.ReadFull(pr, out); err != nil || string(out) != "ready\n" {
				t.Fatalf("read %q, %v", out, err)
			}
			start := time.Now()
			tt.stop(sigs, cancel)
			go io.Copy(io.Discard, pr)
			r := <-done
			if r.err != nil || r.code != 128+int(syscall.SIGKILL) {
				t.Fatalf("code %d, err %v, want %d; stderr: %s", r.code, r.err, 128+int(syscall.SIGKILL), r.stderr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v after the signal, want about the 300ms grace period", d)
			}
		})
	}
}

// A terminating signal before the container started stops the run there:
// nothing is started, nothing is left (runIt checks), the status is 128+N.
func TestRunSignalBeforeStart(t *testing.T) {
	requireRunc(t)
	bundle := makeBundle(t, testConfig("/bin/sleep", "100"))
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGINT
	start := time.Now()
	r := runIt(t, context.Background(), Options{Bundle: bundle, Signals: sigs, Grace: time.Minute})
	if r.err != nil || r.code != 128+int(syscall.SIGINT) {
		t.Fatalf("code %d, err %v, want %d; stderr: %s", r.code, r.err, 128+int(syscall.SIGINT), r.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// A process that handles SIGTERM gets it, and its exit status comes back.
func TestRunSignalForwarded(t *testing.T) {
	requireRunc(t)
	bundle := makeBundle(t, testConfig("/bin/sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"))
	sigs := make(chan os.Signal, 1)
	pr, pw := io.Pipe()
	done := make(chan result, 1)
	go func() {
		var stderr bytes.Buffer
		code, err := Run(context.Background(), Options{Bundle: bundle, Signals: sigs, Stdout: pw, Stderr: &stderr, StateDir: t.TempDir(), TempDir: t.TempDir(), Grace: time.Minute})
		pw.Close()
		done <- result{code: code, err: err, stderr: stderr.String()}
	}()
	out := make([]byte, 6)
	if _, err := io.ReadFull(pr, out); err != nil || string(out) != "ready\n" {
		t.Fatalf("read %q, %v", out, err)
	}
	sigs <- syscall.SIGTERM
	rest, _ := io.ReadAll(pr)
	r := <-done
	if r.err != nil || r.code != 3 || string(rest) != "got TERM\n" {
		t.Fatalf("code %d, err %v, stdout %q, stderr %s", r.code, r.err, rest, r.stderr)
	}
}

func TestRunFailures(t *testing.T) {
	requireRunc(t)
	good := makeBundle(t, testConfig("/bin/sh", "-c", "true"))
	invalid := makeBundle(t, testConfig("/bin/nothing"))
	termConfig := testConfig("/bin/sh", "-c", "true")
	termConfig.Process.Terminal = true
	term := makeBundle(t, termConfig)
	tests := []struct {
		name     string
		o        Options
		wantErr  string
		wantCode int // when there is no error: the runtime's status
	}{
		{name: "corrupt config", o: Options{Bundle: "testdata/corrupt"}, wantErr: "testdata/corrupt/config.json is not a valid runtime configuration: line 5, column 1"},
		{name: "missing runtime", o: Options{Bundle: good, Runtime: "/no/runc"}, wantErr: `OCI runtime "/no/runc" (from --runtime) not found`},
		// The stored bundle is checked by spec.ValidateBundle: its lines come back.
		{name: "invalid bundle", o: Options{Bundle: invalid}, wantErr: "bundle " + invalid + " is invalid:\n  process.args[0] \"/bin/nothing\""},
		// An override is not: the runtime reports it, and it is a start failure.
		{name: "missing program", o: Options{Bundle: good, Args: []string{"/bin/nothing"}}, wantErr: "could not start the container (it exited with status 1"},
		{name: "terminal without one", o: Options{Bundle: term}, wantErr: "bundle " + term + " sets process.terminal, but standard input is not a terminal: run it from one, or pass --no-terminal"},
		{name: "terminal turned off", o: Options{Bundle: term, NoTerminal: true}, wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runIt(t, context.Background(), tt.o)
			if tt.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", r.err, tt.wantErr)
				}
				return
			}
			if r.err != nil || r.code != tt.wantCode {
				t.Fatalf("code %d, err %v, want %d; stderr: %s", r.code, r.err, tt.wantCode, r.stderr)
			}
		})
	}
}

// As root, a configuration with its own user namespace runs too: the writable
// layer is handed to the host ids of container root.
func TestRunOwnUserNamespaceAsRoot(t *testing.T) {
	requireRunc(t)
	s := testConfig("/bin/sh", "-c", "echo x > /new && cat /new; cat /proc/self/uid_map")
	s.Mounts = s.Mounts[:3] // proc, dev, devpts: no sysfs or cgroup from a foreign namespace
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	bundle := makeBundle(t, s)
	tmp := t.TempDir()
	// The namespace's root (host uid 200000) must reach the bundle and the
	// private one, as it can in /tmp.
	for _, d := range []string{bundle, tmp} {
		for _, p := range []string{filepath.Dir(d), d} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := treeDigest(t, bundle)
	r := runIt(t, context.Background(), Options{Bundle: bundle, TempDir: tmp})
	if r.err != nil || r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != "x 0 200000 65536" {
		t.Fatalf("code %d, err %v, stdout %q, stderr %s", r.code, r.err, r.stdout, r.stderr)
	}
	if treeDigest(t, bundle) != before {
		t.Fatal("the stored bundle changed")
	}
}

// Inside many containers /tmp is an overlay, which cannot hold the writable
// layer: the private bundle goes to the next candidate, or a given TempDir on
// an overlay is refused clearly.
func TestRunTempDirOnOverlay(t *testing.T) {
	requireRunc(t)
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "l"), filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting an overlay: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(merged, syscall.MNT_DETACH) })
	if !onOverlay(merged) {
		t.Fatal("onOverlay does not see the overlay")
	}
	bundle := makeBundle(t, testConfig("/bin/sh", "-c", "echo x > /new && cat /new"))

	r := runIt(t, context.Background(), Options{Bundle: bundle, TempDir: merged})
	if want := "temporary directory " + merged + " is on an overlay file system"; r.err == nil || !strings.Contains(r.err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", r.err, want)
	}

	t.Setenv("TMPDIR", merged)
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	var stdout, stderr bytes.Buffer
	code, err := Run(context.Background(), Options{Bundle: bundle, StateDir: t.TempDir(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 0 || stdout.String() != "x\n" {
		t.Fatalf("code %d, err %v, stdout %q, stderr %s", code, err, stdout.String(), stderr.String())
	}
	if got, err := upperParent(""); err != nil || got != xdg {
		t.Errorf("upperParent = %q, %v; want %s", got, err, xdg)
	}
}

// Hooks and namespace paths act on the host: refused unless allowed.
func TestRunRefusesHostConfig(t *testing.T) {
	requireRunc(t)
	hooked := testConfig("/bin/echo")
	hooked.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/touch", Args: []string{"touch", "/tmp/owned"}}}}
	joined := testConfig("/bin/echo")
	joined.Linux.Namespaces[1].Path = "/proc/1/ns/net"
	noPID := testConfig("/bin/echo")
	noPID.Linux.Namespaces = noPID.Linux.Namespaces[1:]
	procBind := testConfig("/bin/echo")
	procBind.Mounts = append(procBind.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/proc/sys", Options: []string{"rbind"}})
	rootBind := testConfig("/bin/echo")
	rootBind.Mounts = append(rootBind.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/", Options: []string{"rbind"}})
	sysAdmin := testConfig("/bin/echo")
	sysAdmin.Process.Capabilities.Bounding = append(sysAdmin.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	rootMapped := testConfig("/bin/echo")
	rootMapped.Process.Capabilities.Bounding = append(rootMapped.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	rootMapped.Linux.Namespaces = append(rootMapped.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	rootMapped.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
	rootMapped.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
	devices := testConfig("/bin/echo")
	devices.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8}}
	for name, s := range map[string]*specs.Spec{"hook": hooked, "namespace path": joined, "no pid namespace": noPID,
		"bind of /proc/sys": procBind, "bind of /": rootBind, "CAP_SYS_ADMIN": sysAdmin, "device": devices, "user namespace mapping host root": rootMapped} {
		t.Run(name, func(t *testing.T) {
			r := runIt(t, context.Background(), Options{Bundle: makeBundle(t, s)})
			if r.err == nil || !strings.Contains(r.err.Error(), "acts on the host") || !strings.Contains(r.err.Error(), "--allow-host-config") {
				t.Fatalf("err = %v, want a refusal", r.err)
			}
		})
	}
}

// SIGTERM stops the run within the grace period while a createRuntime hook
// hangs (the container never started): runtime, hook and init are killed,
// and nothing is left (runIt checks the state and temporary directories).
func TestRunStopDuringHook(t *testing.T) {
	requireRunc(t)
	s := testConfig("/bin/echo")
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/sleep", Args: []string{"sleep", "30"}}}}
	bundle := makeBundle(t, s)
	sigs := make(chan os.Signal, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		sigs <- syscall.SIGTERM
	}()
	start := time.Now()
	r := runIt(t, context.Background(), Options{Bundle: bundle, Signals: sigs, Grace: 500 * time.Millisecond, AllowHostConfig: true})
	// The bound only tells a stop from the hook's 30 s; the 1 s it takes on
	// a quiet machine is docs/run.md's figure, not a test's.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("stopped after %v, want about 1s (0.5s + the 0.5s grace), far less than the hook's 30s", d)
	}
	if r.err != nil || r.code != 128+int(syscall.SIGTERM) {
		t.Errorf("code %d, err %v, want %d; stderr: %s", r.code, r.err, 128+int(syscall.SIGTERM), r.stderr)
	}
	// A killed hook may take a moment to be reaped on a loaded machine.
	var pids []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if pids = processesWithArgs(t, "sleep\x0030\x00"); len(pids) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(pids) != 0 {
		t.Errorf("the hook still runs: pids %v", pids)
	}
}

// A runtime whose "state" never answers does not stop SIGTERM: every call has
// a deadline, and the kill comes at the end of the grace period.
func TestRunHangingRuntime(t *testing.T) {
	runc := requireRunc(t)
	wrapper := filepath.Join(t.TempDir(), "runc-hangs")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = state ] && exec sleep 1000; done\nexec " + runc + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := makeBundle(t, testConfig("/bin/sh", "-c", "echo ready; exec sleep 100"))
	sigs := make(chan os.Signal, 1)
	pr, pw := io.Pipe()
	done := make(chan result, 1)
	state, tmp := t.TempDir(), t.TempDir()
	go func() {
		var stderr bytes.Buffer
		code, err := Run(context.Background(), Options{Bundle: bundle, Runtime: wrapper, Signals: sigs, Stdout: pw, Stderr: &stderr, StateDir: state, TempDir: tmp, Grace: 500 * time.Millisecond})
		pw.Close()
		done <- result{code: code, err: err, stderr: stderr.String()}
	}()
	out := make([]byte, 6)
	if _, err := io.ReadFull(pr, out); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	start := time.Now()
	sigs <- syscall.SIGTERM
	select {
	case r := <-done:
		if r.code != 128+int(syscall.SIGKILL) {
			t.Errorf("code %d, err %v; stderr %s", r.code, r.err, r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still runs 20s after SIGTERM")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopped after %v, want about the 0.5s grace", d)
	}
	for _, d := range []string{state, tmp} {
		if left, _ := os.ReadDir(d); len(left) != 0 {
			t.Errorf("%s holds %v", d, left)
		}
	}
}

// As root, the host's kernel interfaces stay read-only whatever the
// configuration says.
func TestConfineRoot(t *testing.T) {
	s := testConfig("/bin/echo")
	s.Linux.ReadonlyPaths = []string{"/proc/sys"}
	s.Linux.MaskedPaths = nil
	for i := range s.Mounts {
		if s.Mounts[i].Type == "sysfs" || s.Mounts[i].Type == "cgroup" {
			s.Mounts[i].Options = []string{"nosuid", "rw"}
		}
	}
	confineRoot(s)
	if !reflect.DeepEqual(s.Linux.ReadonlyPaths, []string{"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"}) {
		t.Errorf("readonlyPaths = %q", s.Linux.ReadonlyPaths)
	}
	if len(s.Linux.MaskedPaths) == 0 || s.Linux.MaskedPaths[0] != "/proc/acpi" {
		t.Errorf("maskedPaths = %q", s.Linux.MaskedPaths)
	}
	for _, m := range s.Mounts {
		if (m.Type == "sysfs" || m.Type == "cgroup") && !reflect.DeepEqual(m.Options, []string{"nosuid", "ro"}) {
			t.Errorf("%s mount options %q, want read-only", m.Destination, m.Options)
		}
	}
}

// processesWithArgs lists the pids whose command line is exactly cmdline
// (NUL-separated, as /proc/PID/cmdline holds it).
func processesWithArgs(t *testing.T, cmdline string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(data) == cmdline {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
