// Package storetest makes small fake Nix stores for the image packages' tests.
package storetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Path is the store path of a fake package: hash letter c repeated 32 times.
func Path(c byte, name string) string {
	return "/nix/store/" + strings.Repeat(string(c), 32) + "-" + name
}

// File is a file to create: Link set makes a symlink, Dir a directory, else
// a regular file with Data and Mode.
type File struct {
	Path string // absolute, under a store path
	Data string
	Mode os.FileMode
	Link string
	Dir  bool
}

// Make creates files under a new root and returns it; store paths then live
// at root + "/nix/store/...".
func Make(t testing.TB, files []File) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Link != "":
			if err := os.Symlink(f.Link, p); err != nil {
				t.Fatal(err)
			}
		case f.Dir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			mode := f.Mode
			if mode == 0 {
				mode = 0o444
			}
			if err := os.WriteFile(p, []byte(f.Data), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}
