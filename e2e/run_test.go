package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runConfig is a configuration shaped like the generated ones (runc spec's
// defaults), running args as root with a writable root unless told otherwise.
func runConfig(args ...string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID"}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args:            args,
			Env:             []string{"PATH=/bin"},
			Cwd:             "/",
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "e2e",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces:    []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "mount"}, {Type: "ipc"}, {Type: "uts"}},
			Resources:     &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			MaskedPaths:   []string{"/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// storeBundle lays out a bundle (busybox in rootfs/bin, a file in rootfs/data),
// lets edit change the tree, and adds it to the store with nix-store --add: a
// real store path, owned by root and read-only, that verify-path can check.
func storeBundle(t *testing.T, s *specs.Spec, edit func(dir string)) string {
	t.Helper()
	requireE2E(t)
	dir := filepath.Join(t.TempDir(), "ocitools-run-e2e")
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "data"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("cp", "-a", filepath.Join(busyboxDir, "bin"), rootfs).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data", "file"), []byte("stored\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(dir)
	}
	out, err = exec.Command("nix-store", "--add", dir).Output()
	if err != nil {
		t.Fatalf("nix-store --add: %v", err)
	}
	p := strings.TrimSpace(string(out))
	verifyStorePath(t, p)
	return p
}

// runResult is what one `ocitools run` did.
type runResult struct {
	stdout, stderr string
	code           int
}

func runCmd(t *testing.T, cmd *exec.Cmd) runResult {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return runResult{o.String(), e.String(), exitCode(t, err)}
}

// runner starts `ocitools run` as root or as the unprivileged test user, with
// a private TMPDIR that must be empty afterwards (the private bundle is gone).
type runner struct {
	name string
	cmd  func(t *testing.T, args ...string) *exec.Cmd
}

func runners(t *testing.T) []runner {
	u := unprivUser(t)
	return []runner{
		{"root", func(t *testing.T, args ...string) *exec.Cmd {
			cmd := exec.Command(ocitoolsBin, args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+emptyTmp(t, 0, 0))
			return cmd
		}},
		{"rootless", func(t *testing.T, args ...string) *exec.Cmd {
			cmd := u.Command(t, ocitoolsBin, args...)
			cmd.Env = append(cmd.Env, "TMPDIR="+emptyTmp(t, u.UID, u.GID))
			return cmd
		}},
	}
}

// ownedDir makes a directory owned by uid that the test user can reach.
func ownedDir(t *testing.T, uid, gid int) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "dir-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// emptyTmp makes a directory owned by uid that must be empty when the test ends.
func emptyTmp(t *testing.T, uid, gid int) string {
	t.Helper()
	dir := ownedDir(t, uid, gid)
	t.Cleanup(func() {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("TMPDIR %s holds %v after the run: the private bundle was not removed", dir, left)
		}
	})
	return dir
}

// The same bundle, as root and as an unprivileged user: the configured user
// (root) inside, the caller outside; the exit status comes through.
func TestRunRootAndRootless(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/sh", "-c", "id; cat /proc/self/uid_map; exit 7"), nil)
	u := unprivUser(t)
	want := map[string]string{"root": "0 0 4294967295", "rootless": "0 " + strconv.Itoa(u.UID) + " 1"}
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", b))
			if res.code != 7 {
				t.Fatalf("exit %d, want 7\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "uid=0 gid=0") || strings.Join(strings.Fields(lines[1]), " ") != want[r.name] {
				t.Errorf("container printed %q, want uid=0 gid=0 and the uid map %q", res.stdout, want[r.name])
			}
			if res.stderr != "" {
				t.Errorf("stderr: %s", res.stderr)
			}
		})
	}
	verifyStorePath(t, b)
}

