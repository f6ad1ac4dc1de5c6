// Command schemacopy copies a spec module's JSON schemas (schema/*.json and
// LICENSE) from the module cache, at the version go.mod requires, into a
// package's directory (a Go module cannot embed another module's files). One
// tool for both specs: spec copies the runtime-spec's (go generate ./spec),
// image/validate the image-spec's (go generate ./image/validate); their tests
// fail when a copy differs from the module's files.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modules are the specs whose schemas are copied, with the year of their
// copyright notice.
var modules = map[string]string{
	"github.com/opencontainers/runtime-spec": "2015",
	"github.com/opencontainers/image-spec":   "2016",
}

func main() {
	if len(os.Args) != 4 || modules[os.Args[1]] == "" {
		fmt.Fprintln(os.Stderr, "usage: schemacopy MODULE DESTDIR PACKAGE (MODULE: github.com/opencontainers/runtime-spec or image-spec; PACKAGE: ./spec or ./image/validate, for the notice)")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintf(os.Stderr, "schemacopy: %v\n", err)
		os.Exit(1)
	}
}

func run(module, dest, pkg string) error {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		return fmt.Errorf("locating %s in the module cache (run `go mod download` first): %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	files, err := filepath.Glob(filepath.Join(dir, "schema", "*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no schema files in %s/schema", dir)
	}
	files = append(files, filepath.Join(dir, "LICENSE"))
	old, _ := filepath.Glob(filepath.Join(dest, "*.json"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		// Module cache files are read-only; the copies are ordinary files.
		if err := os.WriteFile(filepath.Join(dest, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	notice := fmt.Sprintf("These files are copied unchanged from %s (schema/*.json and LICENSE),\n"+
		"the version go.mod requires, by `go generate %s`. They are under the Apache\n"+
		"License 2.0 (LICENSE in this directory), copyright %s The Linux Foundation.\n"+
		"Do not edit them: run go generate.\n", module, pkg, modules[module])
	return writeIfChanged(filepath.Join(dest, "README.md"), []byte(notice))
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}
