package e2e

// The adversarial suite: bundles built or laid out as an attacker would, run
// as root and rootless. After each, nothing may have reached the host: the
// store path verifies, the host has no mount of a private bundle, the
// runtime's state directory and TMPDIR are empty, and a sentinel directory on
// the host is as it was.

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// sentinel is a host directory a hostile bundle must not change.
type sentinel struct{ dir string }

func newSentinel(t *testing.T) sentinel {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "sentinel-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		data, _ := os.ReadFile(filepath.Join(dir, "file"))
		if len(ents) != 1 || string(data) != "host\n" {
			t.Errorf("host directory %s changed: %v, file %q", dir, ents, data)
		}
		os.RemoveAll(dir)
	})
	return sentinel{dir}
}

// checkNoTrace fails when the host shows a run of bundle: a mount of a
// private bundle or of the bundle, or a container in the state directory.
func checkNoTrace(t *testing.T, bundle, state string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "ocitools-run-") || (bundle != "" && strings.Contains(line, bundle)) {
			t.Errorf("host mount left behind: %s", line)
		}
	}
	if list := runcList(t, state); strings.TrimSpace(list) != "" {
		t.Errorf("runtime state left behind:\n%s", list)
	}
	if bundle != "" && strings.HasPrefix(bundle, "/nix/store/") {
		verifyStorePath(t, bundle)
	}
}

// hostileRun runs `ocitools run` as r with its own state directory, and checks
// that no trace is left.
func hostileRun(t *testing.T, r runner, bundle string, args ...string) runResult {
	t.Helper()
	u := unprivUser(t)
	owner, group := 0, 0
	if r.name == "rootless" {
		owner, group = u.UID, u.GID
	}
	state := filepath.Join(ownedDir(t, owner, group), "state")
	res := runCmd(t, r.cmd(t, append([]string{"run", "--grace", "1s", "--state-dir", state, bundle}, args...)...))
	checkNoTrace(t, bundle, state)
	return res
}

// Each of these builds would give a bundle that escapes, or that a runtime
// refuses only once it is stored: the builder refuses them, naming why.
func TestAdversarialBuildRefuses(t *testing.T) {
	requireE2E(t)
	long := strings.Repeat("h", 65)
	tests := []struct{ name, attrs, want string }{
		{"root.path up", `extraConfig.root.path = "../../..";`, `root.path is "../../..": it must be "rootfs"`},
		{"root.path host root", `extraConfig.root.path = "/";`, `root.path is "/": it must be "rootfs"`},
		{"relative bind without type bind", `mounts."/b" = { type = "none"; source = "."; options = [ "rbind" "rw" ]; };`, `must be an absolute host path for a bind mount, not "."`},
		{"mount at /", `mounts."/" = { type = "tmpfs"; source = "tmpfs"; };`, "cannot replace the root file system"},
		{"hostname too long", `hostname = "` + long + `";`, "is 65 bytes long: the kernel allows at most 64"},
		{"workingDir in /proc", `workingDir = "/proc/self";`, `"/proc/self" is inside`},
		{"oomScoreAdj", `extraConfig.process.oomScoreAdj = 1001;`, "oomScoreAdj 1001 is out of range"},
		{"unknown capability", `extraConfig.process.capabilities.bounding = [ "CAP_NOPE" ];`, `unknown capability "CAP_NOPE"`},
		{"unknown rlimit", `extraConfig.process.rlimits = [ { type = "RLIMIT_NOPE"; soft = 1; hard = 1; } ];`, `unknown type "RLIMIT_NOPE"`},
		{"mount point in the store", `mounts."/nix/store/00000000000000000000000000000000-x" = { type = "tmpfs"; source = "tmpfs"; };`, "is under /nix/store but is not in the closure"},
		{"workingDir in the store", `workingDir = "/nix/store/00000000000000000000000000000000-x";`, "is under /nix/store but is not in the closure"},
		{"tmpfs over /proc", `mounts."/proc" = { type = "tmpfs"; source = "tmpfs"; };`, `/proc must be a mount of type "proc"`},
		{"host sysctl", `extraConfig.linux.sysctl = { "kernel.core_pattern" = "|/x"; };`, `"kernel.core_pattern" is not namespaced`},
		{"soft limit above hard", `extraConfig.process.rlimits = [ { type = "RLIMIT_NOFILE"; soft = 2048; hard = 1024; } ];`, "soft limit 2048 above its hard limit 1024"},
		{"workingDir a file", `workingDir = "${busybox}/bin/busybox";`, "not a directory"},
		{"workingDir created inside a store path", `workingDir = "${busybox}/bin/new";`, "/bin/new\" is under /nix/store but is not in the closure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := nixBuildFail(t, `ociTools.buildContainer { args = [ "${busybox}/bin/true" ]; `+tt.attrs+` }`)
			if !strings.Contains(log, tt.want) {
				t.Errorf("the build failed without saying %q:\n%s", tt.want, log)
			}
		})
	}
}