// A configured non-root user: as root it runs as configured; rootless, the
// caller is container root and the user comes from the caller's subordinate
// ids through newuidmap (package uidmap); without newuidmap ocitools says so.
func TestRunConfiguredUser(t *testing.T) {
	// id -u -g: rootless runc cannot set supplementary groups, so the
	// process keeps the caller's (container gid 0); `id` would show them.
	s := runConfig("/bin/sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; echo w > /dev/shm/w && cat /dev/shm/w")
	s.Process.User = specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{5}}
	b := storeBundle(t, s, nil)
	u := unprivUser(t)
	subUID, subGID := ensureSubIDs(t, u)
	res := runCmd(t, exec.Command(ocitoolsBin, "run", b, "--", "/bin/id", "-G"))
	if res.code != 0 || res.stdout != "100 5\n" {
		t.Errorf("root: exit %d, stdout %q, stderr %s; want the groups 100 5", res.code, res.stdout, res.stderr)
	}
	res = runCmd(t, exec.Command(ocitoolsBin, "run", b))
	want := "1000\n100\n0 0 4294967295\n0 0 4294967295\nw\n"
	if res.code != 0 || squeeze(res.stdout) != want {
		t.Errorf("root: exit %d, stdout %q, stderr %s; want %q", res.code, squeeze(res.stdout), res.stderr, want)
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Fatalf("newuidmap is not installed (Debian package uidmap): %v", err)
	}
	r := runners(t)[1]
	res = runCmd(t, r.cmd(t, "run", b))
	want = fmt.Sprintf("1000\n100\n0 %d 1\n1 %s\n0 %d 1\n1 %s\nw\n", u.UID, subUID, u.GID, subGID)
	if res.code != 0 || squeeze(res.stdout) != want {
		t.Errorf("rootless: exit %d, stdout %q, stderr %s; want %q", res.code, squeeze(res.stdout), res.stderr, want)
	}
	if w := "ocitools run: warning: process.user.additionalGids [5] are left out: runc cannot set supplementary groups rootless\n"; res.stderr != w {
		t.Errorf("rootless: stderr %q, want %q", res.stderr, w)
	}
	// runc is found on PATH, newuidmap is not.
	cmd := r.cmd(t, "run", b)
	for i, e := range cmd.Env {
		if strings.HasPrefix(e, "PATH=") {
			cmd.Env[i] = "PATH=" + runcOnlyDir(t)
		}
	}
	res = runCmd(t, cmd)
	wantErr := "process.user.uid is 1000, but the user namespace maps container ids 0-0 only; an unprivileged user can map only itself (as container root) without newuidmap/newgidmap: install them (Debian package uidmap, nixpkgs shadow) and give the user ranges in /etc/subuid and /etc/subgid, or run as root (newuidmap is not on PATH)"
	if res.code != 125 || !strings.Contains(res.stderr, wantErr) {
		t.Errorf("rootless without newuidmap: exit %d, stderr %q; want 125 and %q", res.code, res.stderr, wantErr)
	}
	verifyStorePath(t, b)
}

// runcOnlyDir returns a directory, readable by the test user, that holds a link
// to runc and nothing else: a PATH on which runc is found and newuidmap is not,
// wherever the two are installed (NixOS and Fedora keep them in one directory).
func runcOnlyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "runc-only-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mustLookPath(t, "runc"), filepath.Join(dir, "runc")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ensureSubIDs gives the test user subordinate ids unless it has some, and
// returns the first ranges as /proc/PID/uid_map shows them ("start count").
func ensureSubIDs(t *testing.T, u *testUser) (string, string) {
	t.Helper()
	first := func(file string) string {
		data, _ := os.ReadFile(file)
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) == 3 && (f[0] == u.Name || f[0] == strconv.Itoa(u.UID)) {
				return f[1] + " " + f[2]
			}
		}
		return ""
	}
	if first("/etc/subuid") == "" || first("/etc/subgid") == "" {
		out, err := exec.Command("usermod", "--add-subuids", "300000-365535", "--add-subgids", "300000-365535", u.Name).CombinedOutput()
		if err != nil {
			t.Fatalf("usermod --add-subuids: %v\n%s", err, out)
		}
	}
	return first("/etc/subuid"), first("/etc/subgid")
}

