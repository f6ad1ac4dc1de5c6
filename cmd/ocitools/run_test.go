package main

import (
	"os"
	"path/filepath"
	"testing"
)

// multicall finds the bundle from the link's own path, never from its target.
func TestMulticall(t *testing.T) {
	pkg := t.TempDir() // stands for the ocitools package the links point at
	self := filepath.Join(pkg, "bin", "ocitools")
	runTestMkdir(t, filepath.Dir(self))
	runTestWrite(t, self, "#!/bin/sh\n", 0o755)

	bundle := t.TempDir()
	runTestMkdir(t, filepath.Join(bundle, "bin"))
	runTestWrite(t, filepath.Join(bundle, "config.json"), "{}", 0o644)
	link := filepath.Join(bundle, "bin", "hello")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	// A link in a bin/ whose parent is no bundle.
	stray := t.TempDir()
	runTestMkdir(t, filepath.Join(stray, "bin"))
	strayLink := filepath.Join(stray, "bin", "hello2")
	if err := os.Symlink(self, strayLink); err != nil {
		t.Fatal(err)
	}
	// A link outside any bin/.
	loose := filepath.Join(bundle, "hello3")
	if err := os.Symlink(self, loose); err != nil {
		t.Fatal(err)
	}

	t.Setenv("PATH", filepath.Join(bundle, "bin")+":"+filepath.Join(stray, "bin"))
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(wd) })
	if err := os.Chdir(bundle); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		argv0 string
		want  string // "" means: not a multicall
	}{
		{link, bundle},
		{"./bin/hello", bundle},
		{"hello", bundle}, // through PATH
		{self, ""},        // the program itself
		{"ocitools", ""},
		{strayLink, ""},
		{"hello2", ""},
		{loose, ""},
		{"no-such-program", ""},
	}
	for _, tt := range tests {
		t.Run(tt.argv0, func(t *testing.T) {
			got, ok := multicall([]string{tt.argv0, "x"})
			if ok != (tt.want != "") || got != tt.want {
				t.Fatalf("multicall(%q) = %q, %v; want %q", tt.argv0, got, ok, tt.want)
			}
		})
	}
	if _, ok := multicall(nil); ok {
		t.Error("multicall(nil) is a multicall")
	}
}

func runTestMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func runTestWrite(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
