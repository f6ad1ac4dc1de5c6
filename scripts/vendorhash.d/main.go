// Command vendorhash.d prints the NAR hash of a directory in SRI form
// (sha256-BASE64), as buildGoModule's vendorHash spells it. scripts/vendorhash
// runs it on a freshly vendored export of the tracked tree. Where nix-hash is
// installed, it cross-checks go-nix's NAR serialisation with Nix's own.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vendorhash.d DIR")
		os.Exit(2)
	}
	sri, err := narHash(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "vendorhash: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(sri)
}

func narHash(dir string) (string, error) {
	h := sha256.New()
	if err := nar.DumpPath(h, dir); err != nil {
		return "", fmt.Errorf("NAR of %s: %w", dir, err)
	}
	digest := h.Sum(nil)
	if _, err := exec.LookPath("nix-hash"); err == nil {
		out, err := exec.Command("nix-hash", "--type", "sha256", "--base32", dir).Output()
		if err != nil {
			return "", fmt.Errorf("nix-hash %s: %w", dir, err)
		}
		if got, want := strings.TrimSpace(string(out)), nixbase32.EncodeToString(digest); got != want {
			return "", fmt.Errorf("nix-hash says %s, go-nix's NAR says %s", got, want)
		}
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(digest), nil
}
