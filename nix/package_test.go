// Package nix holds the tests of the Nix expressions that live beside it.
package nix

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// vendorHash of package.nix must be the NAR hash of what `go mod vendor`
// produces for the tracked tree, as buildGoModule computes it; otherwise the
// package fails for every nixpkgs user. The test runs scripts/vendorhash, the
// same command a developer runs to get the value (a clean export of the tracked
// files, `go mod verify`, `go mod vendor`), so a dependency change that forgets
// package.nix fails here with the value to use, and the value does not depend
// on untracked files or on a module cache changed by hand.
func TestVendorHashMatchesGoSum(t *testing.T) {
	expr, err := os.ReadFile("package.nix")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`vendorHash = "(sha256-[A-Za-z0-9+/=]+)";`).FindSubmatch(expr)
	if m == nil {
		t.Fatal(`package.nix has no vendorHash = "sha256-...";`)
	}
	cmd := exec.Command("../scripts/vendorhash")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/vendorhash: %v\n%s", err, stderr.String())
	}
	want := strings.TrimSpace(string(out))
	if got := string(m[1]); got != want {
		t.Errorf("nix/package.nix: vendorHash = %q, but the tracked tree vendors to %q (scripts/vendorhash); set it to that", got, want)
	}
}

// Every file a //go:embed directive names is in package.nix's source filter:
// else the package's build fails with "pattern ...: no matching files found".
func TestSourceFilterHasEmbeddedFiles(t *testing.T) {
	expr, err := os.ReadFile("package.nix")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.\./([A-Za-z0-9_./-]+)`).FindAllStringSubmatch(string(expr), -1) {
		listed[m[1]] = true
	}
	out, err := exec.Command("git", "-C", "..", "ls-files", "*.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	embed := regexp.MustCompile(`(?m)^//go:embed (.+)$`)
	var missing []string
	for _, f := range strings.Fields(string(out)) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range embed.FindAllStringSubmatch(string(src), -1) {
			for _, pat := range strings.Fields(m[1]) {
				p := filepath.ToSlash(filepath.Join(filepath.Dir(f), strings.TrimPrefix(pat, "all:")))
				if !coveredBy(p, listed) {
					missing = append(missing, f+": "+pat)
				}
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("package.nix's src leaves out embedded files; add them to the fileset: %s", strings.Join(missing, "; "))
	}
}

// coveredBy: the pattern p (a file, a directory or a glob) lies under a listed path.
func coveredBy(p string, listed map[string]bool) bool {
	for dir := p; dir != "." && dir != "/"; dir = filepath.Dir(dir) {
		if listed[dir] {
			return true
		}
	}
	return false
}
