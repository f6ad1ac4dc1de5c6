package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// flakeDir exports the tracked files, as they are in the working tree, into a
// fresh directory: what a flake gets from git (tracked files only), so that
// untracked files cannot make the test pass and uncommitted edits are tested.
func flakeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rev := strings.TrimSpace(mustOutput(t, gitCmd("stash", "create")))
	if rev == "" {
		rev = "HEAD"
	}
	archive := gitCmd("archive", "--format=tar", rev)
	untar := exec.Command("tar", "-xf", "-", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	if err := archive.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("git archive | tar: %v\n%s", err, out)
	}
	if err := archive.Wait(); err != nil {
		t.Fatalf("git archive %s: %v", rev, err)
	}
	return dir
}

func gitCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	return cmd
}

// nixFlake runs a flake command of Nix against the stand-in nixpkgs in
// testdata/stub-nixpkgs; its buildGoModule installs the binaries in stubBin/bin.
func nixFlake(t *testing.T, dir, stubBin string, args ...string) *exec.Cmd {
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
		"OCITOOLS_STUB_BIN="+stubBin,
		"OCITOOLS_STUB_BUSYBOX="+busyboxDir)
	return cmd
}

// goModuleArgs is what nix/package.nix asks of buildGoModule, as the stand-in
// records it.
type goModuleArgs struct {
	Pname, Version, Src, VendorHash, MainProgram string
	SubPackages, Ldflags, Tags                   []string
	Env                                          map[string]string
	DoCheck                                      bool
}

// buildAsAsked does what nixpkgs' buildGoModule does with package.nix's
// arguments, on the filtered source Nix made: `go mod vendor` (whose NAR hash
// must be vendorHash), then `go build` (and `go test` when doCheck) of
// subPackages with its ldflags, tags and env, against the vendor directory only.
// It returns the directory holding bin/.
func buildAsAsked(t *testing.T, dir, system string) (string, goModuleArgs) {
	t.Helper()
	var a goModuleArgs
	out := mustOutput(t, nixFlake(t, dir, filepath.Dir(filepath.Dir(ocitoolsBin)),
		"eval", "--json", "path:"+dir+"#packages."+system+".default.goModuleArgs"))
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("goModuleArgs: %v\n%s", err, out)
	}
	src := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("cp", "-r", a.Src, src).CombinedOutput(); err != nil {
		t.Fatalf("cp %s: %v\n%s", a.Src, err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	goCmd := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in package.nix's source: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	goCmd([]string{"GOFLAGS=-mod=mod"}, "mod", "vendor")
	hash := exec.Command("go", "run", "./scripts/vendorhash.d", filepath.Join(src, "vendor"))
	hash.Dir = repoRoot
	if got := strings.TrimSpace(mustOutput(t, hash)); got != a.VendorHash {
		t.Errorf("package.nix's source vendors to %s, its vendorHash is %s", got, a.VendorHash)
	}
	bin := filepath.Join(t.TempDir(), "pkg")
	var env []string
	for k, v := range a.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "GOFLAGS=-mod=vendor")
	flags := []string{"-trimpath", "-tags", strings.Join(a.Tags, ","), "-ldflags", strings.Join(a.Ldflags, " ")}
	for _, p := range a.SubPackages {
		goCmd(env, append(append([]string{"build"}, flags...), "-o", filepath.Join(bin, "bin", filepath.Base(p)), "./"+p)...)
		if a.DoCheck {
			goCmd(env, append(append([]string{"test"}, flags...), "./"+p)...)
		}
	}
	return bin, a
}

