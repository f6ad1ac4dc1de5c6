package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// flakeDir copies what the flake needs (everything git would give it) into a
// fresh directory, so that uncommitted work is what gets tested.
func flakeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"flake.nix", "nix/oci-tools.nix", "nix/overlay.nix", "nix/package.nix", "spec/known.json"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nixFlake runs a flake command of Nix against the stand-in nixpkgs in
// testdata/stub-nixpkgs, built from this machine.
func nixFlake(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	requireE2E(t)
	stub, err := filepath.Abs("testdata/stub-nixpkgs")
	if err != nil {
		t.Fatal(err)
	}
	// The options go right after the subcommand: what follows `--` in args
	// belongs to the program `nix run` starts.
	full := []string{"--extra-experimental-features", "nix-command flakes", args[0],
		"--impure", "--no-write-lock-file",
		"--override-input", "nixpkgs", "path:" + stub,
		"--option", "sandbox", "true", "--option", "substituters", ""}
	full = append(full, args[1:]...)
	cmd := exec.Command("nix", full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OCITOOLS_STUB_BIN="+filepath.Dir(filepath.Dir(ocitoolsBin)),
		"OCITOOLS_STUB_BUSYBOX="+busyboxDir)
	return cmd
}

func flakeBuild(t *testing.T, dir, attr string) string {
	t.Helper()
	out, err := nixFlake(t, dir, "build", "--no-link", "--json", "path:"+dir+"#"+attr).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("nix build .#%s: %v\n%s", attr, err, stderr)
	}
	var res []struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
		t.Fatalf("nix build --json printed %s: %v", out, err)
	}
	return res[0].Outputs["out"]
}

// The flake's outputs evaluate and build: the package through the overlay, and
// every check bundle, which runc then runs.
func TestFlakeChecksBuildAndRun(t *testing.T) {
	requireE2E(t)
	dir := flakeDir(t)
	system := strings.TrimSpace(mustOutput(t, exec.Command("nix-instantiate", "--eval", "--expr", "builtins.currentSystem")))
	system = strings.Trim(system, `"`)

	pkg := flakeBuild(t, dir, "packages."+system+".default")
	if _, err := os.Stat(filepath.Join(pkg, "bin", "ocitools")); err != nil {
		t.Errorf("packages.default has no bin/ocitools: %v", err)
	}

	hello := flakeBuild(t, dir, "checks."+system+".hello-bundle")
	if got := runBundle(t, hello); !strings.HasPrefix(got, "hi from /nix/store/") || !strings.HasSuffix(got, "-hello\n") {
		t.Errorf("hello-bundle printed %q", got)
	}
	t.Cleanup(func() { checkBundle(t, hello) })

	bash := flakeBuild(t, dir, "checks."+system+".bash-bundle")
	if _, err := os.Stat(filepath.Join(bash, "config.json")); err != nil {
		t.Errorf("bash-bundle: %v", err)
	}
	bind := flakeBuild(t, dir, "checks."+system+".bind-bundle")
	if got := runBundle(t, bind); got != "Hello, world!\n" {
		t.Errorf("bind-bundle printed %q", got)
	}
	t.Cleanup(func() { checkBundle(t, bind) })

	// nix run starts a bundle through its bin/<name> link to ocitools run.
	if got := mustOutput(t, nixFlake(t, dir, "run", "path:"+dir+"#example")); !strings.HasPrefix(got, "hi from /nix/store/") {
		t.Errorf("nix run .#example printed %q", got)
	}
	// Arguments after -- go to the program, as nix run users expect.
	if got := mustOutput(t, nixFlake(t, dir, "run", "path:"+dir+"#example", "--", "--greeting", "overridden")); got != "overridden\n" {
		t.Errorf("nix run .#example -- --greeting overridden printed %q", got)
	}

	// lib.ociTools is the wrapper, callable with any ocitools.
	out := mustOutput(t, nixFlake(t, dir, "eval", "--raw", "path:"+dir+"#lib",
		"--apply", `lib: builtins.typeOf (lib.ociTools { ocitools = "/nix/store/00000000000000000000000000000000-x"; }).buildContainer`))
	if out != "lambda" {
		t.Errorf("lib.ociTools {...}.buildContainer is a %s", out)
	}
}

func mustOutput(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr)
	}
	return string(out)
}
