package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBundle runs bundle with runc as root and returns stdout; a non-zero exit fails.
func runBundle(t *testing.T, bundle string) string {
	t.Helper()
	stdout, stderr, code := runcRun(t, bundle)
	if code != 0 {
		t.Fatalf("runc run %s exited %d\nstdout: %s\nstderr: %s", bundle, code, stdout, stderr)
	}
	return stdout
}

// The seed's example shape: args is one script, as nixpkgs users write today.
func TestSeedShapeScript(t *testing.T) {
	expr := `ociTools.buildContainer {
	  args = [ (writeScript "greet" "#!${busybox}/bin/sh\necho hello from the seed shape") ];
	}`
	bundle := nixBuild(t, expr)
	if got := runBundle(t, bundle); got != "hello from the seed shape\n" {
		t.Errorf("container printed %q", got)
	}
	if !strings.HasSuffix(bundle, "-greet-oci-bundle") {
		t.Errorf("bundle %s: want the name greet-oci-bundle from args[0]", bundle)
	}
}

// The shape nixpkgs refuses: flags, and store paths embedded in the middle of
// strings. Every referenced path must be in the rootfs.
func TestArgsWithFlagsAndEmbeddedStorePaths(t *testing.T) {
	expr := `let
	  cfg = builtins.toFile "greeting.conf" "greeting from a config file";
	  data = runCommand "data" { } "mkdir -p $out/share; echo data file > $out/share/msg";
	in ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" "cat ${cfg};echo; cat ${data}/share/msg; echo --conf=${cfg}" ];
	}`
	bundle := nixBuild(t, expr)
	got := runBundle(t, bundle)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || lines[0] != "greeting from a config file" || lines[1] != "data file" ||
		!strings.HasPrefix(lines[2], "--conf=/nix/store/") || !strings.HasSuffix(lines[2], "-greeting.conf") {
		t.Errorf("container printed %q", got)
	}
}

// mounts are honoured: a tmpfs and a bind mount of a host directory.
func TestMountsTmpfsAndBind(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "file"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expr := `ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" "cat /host/file; grep ' /dev/.tmpfs/data ' /proc/mounts | cut -d' ' -f3,4; echo x > /data/y && cat /data/y" ];
	  mounts."/data" = { type = "tmpfs"; source = "tmpfs"; options = [ "size=16m" ]; };
	  mounts."/host" = { type = "bind"; source = "` + host + `"; options = [ "rbind" "ro" ]; };
	}`
	bundle := nixBuild(t, expr)
	// /data is a tmpfs: the rootfs holds it as a symlink into the /dev tmpfs (see
	// docs/configuration.md), so that it keeps its mode and can be written.
	if got := runBundle(t, bundle); got != "from the host\ntmpfs rw,relatime,size=16384k\nx\n" {
		t.Errorf("container printed %q", got)
	}
}

// readonly = true: the root cannot be written, because it is mounted read-only
// (not merely because store directories are 0555: the error says which).
func TestReadonlyRoot(t *testing.T) {
	bundle := nixBuild(t, `ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" "touch /probe 2>&1; exit 0" ];
	  readonly = true;
	}`)
	if got := runBundle(t, bundle); !strings.Contains(got, "Read-only file system") {
		t.Errorf("touch /probe in the container printed %q, want a read-only file system error", got)
	}
}

// Bad input fails at evaluation with a message that names the argument and says
// what is valid, when the argument table's rules catch it (options/known.json);
// what only the builder checks fails the build with a message in the same form.
func TestBadInputAtEvaluation(t *testing.T) {
	sh := `"${busybox}/bin/sh"`
	for _, tc := range []struct {
		name, args, want string
		eval             bool // refused at evaluation, else by the builder
	}{
		{"args missing", `{ }`, "`args` is required: the command the container runs", true},
		{"args empty", `{ args = [ ]; }`, "`args` must not be empty", true},
		{"args not a list", `{ args = "${busybox}/bin/sh"; }`, "`args` must be a list, not the string", true},
		{"args element not a string", `{ args = [ ` + sh + ` 42 ]; }`, "`args`: element 1 must be a string, not an integer", true},
		{"relative mount destination", `{ args = [ ` + sh + ` ]; mounts.data = { type = "tmpfs"; source = "tmpfs"; }; }`, "`mounts`: \"data\" must be an absolute destination (start with /)", true},
		{"mount without type", `{ args = [ ` + sh + ` ]; mounts."/data" = { source = "tmpfs"; }; }`, "`mounts.\"/data\".type` is missing", false},
		{"mount without source", `{ args = [ ` + sh + ` ]; mounts."/data" = { type = "tmpfs"; }; }`, "`mounts.\"/data\".source` is missing", false},
		{"mount options not strings", `{ args = [ ` + sh + ` ]; mounts."/data" = { type = "tmpfs"; source = "tmpfs"; options = [ 1 ]; }; }`, "`mounts.\"/data\".options` must be a list of strings", false},
		{"same destination twice", `{ args = [ ` + sh + ` ]; mounts."/data" = { type = "tmpfs"; source = "tmpfs"; }; mounts."/data/" = { type = "tmpfs"; source = "tmpfs"; }; }`, "`mounts`: \"/data\" and \"/data/\" are the same destination /data; give it once", false},
		{"unknown arch", `{ args = [ ` + sh + ` ]; arch = "sparc"; }`, "`arch`: unknown value \"sparc\"; valid values are the GOARCH values \"386\", \"amd64\"", true},
		{"unknown os", `{ args = [ ` + sh + ` ]; os = "beos"; }`, "`os`: unknown value \"beos\"; valid values are the GOOS values", true},
		{"windows", `{ args = [ ` + sh + ` ]; os = "windows"; }`, "`os`: \"windows\" is not supported", true},
		{"duplicate namespace", `{ args = [ ` + sh + ` ]; namespaces = [ "pid" "mount" "pid" ]; }`, "`namespaces`: \"pid\" is given twice", false},
		{"relative masked path", `{ args = [ ` + sh + ` ]; maskedPaths = [ "proc/keys" ]; }`, "`maskedPaths`: element 0 must be an absolute path (start with /), not \"proc/keys\"", true},
		{"env boolean", `{ args = [ ` + sh + ` ]; env.DEBUG = true; }`, "`env.DEBUG` must be a string or an integer, not a boolean", true},
		{"shmSize zero string", `{ args = [ ` + sh + ` ]; shmSize = "0"; }`, "`shmSize` must be a positive size", true},
		{"typo in an argument name", `{ args = [ ` + sh + ` ]; readOnly = true; }`, "unknown argument `readOnly` (did you mean \"readonly\"", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := nixBuildFail(t, "ociTools.buildContainer "+tc.args)
			want := tc.want
			if tc.eval {
				want = "buildContainer: " + want
			}
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
			if built := strings.Contains(log, "will be built"); built == tc.eval {
				t.Errorf("refused at evaluation: %v, want %v:\n%s", !built, tc.eval, log)
			}
		})
	}
}