// A working directory or mount point inside a store path of the closure that
// exists there is fine: nothing needs creating.
func TestAdversarialStoreWorkingDir(t *testing.T) {
	b := nixBuild(t, `ociTools.buildContainer {
	  args = [ "${busybox}/bin/pwd" ];
	  workingDir = "${busybox}/bin";
	}`)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := hostileRun(t, r, b)
			if res.code != 0 || !strings.HasSuffix(res.stdout, "-busybox/bin\n") {
				t.Errorf("exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// A tmpfs replacing /etc or /sys (documented: a mount with the same
// destination replaces the default) works, as root and rootless.
func TestAdversarialTmpfsReplacesEtcAndSys(t *testing.T) {
	b := nixBuild(t, `ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" "${busybox}/bin/ls -A /etc | ${busybox}/bin/wc -l; ${busybox}/bin/grep -E ' /(etc|sys) ' /proc/mounts | ${busybox}/bin/cut -d' ' -f2,3" ];
	  mounts."/etc" = { type = "tmpfs"; source = "tmpfs"; options = [ "size=1m" ]; };
	  mounts."/sys" = { type = "tmpfs"; source = "tmpfs"; options = [ "size=1m" ]; };
	}`)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := hostileRun(t, r, b)
			if res.code != 0 || res.stdout != "0\n/etc tmpfs\n/sys tmpfs\n" {
				t.Errorf("exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// Stored bundles laid out by hand, bypassing the builder: ocitools run refuses
// each before anything starts, with exit status 125 and the reason.
func TestAdversarialStoredBundlesRefused(t *testing.T) {
	s := newSentinel(t)
	withDAC := func(cfg *specs.Spec) *specs.Spec {
		caps := append(cfg.Process.Capabilities.Bounding, "CAP_DAC_OVERRIDE")
		cfg.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		return cfg
	}
	tests := []struct {
		name    string
		cfg     func() *specs.Spec
		edit    func(dir string)
		want    string
		runOnly bool // valid for the runtime spec; ocitools run's policy refuses it
	}{
		{"root.path up", func() *specs.Spec {
			c := runConfig("/bin/cat", "/etc/shadow")
			c.Root.Path = "../../.."
			return c
		}, nil, `root.path is "../../..": it must be "rootfs"`, false},
		{"root.path absolute", func() *specs.Spec {
			c := runConfig("/bin/cat", "/etc/shadow")
			c.Root.Path = "/"
			return c
		}, nil, `root.path is "/": it must be "rootfs"`, false},
		{"rootfs a symlink to /", func() *specs.Spec { return runConfig("/bin/cat", "/etc/shadow") }, func(dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "rootfs")))
			must(t, os.Symlink("/", filepath.Join(dir, "rootfs")))
		}, "is not a directory (a symlink is not followed)", false},
		{"relative bind of the bundle", func() *specs.Spec {
			c := withDAC(runConfig("/bin/sh", "-c", "echo owned > /b/rootfs/data/file"))
			c.Mounts = append(c.Mounts, specs.Mount{Destination: "/b", Type: "none", Source: ".", Options: []string{"rbind", "rw"}})
			return c
		}, func(dir string) { must(t, os.Mkdir(filepath.Join(dir, "rootfs", "b"), 0o755)) }, `has source ".", which is not an absolute path`, false},
		{"hook on the host", func() *specs.Spec {
			c := runConfig("/bin/true")
			c.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/touch", Args: []string{"touch", filepath.Join(s.dir, "owned")}}}}
			return c
		}, nil, "acts on the host: hooks.createRuntime runs /usr/bin/touch on the host", true},
		{"host mount namespace", func() *specs.Spec {
			c := runConfig("/bin/cat", "/etc/shadow")
			c.Linux.Namespaces[2].Path = "/proc/1/ns/mnt"
			return c
		}, nil, "the mount namespace joins /proc/1/ns/mnt", true},
		{"overlay naming host directories", func() *specs.Spec {
			c := runConfig("/bin/true")
			c.Mounts = append(c.Mounts, specs.Mount{Destination: "/o", Type: "overlay", Source: "overlay",
				Options: []string{"lowerdir=/etc", "upperdir=" + s.dir + "/u", "workdir=" + s.dir + "/w"}})
			return c
		}, func(dir string) { must(t, os.Mkdir(filepath.Join(dir, "rootfs", "o"), 0o755)) }, `the "overlay" mount at /o can name host paths or devices`, true},
		{"duplicate keys", func() *specs.Spec { return runConfig("/bin/true") }, func(dir string) {
			p := filepath.Join(dir, "config.json")
			data, err := os.ReadFile(p)
			must(t, err)
			data = bytes.Replace(data, []byte(`"cwd"`), []byte(`"cwd": "/tmp", "cwd"`), 1)
			must(t, os.WriteFile(p, data, 0o644))
		}, `key "cwd" appears more than once in the object at /process`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := storeBundle(t, tt.cfg(), tt.edit)
			for _, r := range runners(t) {
				t.Run(r.name, func(t *testing.T) {
					res := hostileRun(t, r, b)
					if res.code != 125 || !strings.Contains(res.stderr, tt.want) || strings.Contains(res.stdout, "root:") {
						t.Errorf("exit %d, stdout %q, stderr %s; want 125 and %q", res.code, res.stdout, res.stderr, tt.want)
					}
				})
			}
			if out, err := exec.Command(ocitoolsBin, "validate", b).CombinedOutput(); err == nil && !tt.runOnly {
				t.Errorf("ocitools validate accepts it:\n%s", out)
			}
		})
	}
}

// As root (no user namespace), container root is host root: capabilities
// beyond the usual container set and host devices are refused unless allowed;
// rootless they stay inside the user namespace and run.
func TestAdversarialRootCapabilities(t *testing.T) {
	cfg := runConfig("/bin/sh", "-c", "echo ran")
	caps := []string{"CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"}
	cfg.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	b := storeBundle(t, cfg, nil)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := hostileRun(t, r, b)
			if r.name == "root" {
				if res.code != 125 || !strings.Contains(res.stderr, "capability CAP_SYS_ADMIN reaches the host from a root container") {
					t.Errorf("exit %d, stderr %s", res.code, res.stderr)
				}
				return
			}
			if res.code != 0 || res.stdout != "ran\n" {
				t.Errorf("exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// A bind whose source is the store (or the bundle) is read-only, whatever
// its options: capabilities do not let the container write the store.
func TestAdversarialStoreBindReadOnly(t *testing.T) {
	caps := []string{"CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN"}
	cfg := runConfig("/bin/sh", "-c", "for d in /s/*-ocitools-run-e2e; do [ -L $d/rootfs ] && continue; echo owned > $d/rootfs/data/file; echo rc=$?; done")
	cfg.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	cfg.Mounts = append(cfg.Mounts, specs.Mount{Destination: "/s", Type: "none", Source: "/nix/store", Options: []string{"rbind", "rw"}})
	b := storeBundle(t, cfg, func(dir string) { must(t, os.Mkdir(filepath.Join(dir, "rootfs", "s"), 0o755)) })
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := hostileRun(t, r, b)
			if res.code != 0 || strings.Contains(res.stdout, "rc=0") || !strings.Contains(res.stdout, "rc=1") {
				t.Errorf("exit %d, stdout %q, stderr %s; want every write refused", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// Input files that are not regular files are refused at once, by run,
// validate and verify, instead of blocking (FIFO) or exhausting memory.
func TestAdversarialBadInputFiles(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	for _, d := range []string{"fifo", "zero"} {
		must(t, os.MkdirAll(filepath.Join(dir, d, "rootfs"), 0o755))
	}
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo", "config.json"), 0o644))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo", "closure.json"), 0o644))
	must(t, os.Symlink("/dev/zero", filepath.Join(dir, "zero", "config.json")))
	must(t, os.Symlink("/dev/zero", filepath.Join(dir, "zero", "closure.json")))
	for _, b := range []string{"fifo", "zero"} {
		for _, cmd := range []string{"run", "validate", "verify", "build"} {
			t.Run(b+"/"+cmd, func(t *testing.T) {
				c := exec.Command(ocitoolsBin, cmd, filepath.Join(dir, b))
				if cmd == "build" {
					c = exec.Command(ocitoolsBin, "build", "--attrs", filepath.Join(dir, b, "config.json"), "--out", filepath.Join(dir, b, "out"))
				}
				var out bytes.Buffer
				c.Stdout, c.Stderr = &out, &out
				must(t, c.Start())
				done := make(chan error, 1)
				go func() { done <- c.Wait() }()
				select {
				case err := <-done:
					if err == nil || !strings.Contains(out.String(), "regular file") && !strings.Contains(out.String(), "symbolic link") {
						t.Errorf("%v: %s", err, out.String())
					}
				case <-time.After(10 * time.Second):
					_ = c.Process.Kill()
					t.Fatalf("ocitools %s blocked on %s", cmd, b)
				}
			})
		}
	}
}

// A bundle's bin/NAME passes every argument to the container, the internal
// removal helper's name included; invoked directly, the helper refuses.
func TestAdversarialMulticallHelper(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/echo"), func(dir string) {
		must(t, os.Mkdir(filepath.Join(dir, "bin"), 0o755))
		must(t, os.Symlink(ocitoolsBin, filepath.Join(dir, "bin", "hello")))
	})
	victim := filepath.Join(t.TempDir(), "ocitools-run-victim")
	must(t, os.MkdirAll(filepath.Join(victim, "data"), 0o777))
	must(t, os.Chmod(filepath.Dir(victim), 0o777))
	link := filepath.Join(b, "bin", "hello")
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			for _, stage := range []string{"__ocitools-run-remove", "__ocitools-run-remove-wait"} {
				cmd := r.cmd(t, "unused")
				if r.name == "root" {
					cmd.Path, cmd.Args = link, []string{link, stage, victim}
				} else {
					cmd.Args = append(cmd.Args[:len(cmd.Args)-2], link, stage, victim)
				}
				res := runCmd(t, cmd)
				if res.code != 0 || res.stdout != stage+" "+victim+"\n" {
					t.Errorf("exit %d, stdout %q, stderr %s; want the container to echo its arguments", res.code, res.stdout, res.stderr)
				}
			}
			res := runCmd(t, r.cmd(t, "__ocitools-run-remove", victim))
			if res.code != 2 || !strings.Contains(res.stderr, "is internal to ocitools run") {
				t.Errorf("direct call: exit %d, stderr %s", res.code, res.stderr)
			}
			if _, err := os.Stat(filepath.Join(victim, "data")); err != nil {
				t.Fatalf("%s was removed: %v", victim, err)
			}
		})
	}
	verifyStorePath(t, b)
}

