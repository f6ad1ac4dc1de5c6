// Command schemacopy copies a spec module's JSON schemas (schema/*.json and
// LICENSE) from the module cache, at the version go.mod requires, into a
// package's directory (a Go module cannot embed another module's files). One
// tool for every spec: spec copies the runtime-spec's (go generate ./spec),
// image/validate the image-spec's (go generate ./image/validate), sbom the
// CycloneDX 1.6 schema and the two it refers to (go generate ./sbom); their
// tests fail when a copy differs from the module's files.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// source is what is copied from one module, and whose copyright it is.
type source struct {
	// files are globs under the module's schema/ directory.
	files  []string
	holder string
}

// modules are the specs whose schemas are copied.
var modules = map[string]source{
	"github.com/opencontainers/runtime-spec": {[]string{"*.json"}, "2015 The Linux Foundation"},
	"github.com/opencontainers/image-spec":   {[]string{"*.json"}, "2016 The Linux Foundation"},
	// Only the version the SBOM is written in; bom-1.6 refers to the SPDX
	// license list and the JSON signature format by these file names.
	"github.com/CycloneDX/cyclonedx-go": {[]string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schemax.json"}, "the OWASP Foundation"},
}

func main() {
	if _, ok := modules[os.Args[min(1, len(os.Args)-1)]]; len(os.Args) != 4 || !ok {
		fmt.Fprintln(os.Stderr, "usage: schemacopy MODULE DESTDIR PACKAGE (MODULE: github.com/opencontainers/runtime-spec, image-spec or github.com/CycloneDX/cyclonedx-go; PACKAGE: ./spec, ./image/validate or ./sbom, for the notice)")
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
	src := modules[module]
	var files []string
	for _, pattern := range src.files {
		matched, err := filepath.Glob(filepath.Join(dir, "schema", pattern))
		if err != nil || len(matched) == 0 {
			return fmt.Errorf("no schema files %s in %s/schema", pattern, dir)
		}
		files = append(files, matched...)
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
	notice := fmt.Sprintf("These files are copied unchanged from %s (schema/%s and LICENSE),\n"+
		"the version go.mod requires, by `go generate %s`. They are under the Apache\n"+
		"License 2.0 (LICENSE in this directory), copyright %s.\n"+
		"Do not edit them: run go generate.\n", module, strings.Join(src.files, ", schema/"), pkg, src.holder)
	return writeIfChanged(filepath.Join(dest, "README.md"), []byte(notice))
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}