// squeeze folds runs of blanks, as /proc/PID/uid_map pads its columns.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// readonly = false: writes succeed, land in a throwaway layer, and the store
// path still verifies; a mount point missing from the rootfs is created in that
// layer, not in the store. Rootless, container root may create and remove
// entries in the stored directories but not modify stored files, whose owner
// (host root) the user namespace does not map. readonly = true: writes fail.
func TestRunWritesNeverReachTheStore(t *testing.T) {
	script := "echo new > /new && cat /new && echo d > /data/new && cat /data/new && rm /bin/ls && mkdir -p /data/a/b && " +
		"echo tmp > /tmp/t && cat /tmp/t && grep -c ' /made-by-runc ' /proc/mounts; echo changed >> /data/file; echo rc=$?; stat -c %u:%a /data"
	rw := runConfig("/bin/sh", "-c", script)
	rw.Mounts = append(rw.Mounts, specs.Mount{Destination: "/made-by-runc", Type: "tmpfs", Source: "tmpfs"})
	ro := runConfig("/bin/sh", "-c", "echo x > /new; echo rc=$?; echo y > /data/file; echo rc=$?; echo tmp > /tmp/t && cat /tmp/t")
	ro.Root.Readonly = true
	rwBundle, roBundle := storeBundle(t, rw, nil), storeBundle(t, ro, nil)
	modify := map[string]string{"root": "rc=0", "rootless": "rc=1"}
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", rwBundle))
			if want := "new\nd\ntmp\n1\n" + modify[r.name] + "\n0:555\n"; res.code != 0 || res.stdout != want {
				t.Errorf("readonly=false: exit %d, stdout %q, stderr %s; want %q", res.code, res.stdout, res.stderr, want)
			}
			// Nothing survives into the next run.
			res = runCmd(t, r.cmd(t, "run", rwBundle, "--", "/bin/sh", "-c", "test -e /new || echo gone; test -e /data/new || echo gone; cat /data/file; test -e /bin/ls && echo has-ls"))
			if res.code != 0 || res.stdout != "gone\ngone\nstored\nhas-ls\n" {
				t.Errorf("second run: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
			res = runCmd(t, r.cmd(t, "run", roBundle))
			if res.code != 0 || res.stdout != "rc=1\nrc=1\ntmp\n" || !strings.Contains(res.stderr, "Read-only file system") {
				t.Errorf("readonly=true: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
			}
		})
	}
	verifyStorePath(t, rwBundle)
	verifyStorePath(t, roBundle)
}

func TestRunArgsOverride(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/sh", "-c", "exit 3"), nil)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", b, "--", "/bin/echo", "over", "ridden"))
			if res.code != 0 || res.stdout != "over ridden\n" {
				t.Fatalf("exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
		})
	}
	res := runCmd(t, exec.Command(ocitoolsBin, "run", b, "/bin/echo"))
	if res.code != 125 || !strings.Contains(res.stderr, `unexpected argument "/bin/echo" after BUNDLE: flags go before BUNDLE, the container's arguments after --`) {
		t.Errorf("args without --: exit %d, stderr %q", res.code, res.stderr)
	}
}

// SIGTERM to ocitools run reaches the container; a PID 1 that ignores it (busybox
// sleep) is killed after the grace period; no runtime state and no private
// bundle are left behind.
func TestRunSIGTERMStopsContainer(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/sleep", "1000"), nil)
	u := unprivUser(t)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			owner, ownerGID := 0, 0
			if r.name == "rootless" {
				owner, ownerGID = u.UID, u.GID
			}
			state := filepath.Join(ownedDir(t, owner, ownerGID), "state")
			cmd := r.cmd(t, "run", "--grace", "1s", "--state-dir", state, b)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(runcList(t, state), "running") {
				if time.Now().After(deadline) {
					t.Fatalf("the container never ran; stderr: %s", stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			start := time.Now()
			// setpriv execs ocitools: the pid is ocitools' own.
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-waited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("ocitools run still running 30s after SIGTERM; stderr: %s", stderr.String())
			}
			if code := exitCode(t, err); code != 128+int(syscall.SIGKILL) {
				t.Errorf("exit %d, want %d (killed after the grace period); stderr: %s", code, 128+int(syscall.SIGKILL), stderr.String())
			}
			if d := time.Since(start); d < time.Second || d > 15*time.Second {
				t.Errorf("stopped %v after SIGTERM, want the 1s grace period", d)
			}
			if list := runcList(t, state); strings.TrimSpace(list) != "" {
				t.Errorf("runc state left behind:\n%s", list)
			}
		})
	}
}

// runcList lists the containers in a runc state directory (empty if none).
func runcList(t *testing.T, state string) string {
	t.Helper()
	if _, err := os.Stat(state); os.IsNotExist(err) {
		return ""
	}
	out, err := exec.Command("runc", "--root", state, "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v\n%s", err, out)
	}
	if ids := strings.TrimSpace(string(out)); ids != "" {
		full, _ := exec.Command("runc", "--root", state, "list").CombinedOutput()
		return string(full)
	}
	return ""
}