// SIGTERM stops a run whose start hangs in a createRuntime hook within the
// grace period; exit 128+15; nothing is left.
func TestAdversarialSignalDuringHook(t *testing.T) {
	cfg := runConfig("/bin/true")
	cfg.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/sleep", Args: []string{"sleep", "15"}}}}
	b := storeBundle(t, cfg, nil)
	u := unprivUser(t)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			owner, group := 0, 0
			if r.name == "rootless" {
				owner, group = u.UID, u.GID
			}
			state := filepath.Join(ownedDir(t, owner, group), "state")
			cmd := r.cmd(t, "run", "--allow-host-config", "--grace", "1s", "--state-dir", state, b)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			must(t, cmd.Start())
			time.Sleep(time.Second)
			start := time.Now()
			must(t, cmd.Process.Signal(syscall.SIGTERM))
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if code := exitCode(t, err); code != 128+int(syscall.SIGTERM) {
					t.Errorf("exit %d, want %d; stderr %s", code, 128+int(syscall.SIGTERM), stderr.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("still running 10s after SIGTERM; stderr %s", stderr.String())
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("stopped %v after SIGTERM, want the 1s grace period", d)
			}
			checkNoTrace(t, b, state)
		})
	}
}

// ocitools killed with SIGKILL leaves a running container and its private
// bundle; the next run of the same user (same TMPDIR) removes both.
func TestAdversarialSIGKILLLeftoversReclaimed(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/sleep", "1000"), nil)
	// A configured user other than root: rootless, the runtime then runs in
	// ocitools' own user namespace.
	user := runConfig("/bin/sleep", "1000")
	user.Process.User = specs.User{UID: 1000, GID: 1000}
	bUser := storeBundle(t, user, nil)
	u := unprivUser(t)
	ensureSubIDs(t, u)
	for _, tc := range []struct {
		name     string
		rootless bool
		bundle   string
	}{{"root", false, b}, {"rootless", true, b}, {"rootless, configured user", true, bUser}} {
		t.Run(tc.name, func(t *testing.T) {
			rootless := tc.rootless
			b := tc.bundle
			owner, group := 0, 0
			if rootless {
				owner, group = u.UID, u.GID
			}
			tmp := emptyTmp(t, owner, group)
			state := filepath.Join(ownedDir(t, owner, group), "state")
			command := func(args ...string) *exec.Cmd {
				var cmd *exec.Cmd
				if rootless {
					cmd = u.Command(t, ocitoolsBin, args...)
				} else {
					cmd = exec.Command(ocitoolsBin, args...)
					cmd.Env = os.Environ()
				}
				cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
				return cmd
			}
			// SIGTERM first: the run stops within the grace period.
			cmd := command("run", "--grace", "500ms", "--state-dir", state, b)
			must(t, cmd.Start())
			waitRunning(t, cmd, state)
			start := time.Now()
			must(t, cmd.Process.Signal(syscall.SIGTERM))
			if code := exitCode(t, cmd.Wait()); code != 128+int(syscall.SIGKILL) {
				t.Errorf("SIGTERM: exit %d, want %d", code, 128+int(syscall.SIGKILL))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("SIGTERM: stopped after %v, want about the 500ms grace", d)
			}
			checkNoTrace(t, b, state)
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Fatalf("after SIGTERM %s holds %v", tmp, ents)
			}
			// SIGKILL: the container and the private bundle stay, until the
			// next run.
			cmd = command("run", "--state-dir", state, b)
			must(t, cmd.Start())
			waitRunning(t, cmd, state)
			must(t, cmd.Process.Kill())
			_ = cmd.Wait()
			if ents, _ := os.ReadDir(tmp); len(ents) != 1 {
				t.Fatalf("after SIGKILL %s holds %v, want the private bundle", tmp, ents)
			}
			res := runCmd(t, command("run", "--state-dir", state, b, "--", "/bin/true"))
			if res.code != 0 || !strings.Contains(res.stderr, "removed what an interrupted run left") {
				t.Errorf("next run: exit %d, stderr %s", res.code, res.stderr)
			}
			checkNoTrace(t, b, state)
		})
	}
}