// The seed's default arch spelling keeps working and lands as a GOARCH value;
// os and arch are recorded where the spec allows, not in "platform".
func TestOSAndArchRecorded(t *testing.T) {
	bundle := nixBuild(t, `ociTools.buildContainer { args = [ "${busybox}/bin/true" ]; arch = "x86_64"; }`)
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	for _, want := range []string{`"org.opencontainers.image.os": "linux"`, `"org.opencontainers.image.architecture": "amd64"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config.json lacks %s", want)
		}
	}
	for _, bad := range []string{`"platform"`, `"options": null`} {
		if strings.Contains(cfg, bad) {
			t.Errorf("config.json has %s", bad)
		}
	}
	runBundle(t, bundle)
}

// A build that fails in the builder leaves no valid store path behind.
func TestBuilderFailureLeavesNothing(t *testing.T) {
	// args[0] names a file that is not in the closure: evaluation cannot know,
	// the builder's validation refuses it.
	expr := `ociTools.buildContainer { args = [ "${busybox}/bin/no-such-program" ]; }`
	log := nixBuildFail(t, expr)
	if !strings.Contains(log, "no-such-program") {
		t.Errorf("log does not name the missing program:\n%s", log)
	}
	wantNoOutput(t, expr)
}

// Outside Nix, build says what it is for.
func TestBuildOutsideNixExplainsItself(t *testing.T) {
	requireE2E(t)
	cmd := exec.Command(ocitoolsBin, "build")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("ocitools build outside Nix succeeded")
	}
	for _, want := range []string{"no structured attrs found", "builder of the derivations that buildContainer"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Outside Nix, build --attrs --out makes the same bundle from a closure on this
// machine, and a failure leaves neither the output nor a partial directory.
func TestBuildCLIIntoDirectory(t *testing.T) {
	requireE2E(t)
	bb := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", busyboxDir)))
	hash := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--hash", bb)))
	size := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--size", bb)))
	attrs := func(program string) string {
		f := filepath.Join(t.TempDir(), "attrs.json")
		body := `{"name":"cli-bundle","system":"x86_64-linux","outputs":{"out":"/unused"},` +
			`"closure":[{"path":"` + bb + `","narHash":"` + hash + `","narSize":` + size + `,"references":[]}],` +
			`"container":{"args":["` + bb + `/bin/` + program + `","-c","echo built outside nix"]}}`
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "bundle")

	cmd := exec.Command(ocitoolsBin, "build", "--attrs", attrs("no-such-program"), "--out", out)
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "no-such-program") {
		t.Fatalf("build with a missing program: %v\n%s", err, msg)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("a failed build left %v in %s", entries, parent)
	}

	if msg, err := exec.Command(ocitoolsBin, "build", "--attrs", attrs("sh"), "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("ocitools build: %v\n%s", err, msg)
	}
	if got := runBundle(t, out); got != "built outside nix\n" {
		t.Errorf("container printed %q", got)
	}
	if msg, err := exec.Command(ocitoolsBin, "verify", out).CombinedOutput(); err != nil {
		t.Errorf("ocitools verify: %v\n%s", err, msg)
	}
	if msg, err := exec.Command(ocitoolsBin, "build", "--attrs", attrs("sh"), "--out", out).CombinedOutput(); err == nil || !strings.Contains(string(msg), "already exists") {
		t.Errorf("build into an existing --out: %v\n%s", err, msg)
	}
}
