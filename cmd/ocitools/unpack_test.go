package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsRegistryRef(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "a.b:c")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"127.0.0.1:5000/app:1": true,
		"ghcr.io/me/app":       true,
		"localhost/app":        true,
		"docker://x/y":         true,
		"app:1":                false, // no registry host: a path
		"./result":             false,
		"../x.y/z":             false,
		"result/sub":           false,
		"/nix/store/x":         false,
		existing + "/x":        false, // its first component is ""
		"a.b/c":                true,
	}
	for in, want := range cases {
		if got := isRegistryRef(in); got != want {
			t.Errorf("isRegistryRef(%q) = %v, want %v", in, got, want)
		}
	}
}