func waitRunning(t *testing.T, cmd *exec.Cmd, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(runcList(t, state), "running") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the container never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A start failure (the runtime cannot start the process) is 125, not the
// runtime's own status.
func TestAdversarialStartFailureExit125(t *testing.T) {
	b := storeBundle(t, runConfig("/bin/true"), nil)
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := hostileRun(t, r, b, "--", "/no/such/program")
			if res.code != 125 || !strings.Contains(res.stderr, "could not start the container") {
				t.Errorf("exit %d, stderr %s", res.code, res.stderr)
			}
		})
	}
}

// verify checks what is in the bundle: a modified copy is found even when
// closure.json is edited to say "bind" (which would hash the host's store), and
// so are a setuid bit and a world-writable directory.
func TestAdversarialVerifyTampering(t *testing.T) {
	b := nixBuild(t, `ociTools.buildContainer { args = [ "${busybox}/bin/true" ]; }`)
	var m struct {
		Paths []struct {
			Path string `json:"path"`
		} `json:"paths"`
	}
	data, err := os.ReadFile(filepath.Join(b, "closure.json"))
	must(t, err)
	must(t, json.Unmarshal(data, &m))
	var bb string
	for _, p := range m.Paths {
		if strings.HasSuffix(p.Path, "-busybox") {
			bb = p.Path
		}
	}
	if bb == "" {
		t.Fatalf("no busybox in %s", data)
	}
	tests := []struct {
		name   string
		tamper func(dir string)
		want   string
	}{
		{"record says bind", func(dir string) {
			p := filepath.Join(dir, "closure.json")
			data, err := os.ReadFile(p)
			must(t, err)
			must(t, os.WriteFile(p, bytes.Replace(data, []byte(`"storeMode": "copy"`), []byte(`"storeMode": "bind"`), 1), 0o644))
			must(t, os.WriteFile(filepath.Join(dir, "rootfs", bb, "bin", "busybox"), []byte("#!/bin/sh\necho owned\n"), 0o555))
		}, bb + ": contents differ"},
		{"setuid", func(dir string) {
			must(t, syscall.Chmod(filepath.Join(dir, "rootfs", bb, "bin", "busybox"), 0o4555))
		}, bb + ": bin/busybox: file has mode 4555"},
		{"world-writable", func(dir string) {
			must(t, os.Chmod(filepath.Join(dir, "rootfs", bb, "bin"), 0o777))
		}, bb + ": bin: directory has mode 0777"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "copy")
			if out, err := exec.Command("cp", "-a", b, dir).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			must(t, exec.Command("chmod", "-R", "u+w", dir).Run())
			tt.tamper(dir)
			out, err := exec.Command(ocitoolsBin, "verify", dir).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("verify: %v\n%s\nwant %q", err, out, tt.want)
			}
			_ = exec.Command("chmod", "-R", "u+w", dir).Run()
		})
	}
}

