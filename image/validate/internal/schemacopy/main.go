// Command schemacopy copies the image-spec JSON schemas from the module cache,
// at the version go.mod requires, into image/validate/schema (a Go module
// cannot embed another module's files). Run by `go generate ./image/validate`;
// the package's tests fail when the copy differs from the module's files.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const module = "github.com/opencontainers/image-spec"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schemacopy DESTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "schemacopy: %v\n", err)
		os.Exit(1)
	}
}

func run(dest string) error {
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
		if err := os.WriteFile(filepath.Join(dest, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	notice := fmt.Sprintf("These files are copied unchanged from %s (schema/*.json and LICENSE),\n"+
		"the version go.mod requires, by `go generate ./image/validate`. They are under the\n"+
		"Apache License 2.0 (LICENSE in this directory), copyright 2016 The Linux Foundation.\n"+
		"Do not edit them: run go generate.\n", module)
	return writeIfChanged(filepath.Join(dest, "README.md"), []byte(notice))
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}
