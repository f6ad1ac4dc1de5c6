// Package e2e holds the end-to-end tests: real nix-build in the sandbox, real
// runc, real users. They run when OCITOOLS_E2E=1 (the README's test command sets
// it); then a missing tool fails them instead of skipping them.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	enabled     = os.Getenv("OCITOOLS_E2E") == "1"
	repoRoot    string // the module root
	workDir     string // everything the harness makes lives here
	ocitoolsBin string // the static binary, workDir/ocitools/bin/ocitools
	libNix      string // e2e/testdata/lib.nix
	busyboxDir  string
)

func TestMain(m *testing.M) {
	if !enabled {
		fmt.Println("e2e: end-to-end tests did not run (set OCITOOLS_E2E=1 to run them)")
		os.Exit(m.Run())
	}
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set-up failed: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func setUp(m *testing.M) (int, error) {
	// Every program the tests start, so that a missing one fails here, by name,
	// rather than as a confusing error in the middle of a test.
	var missing []string
	for _, tool := range []string{"nix", "nix-build", "nix-store", "nix-instantiate", "runc", "busybox",
		"git", "go", "tar", "cp", "chmod", "chown", "setpriv", "useradd", "userdel", "usermod", "newuidmap", "newgidmap", "script"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("OCITOOLS_E2E=1, but these programs the tests need are not on PATH: %s (the README's test command, ./scripts/test, installs them)", strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return 0, errors.New("end-to-end tests run as root (they build with nix-build and start runc as root and as a test user)")
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	repoRoot = filepath.Dir(wd)
	libNix = filepath.Join(wd, "testdata", "lib.nix")
	// World-readable, so that the unprivileged test user can reach the binary.
	workDir, err = os.MkdirTemp("", "ocitools-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(workDir)
	if err := os.Chmod(workDir, 0o755); err != nil {
		return 0, err
	}
	ocitoolsBin = filepath.Join(workDir, "ocitools", "bin", "ocitools")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", ocitoolsBin, "./cmd/ocitools")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the static ocitools: %v\n%s", err, out)
	}
	if busyboxDir, err = makeBusyboxDir(filepath.Join(workDir, "busybox")); err != nil {
		return 0, err
	}
	code := m.Run()
	if err := removeTestUser(); err != nil {
		return 0, err
	}
	return code, nil
}

// makeBusyboxDir lays out busybox-static with one symlink per applet, so that
// "${busybox}/bin/sh" names an applet through argv[0].
func makeBusyboxDir(dir string) (string, error) {
	src, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o555); err != nil {
		return "", err
	}
	list, err := exec.Command(src, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// requireE2E skips a test unless end-to-end tests are on.
func requireE2E(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip("set OCITOOLS_E2E=1 to run end-to-end tests")
	}
}

// nixFile writes an expression that sees ociTools, busybox, writeScript and
// runCommand (testdata/lib.nix) and returns its path.
func nixFile(t *testing.T, expr string) string {
	t.Helper()
	requireE2E(t)
	f := filepath.Join(t.TempDir(), "test.nix")
	body := fmt.Sprintf("with import %s { ocitoolsDir = %s; busyboxDir = %s; repo = %s; };\n%s\n",
		libNix, filepath.Dir(filepath.Dir(ocitoolsBin)), busyboxDir, repoRoot, expr)
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

var nixFlags = []string{"--option", "sandbox", "true", "--option", "substituters", "", "--no-out-link"}

// nixBuildResult runs nix-build on expr and returns the output path, the log
// and the error.
func nixBuildResult(t *testing.T, expr string, extra ...string) (string, string, error) {
	t.Helper()
	args := append(append([]string{nixFile(t, expr)}, nixFlags...), extra...)
	cmd := exec.Command("nix-build", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return out, stderr.String(), err
}

// nixBuild builds expr in the sandbox and returns its output path. Every bundle
// built this way is held to what issue 2 asks of all of them: the build is
// reproducible (nix-build --check, at once), and when the test ends, after its
// containers ran, config.json validates against the runtime-spec schema and the
// store path is unmodified (nix-store --verify-path).
func nixBuild(t *testing.T, expr string) string {
	t.Helper()
	out, log, err := nixBuildResult(t, expr)
	if err != nil {
		t.Fatalf("nix-build failed: %v\n%s", err, log)
	}
	if !strings.HasPrefix(out, "/nix/store/") {
		t.Fatalf("nix-build printed %q, not a store path\n%s", out, log)
	}
	if _, err := os.Stat(filepath.Join(out, "config.json")); err == nil {
		if _, log, err := nixBuildResult(t, expr, "--check"); err != nil {
			t.Fatalf("nix-build --check: %s is not reproducible: %v\n%s", out, err, log)
		}
		t.Cleanup(func() { checkBundle(t, out) })
	}
	return out
}

// checkBundle: config.json validates, and the store path is what Nix registered.
func checkBundle(t *testing.T, bundle string) {
	t.Helper()
	out, err := exec.Command(ocitoolsBin, "validate", bundle).CombinedOutput()
	if err != nil {
		t.Errorf("ocitools validate %s: %v\n%s", bundle, err, out)
	}
	verifyStorePath(t, bundle)
}

// wantNoOutput checks that expr's output is not a valid store path (after a
// failed build: Nix registered nothing).
func wantNoOutput(t *testing.T, expr string) {
	t.Helper()
	drv, err := exec.Command("nix-instantiate", nixFile(t, expr)).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nix-store", "--query", "--outputs", strings.TrimSpace(string(drv))).Output()
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.TrimSpace(string(out)); isValidStorePath(p) {
		t.Errorf("failed build left a valid store path %s", p)
	}
}

// nixBuildFail builds expr, expects it to fail, and returns the log.
func nixBuildFail(t *testing.T, expr string) string {
	t.Helper()
	out, log, err := nixBuildResult(t, expr)
	if err == nil {
		t.Fatalf("nix-build succeeded with %s, want a failure", out)
	}
	return log
}

// verifyStorePath fails the test when p was modified after Nix registered it.
func verifyStorePath(t *testing.T, p string) {
	t.Helper()
	out, err := exec.Command("nix-store", "--verify-path", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("nix-store --verify-path %s: %v\n%s", p, err, out)
	}
}

// isValidStorePath reports whether Nix holds p as a valid path; a failed build
// can leave an invalid path behind on disk.
func isValidStorePath(p string) bool {
	return exec.Command("nix-store", "--check-validity", p).Run() == nil
}

func randomID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// runcRun runs bundle with runc as root, with a private state directory, and
// returns its output and exit code. The container's state is deleted afterwards.
func runcRun(t *testing.T, bundle string, runcArgs ...string) (stdout, stderr string, code int) {
	t.Helper()
	requireE2E(t)
	state := t.TempDir()
	id := randomID("e2e")
	args := append([]string{"--root", state, "run", "--bundle", bundle}, runcArgs...)
	cmd := exec.Command("runc", append(args, id)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	_ = exec.Command("runc", "--root", state, "delete", "--force", id).Run()
	return o.String(), e.String(), exitCode(t, err)
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("command did not run: %v", err)
	return -1
}

// testUser is an unprivileged account the tests create for rootless runs.
type testUser struct {
	Name     string
	UID, GID int
	Home     string
}

// testUserName is unique to this test process (useradd allows 32 characters),
// so that test runs side by side on one machine neither share nor remove each
// other's user; TestMain removes it when the tests end.
var testUserName = randomID("ocitools-e2e")

var (
	userOnce    sync.Once
	userVal     *testUser
	userErr     error
	userCreated bool
)

// unprivUser returns the unprivileged test user, creating it on first use.
func unprivUser(t *testing.T) *testUser {
	t.Helper()
	requireE2E(t)
	userOnce.Do(func() {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", testUserName).CombinedOutput(); err != nil {
			userErr = fmt.Errorf("useradd %s: %v\n%s", testUserName, err, out)
			return
		}
		userCreated = true
		u, err := user.Lookup(testUserName)
		if err != nil {
			userErr = err
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		userVal = &testUser{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir}
	})
	if userErr != nil {
		t.Fatal(userErr)
	}
	return userVal
}

// removeTestUser deletes the test user, its home and its subordinate ids, if
// this process created it.
func removeTestUser() error {
	if !userCreated {
		return nil
	}
	if out, err := exec.Command("userdel", "--remove", testUserName).CombinedOutput(); err != nil {
		return fmt.Errorf("userdel --remove %s: %v\n%s", testUserName, err, out)
	}
	return nil
}

// Command returns cmd to run as u, with a clean environment of its own: HOME,
// PATH and an XDG_RUNTIME_DIR it owns (rootless runtimes keep state there).
func (u *testUser) Command(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	runtimeDir := filepath.Join(u.Home, ".run-"+randomID("x"))
	if err := os.MkdirAll(runtimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(runtimeDir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runtimeDir) })
	setpriv := []string{"--reuid", strconv.Itoa(u.UID), "--regid", strconv.Itoa(u.GID), "--init-groups", "--", name}
	cmd := exec.Command("setpriv", append(setpriv, args...)...)
	cmd.Env = []string{
		"HOME=" + u.Home,
		"USER=" + u.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"XDG_RUNTIME_DIR=" + runtimeDir,
	}
	cmd.Dir = u.Home
	return cmd
}