// An interrupted `ocitools build --attrs --out` removes its partial output on
// SIGINT and SIGTERM; what SIGKILL leaves is removed by the next build into
// the same directory.
func TestAdversarialBuildInterrupted(t *testing.T) {
	requireE2E(t)
	// A store path with many files, so that the copy takes a while.
	src := filepath.Join(t.TempDir(), "many")
	for i := 0; i < 60; i++ {
		d := filepath.Join(src, "d", strings.Repeat("x", i%7+1)+string(rune('a'+i%26))+strings.Repeat("y", i/26))
		must(t, os.MkdirAll(d, 0o755))
		for j := 0; j < 100; j++ {
			must(t, os.WriteFile(filepath.Join(d, "f"+strings.Repeat("z", j%5)+string(rune('a'+j%26))+strings.Repeat("q", j/26)), bytes.Repeat([]byte{byte(i), byte(j)}, 2048), 0o644))
		}
	}
	bb := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", busyboxDir)))
	many := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", src)))
	var closure []string
	for _, p := range []string{bb, many} {
		hash := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--hash", p)))
		size := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--size", p)))
		closure = append(closure, `{"path":"`+p+`","narHash":"`+hash+`","narSize":`+size+`,"references":[]}`)
	}
	u := unprivUser(t)
	attrs := filepath.Join(ownedDir(t, u.UID, u.GID), "attrs.json")
	must(t, os.WriteFile(attrs, []byte(`{"name":"big","system":"x86_64-linux","outputs":{"out":"/unused"},`+
		`"closure":[`+strings.Join(closure, ",")+`],"container":{"args":["`+bb+`/bin/true","`+many+`"],"verify":true}}`), 0o644))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			parent := ownedDir(t, u.UID, u.GID)
			out := filepath.Join(parent, "bundle")
			cmd := u.Command(t, ocitoolsBin, "build", "--attrs", attrs, "--out", out)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			must(t, cmd.Start())
			// Wait until the copy is well under way: a tenth of the files of
			// the big store path copied, so that some of its directories are
			// complete (those used to get their 0555 at once).
			deadline := time.Now().Add(30 * time.Second)
			for {
				matches, _ := filepath.Glob(filepath.Join(parent, ".bundle.partial-*", "rootfs", "nix", "store", "*-many", "d", "*", "*"))
				if len(matches) >= 600 {
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("no partial output appeared; stderr %s", stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			must(t, cmd.Process.Signal(sig))
			err := cmd.Wait()
			if _, serr := os.Stat(out); serr == nil {
				t.Skipf("the build finished before %v arrived: the closure is too small for this machine", sig)
			}
			if sig != syscall.SIGKILL {
				if code := exitCode(t, err); code != 128+int(sig) {
					t.Errorf("exit %d, want %d; stderr %s", code, 128+int(sig), stderr.String())
				}
				if ents, _ := os.ReadDir(parent); len(ents) != 0 {
					t.Errorf("%s holds %v after %v", parent, ents, sig)
				}
				return
			}
			// SIGKILL: what is left is removable with plain rm -rf, as the
			// user (no chmod): every directory stays writable until the end.
			partials, _ := filepath.Glob(filepath.Join(parent, ".bundle.partial-*"))
			var dirs []string
			for _, p := range partials {
				if !strings.HasSuffix(p, ".lock") {
					dirs = append(dirs, p)
				}
			}
			if len(dirs) != 1 {
				t.Fatalf("SIGKILL left %v, want one partial output and its lock", partials)
			}
			if res := runCmd(t, u.Command(t, "rm", "-rf", dirs[0])); res.code != 0 {
				t.Errorf("rm -rf %s as the user: exit %d: %s", dirs[0], res.code, res.stderr)
			}
			if _, err := os.Lstat(dirs[0]); err == nil {
				t.Errorf("%s survived rm -rf", dirs[0])
			}
			// The next build into the same directory removes the stale lock.
			res := runCmd(t, u.Command(t, ocitoolsBin, "build", "--attrs", attrs, "--out", filepath.Join(parent, "other")))
			if res.code != 0 || !strings.Contains(res.stderr, "left by an interrupted build") {
				t.Errorf("next build: exit %d, stderr %s", res.code, res.stderr)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 || ents[0].Name() != "other" {
				t.Errorf("%s holds %v, want only the new bundle", parent, ents)
			}
			// A completed build has the store's exact modes and verifies.
			other := filepath.Join(parent, "other")
			checkStoreModes(t, filepath.Join(other, "rootfs", "nix", "store"))
			if res := runCmd(t, u.Command(t, ocitoolsBin, "verify", other)); res.code != 0 {
				t.Errorf("verify of the completed build: exit %d: %s%s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// checkStoreModes fails unless every entry under store has the mode Nix gives
// store paths: directories 0555, files 0444 or 0555.
func checkStoreModes(t *testing.T, store string) {
	t.Helper()
	var dirs, files int
	err := filepath.WalkDir(store, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == store || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch {
		case fi.IsDir():
			dirs++
			if perm != 0o555 {
				t.Errorf("%s: directory mode %v, want 0555", p, perm)
			}
		default:
			files++
			if perm != 0o444 && perm != 0o555 {
				t.Errorf("%s: file mode %v, want 0444 or 0555", p, perm)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if dirs == 0 || files == 0 {
		t.Errorf("%s holds %d directories and %d files: nothing was checked", store, dirs, files)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Rootless gives no more rights than root: a configured user gets exactly the
// groups a root run gives it (none of the caller's, which would include
// container gid 0), so a group-0 tmpfs is closed to it in both.
func TestAdversarialRootlessAddsNoGroup(t *testing.T) {
	cfg := runConfig("/bin/sh", "-c", "id -G; echo x > /g/f; echo rc=$?")
	cfg.Process.User = specs.User{UID: 1000, GID: 1000}
	cfg.Mounts = append(cfg.Mounts, specs.Mount{Destination: "/g", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=0770", "gid=0"}})
	b := storeBundle(t, cfg, func(dir string) { must(t, os.Mkdir(filepath.Join(dir, "rootfs", "g"), 0o755)) })
	ensureSubIDs(t, unprivUser(t))
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := hostileRun(t, r, b)
			if res.code != 0 || res.stdout != "1000\nrc=1\n" {
				t.Errorf("exit %d, stdout %q, stderr %s; want only group 1000 and the write refused", res.code, res.stdout, res.stderr)
			}
		})
	}
}