func flakeBuild(t *testing.T, dir, stubBin, attr string) string {
	t.Helper()
	out, err := nixFlake(t, dir, stubBin, "build", "--no-link", "--json", "path:"+dir+"#"+attr).Output()
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

// The flake's outputs evaluate and build: the package through the overlay, as
// package.nix asks buildGoModule to build it, every check bundle, built by
// that binary and run by runc, and the example image, copied by nix run.
func TestFlakeChecksBuildAndRun(t *testing.T) {
	requireE2E(t)
	dir := flakeDir(t)
	system := strings.TrimSpace(mustOutput(t, exec.Command("nix-instantiate", "--eval", "--expr", "builtins.currentSystem")))
	system = strings.Trim(system, `"`)

	stubBin, args := buildAsAsked(t, dir, system)
	pkg := flakeBuild(t, dir, stubBin, "packages."+system+".default")
	main := filepath.Join(pkg, "bin", args.MainProgram)
	// The version comes from ldflags; -s -w strip the symbol table.
	if got := mustOutput(t, exec.Command(main, "--version")); got != "ocitools version "+args.Version+"\n" {
		t.Errorf("%s --version printed %q, want version %s", main, got, args.Version)
	}
	if out, err := exec.Command("go", "tool", "nm", main).CombinedOutput(); err == nil || !strings.Contains(string(out), "no symbols") {
		t.Errorf("go tool nm %s: %v %s; want no symbols (ldflags -s)", main, err, firstLine(out))
	}

	hello := flakeBuild(t, dir, stubBin, "checks."+system+".hello-bundle")
	if got := runBundle(t, hello); !strings.HasPrefix(got, "hi from /nix/store/") || !strings.HasSuffix(got, "-hello\n") {
		t.Errorf("hello-bundle printed %q", got)
	}
	t.Cleanup(func() { checkBundle(t, hello) })

	bash := flakeBuild(t, dir, stubBin, "checks."+system+".bash-bundle")
	if _, err := os.Stat(filepath.Join(bash, "config.json")); err != nil {
		t.Errorf("bash-bundle: %v", err)
	}
	bind := flakeBuild(t, dir, stubBin, "checks."+system+".bind-bundle")
	if got := runBundle(t, bind); got != "Hello, world!\n" {
		t.Errorf("bind-bundle printed %q", got)
	}
	t.Cleanup(func() { checkBundle(t, bind) })

	// nix run starts a bundle through its bin/<name> link to ocitools run.
	if got := mustOutput(t, nixFlake(t, dir, stubBin, "run", "path:"+dir+"#example")); !strings.HasPrefix(got, "hi from /nix/store/") {
		t.Errorf("nix run .#example printed %q", got)
	}
	// Arguments after -- go to the program, as nix run users expect.
	if got := mustOutput(t, nixFlake(t, dir, stubBin, "run", "path:"+dir+"#example", "--", "--greeting", "overridden")); got != "overridden\n" {
		t.Errorf("nix run .#example -- --greeting overridden printed %q", got)
	}

	// The example image: a valid OCI image layout, which its copyTo program
	// copies (nix run) into an oci: layout that unpacks into a bundle runc
	// runs.
	image := flakeBuild(t, dir, stubBin, "checks."+system+".hello-image")
	if out, err := exec.Command(ocitoolsBin, "validate", image).CombinedOutput(); err != nil {
		t.Errorf("ocitools validate %s: %v\n%s", image, err, out)
	}
	copied := filepath.Join(t.TempDir(), "copied")
	if out, err := nixFlake(t, dir, stubBin, "run", "path:"+dir+"#example-image.copyTo", "--", "oci:"+copied).CombinedOutput(); err != nil {
		t.Fatalf("nix run .#example-image.copyTo -- oci:%s: %v\n%s", copied, err, out)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(ocitoolsBin, "unpack", copied+":latest", bundle).CombinedOutput(); err != nil {
		t.Fatalf("ocitools unpack %s:latest: %v\n%s", copied, err, out)
	}
	if got := runBundle(t, bundle); got != "Hello, world!\n" {
		t.Errorf("the example image printed %q", got)
	}

	// lib.ociTools is the wrapper, callable with any ocitools.
	out := mustOutput(t, nixFlake(t, dir, stubBin, "eval", "--raw", "path:"+dir+"#lib",
		"--apply", `lib: let t = lib.ociTools { ocitools = "/nix/store/00000000000000000000000000000000-x"; }; in builtins.concatStringsSep " " (map (n: builtins.typeOf t.${n}) [ "buildContainer" "buildImage" "buildLayer" "buildIndex" "toArchive" "withCopyPrograms" ])`))
	if out != "lambda lambda lambda lambda lambda lambda" {
		t.Errorf("lib.ociTools {...}'s buildContainer, buildImage, buildLayer, buildIndex, toArchive, withCopyPrograms are: %s", out)
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

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