func TestRunErrors(t *testing.T) {
	requireE2E(t)
	b := storeBundle(t, runConfig("/bin/true"), nil)
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	if err := os.MkdirAll(filepath.Join(corrupt, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "config.json"), []byte("{\n  \"ociVersion\": \"1.3.0\",\n  \"process\": {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noRuncPath := t.TempDir()
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{name: "missing runtime", env: []string{"PATH=" + noRuncPath}, args: []string{"run", b},
			want: []string{`no OCI runtime found: tried --runtime and $OCITOOLS_RUNTIME (both unset), then "runc" and "crun" on PATH (` + noRuncPath + `)`, "apt-get install runc"}},
		{name: "runtime named wrong", env: []string{"OCITOOLS_RUNTIME=runc-nope"}, args: []string{"run", b},
			want: []string{`OCI runtime "runc-nope" (from OCITOOLS_RUNTIME) not found on PATH`}},
		{name: "corrupt config", args: []string{"run", corrupt},
			want: []string{corrupt + "/config.json is not a valid runtime configuration: line 4, column 1: unexpected end of JSON input"}},
		{name: "missing bundle", args: []string{"run", "/nonexistent/bundle"},
			want: []string{"bundle /nonexistent/bundle does not exist"}},
		{name: "no bundle", args: []string{"run"}, want: []string{"run: no bundle given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(ocitoolsBin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			res := runCmd(t, cmd)
			if res.code != 125 {
				t.Errorf("exit %d, want 125", res.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q lacks %q", res.stderr, w)
				}
			}
			if n := strings.Count(strings.TrimSpace(res.stderr), "\n"); n != 0 {
				t.Errorf("stderr is %d lines, want one: %q", n+1, res.stderr)
			}
		})
	}
}

// A bundle's bin/NAME symlink to ocitools runs the bundle (what nix run starts),
// by path or by name through PATH; its arguments replace the configured
// program's arguments, as nix run passes them to a program.
func TestRunMulticallLink(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/sh", "-c", "echo configured; exit 4"), func(dir string) {
		if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ocitoolsBin, filepath.Join(dir, "bin", "hello")); err != nil {
			t.Fatal(err)
		}
	})
	link := filepath.Join(b, "bin", "hello")
	tests := []struct {
		name       string
		argv0      string
		args       []string
		wantOut    string
		wantStatus int
	}{
		{"by path", link, nil, "configured\n", 4},
		{"by path with args", link, []string{"-c", "echo given $0; exit 5", "arg"}, "given arg\n", 5},
		{"by name through PATH", "hello", []string{"-c", "echo $0", "--"}, "--\n", 0},
	}
	for _, r := range runners(t) {
		for _, tt := range tests {
			t.Run(r.name+"/"+tt.name, func(t *testing.T) {
				cmd := r.cmd(t, "unused")
				// Replace what the runner would run, keeping its user and env.
				if r.name == "root" {
					cmd.Path, cmd.Args = link, append([]string{tt.argv0}, tt.args...)
				} else {
					// setpriv execs its argument by name through PATH, keeping argv[0].
					cmd.Args = append(append(cmd.Args[:len(cmd.Args)-2], tt.argv0), tt.args...)
				}
				for i, e := range cmd.Env {
					if strings.HasPrefix(e, "PATH=") {
						cmd.Env[i] = "PATH=" + filepath.Join(b, "bin") + ":" + strings.TrimPrefix(e, "PATH=")
					}
				}
				res := runCmd(t, cmd)
				if res.code != tt.wantStatus || res.stdout != tt.wantOut {
					t.Fatalf("exit %d, stdout %q, stderr %s; want %d, %q", res.code, res.stdout, res.stderr, tt.wantStatus, tt.wantOut)
				}
			})
		}
	}
	verifyStorePath(t, b)
}

