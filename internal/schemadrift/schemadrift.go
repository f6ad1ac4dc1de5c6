// Package schemadrift is the one test that a package's copy of a spec
// module's JSON schemas (made by internal/schemacopy with go generate) is
// exactly the module's, at the version go.mod requires. It fails, never
// skips: a copy that cannot be compared is not known to be right.
package schemadrift

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Check compares dir (the package's schema directory) with module's
// schema/*.json (or the files matching patterns, when given) and LICENSE; gen
// is the go generate command to name.
func Check(t testing.TB, module, dir, gen string, patterns ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	mod := strings.TrimSpace(string(out))
	if len(patterns) == 0 {
		patterns = []string{"*.json"}
	}
	var upstream []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(mod, "schema", p))
		if err != nil || len(m) == 0 {
			t.Fatalf("no schema files %s in %s", p, mod)
		}
		upstream = append(upstream, m...)
	}
	local, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(local) != len(upstream) {
		t.Errorf("%s has %d JSON files, the module %d: run %s", dir, len(local), len(upstream), gen)
	}
	for _, f := range append(upstream, filepath.Join(mod, "LICENSE")) {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from %s (%v): run %s", dir, filepath.Base(f), f, err, gen)
		}
	}
}
