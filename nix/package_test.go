// Package nix holds the tests of the Nix expressions that live beside it.
package nix

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// vendorHash of package.nix must be the NAR hash of what `go mod vendor`
// produces for go.mod and go.sum, as buildGoModule computes it; otherwise the
// package fails for every nixpkgs user. The test recomputes it, so a dependency
// change that forgets package.nix fails here, with the value to use.
func TestVendorHashMatchesGoSum(t *testing.T) {
	expr, err := os.ReadFile("package.nix")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`vendorHash = "(sha256-[A-Za-z0-9+/=]+)";`).FindSubmatch(expr)
	if m == nil {
		t.Fatal(`package.nix has no vendorHash = "sha256-...";`)
	}
	vendor := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", vendor)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	h := sha256.New()
	if err := nar.DumpPath(h, vendor); err != nil {
		t.Fatalf("NAR of the vendor directory: %v", err)
	}
	digest := h.Sum(nil)
	// Cross-check the NAR hashing with Nix's own where Nix is installed.
	if _, err := exec.LookPath("nix-hash"); err == nil {
		out, err := exec.Command("nix-hash", "--type", "sha256", "--base32", vendor).Output()
		if err != nil {
			t.Fatalf("nix-hash: %v", err)
		}
		if got, want := strings.TrimSpace(string(out)), nixbase32.EncodeToString(digest); got != want {
			t.Fatalf("nix-hash says %s, go-nix's NAR says %s", got, want)
		}
	}
	want := "sha256-" + base64.StdEncoding.EncodeToString(digest)
	if got := string(m[1]); got != want {
		t.Errorf("nix/package.nix: vendorHash = %q, but go.mod/go.sum vendor to %q; set it to that", got, want)
	}
}