// "bind" store mode: the closure is bind-mounted read-only from the host's
// store instead of copied. Rootless keeps those mounts working.
func TestRunBindStoreMode(t *testing.T) {
	requireE2E(t)
	out, err := exec.Command("nix-store", "--add", busyboxDir).Output()
	if err != nil {
		t.Fatalf("nix-store --add busybox: %v", err)
	}
	bb := strings.TrimSpace(string(out))
	s := runConfig(bb+"/bin/sh", "-c", "grep -c ' "+bb+" ' /proc/mounts; "+bb+"/bin/id -u; echo x > "+bb+"/x; echo rc=$?")
	s.Mounts = append(s.Mounts, specs.Mount{Destination: bb, Type: "bind", Source: bb, Options: []string{"rbind", "ro"}})
	b := storeBundle(t, s, func(dir string) {
		// The rootfs holds the mount point only; no copy of busybox.
		if err := os.MkdirAll(filepath.Join(dir, "rootfs", strings.TrimPrefix(bb, "/")), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", b))
			if res.code != 0 || res.stdout != "1\n0\nrc=1\n" {
				t.Fatalf("exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
		})
	}
	verifyStorePath(t, b)
	verifyStorePath(t, bb)
}

// A bundle the caller owns (outside the store) with a world-writable directory:
// the configured user, a subordinate id, writes files there that land in the
// writable layer owned by ids the caller cannot remove itself. ocitools removes
// them in a user namespace: nothing is left and nothing is said.
func TestRunRootlessSubordinateFilesRemoved(t *testing.T) {
	u := unprivUser(t)
	ensureSubIDs(t, u)
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Fatalf("newuidmap is not installed (Debian package uidmap): %v", err)
	}
	s := runConfig("/bin/sh", "-c", "mkdir /scratch/d && echo x > /scratch/d/f && ls -n /scratch/d/f")
	s.Process.User = specs.User{UID: 1000, GID: 100}
	dir := filepath.Join(ownedDir(t, u.UID, u.GID), "bundle")
	storeLike := storeBundle(t, s, func(d string) {
		if err := os.MkdirAll(filepath.Join(d, "rootfs", "scratch"), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	// A writable copy the test user owns, with /scratch world-writable.
	if out, err := exec.Command("cp", "-a", storeLike, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	if err := os.Chmod(filepath.Join(dir, "rootfs", "scratch"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.UID, u.GID), dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	res := runCmd(t, runners(t)[1].cmd(t, "run", dir))
	if res.code != 0 || !strings.Contains(res.stdout, " 1000 ") || res.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	// emptyTmp checks at clean-up that the private bundle is gone.
}

// A bundle built by buildContainer, the case: the same bundle as root
// and rootless shows the configured user, passes the exit status through, takes
// writes with readonly = false and refuses them with readonly = true, and its
// store path still verifies afterwards.
func TestRunBuiltContainer(t *testing.T) {
	script := `id -u; id -g; echo written > /new && cat /new; echo tmp > /tmp/t && cat /tmp/t; exit 7`
	for _, tt := range []struct {
		name, extra, want string
		wantCode          int
	}{
		{"root user", ``, "0\n0\nwritten\ntmp\n", 7},
		// Not root: / is not writable for it, /tmp is.
		{"configured user", `user = "1000:100";`, "1000\n100\ntmp\n", 7},
		{"readonly", `readonly = true;`, "0\n0\ntmp\n", 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expr := `ociTools.buildContainer {
			  args = [ "${busybox}/bin/sh" "-c" "` + script + `" ];
			  ` + tt.extra + `
			}`
			bundle := nixBuild(t, expr)
			for _, r := range runners(t) {
				t.Run(r.name, func(t *testing.T) {
					res := runCmd(t, r.cmd(t, "run", bundle))
					if res.code != tt.wantCode || res.stdout != tt.want {
						t.Errorf("exit %d, stdout %q, stderr %s; want %d, %q", res.code, res.stdout, res.stderr, tt.wantCode, tt.want)
					}
				})
			}
		})
	}
}

// process.terminal: with a terminal on stdin (script gives one) the container
// gets its own pseudo-terminal, as root and rootless; without one ocitools
// says so, and --no-terminal runs it anyway.
func TestRunTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script (util-linux) is needed: %v", err)
	}
	s := runConfig("/bin/sh", "-c", "tty; exit 3")
	s.Process.Terminal = true
	b := storeBundle(t, s, nil)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			inner := r.cmd(t, "run", b)
			cmd := exec.Command(script, "-qec", strings.Join(inner.Args, " "), "/dev/null")
			cmd.Env = inner.Env
			res := runCmd(t, cmd)
			if res.code != 3 || !strings.Contains(res.stdout, "/dev/pts/0") {
				t.Errorf("in a terminal: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
			res = runCmd(t, r.cmd(t, "run", b))
			if want := "sets process.terminal, but standard input is not a terminal: run it from one, or pass --no-terminal"; res.code != 125 || !strings.Contains(res.stderr, want) {
				t.Errorf("without a terminal: exit %d, stderr %q, want 125 and %q", res.code, res.stderr, want)
			}
			res = runCmd(t, r.cmd(t, "run", "--no-terminal", b))
			if res.code != 3 || res.stdout != "not a tty\n" {
				t.Errorf("--no-terminal: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
		})
	}
	verifyStorePath(t, b)
}
