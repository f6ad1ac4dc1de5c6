package nar

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nixTool finds a Nix command; the comparison with Nix itself is the point of
// these tests, so with OCITOOLS_E2E=1 a missing Nix fails them.
func nixTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("OCITOOLS_E2E") == "1" {
			t.Fatalf("%s is not installed: %v", name, err)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

type node struct {
	path, kind, arg string // kind: file, exec, link, dir
}

func makeTree(t *testing.T, root string, nodes []node) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(root, n.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch n.kind {
		case "file":
			err = os.WriteFile(p, []byte(n.arg), 0o644)
		case "exec":
			err = os.WriteFile(p, []byte(n.arg), 0o755)
		case "link":
			err = os.Symlink(n.arg, p)
		case "dir":
			err = os.MkdirAll(p, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestHashPathMatchesNix(t *testing.T) {
	nixHash := nixTool(t, "nix-hash")
	nixStore := nixTool(t, "nix-store")
	big := strings.Repeat("0123456789abcdef", 70000) // >1 MiB, not a multiple of 8
	tests := []struct {
		name  string
		top   string // "" for a directory tree
		nodes []node
	}{
		{name: "regular file", top: "file", nodes: []node{{"", "file", "hello\n"}}},
		{name: "empty file", top: "file", nodes: []node{{"", "file", ""}}},
		{name: "executable", top: "exec", nodes: []node{{"", "exec", "#!/bin/sh\n"}}},
		{name: "symlink", top: "link", nodes: []node{{"", "link", "/nowhere/at/all"}}},
		{name: "empty dir", nodes: nil},
		{name: "tree", nodes: []node{
			{"bin/tool", "exec", "#!/bin/sh\necho hi\n"},
			{"bin/sh", "link", "tool"},
			{"lib/outside", "link", "/etc/passwd"},
			{"share/empty", "dir", ""},
			{"share/big", "file", big},
			{"share/a-b", "file", "x"},
			{"share/a.b", "file", "y"},
			{"share/A", "file", "z"},
			{"Zfirst/zero", "file", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "item")
			switch tt.top {
			case "":
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				makeTree(t, p, tt.nodes)
			default:
				makeTree(t, filepath.Dir(p), []node{{"item", tt.nodes[0].kind, tt.nodes[0].arg}})
			}
			out, err := exec.Command(nixHash, "--type", "sha256", "--base32", p).Output()
			if err != nil {
				t.Fatalf("nix-hash: %v", err)
			}
			dump, err := exec.Command(nixStore, "--dump", p).Output()
			if err != nil {
				t.Fatalf("nix-store --dump: %v", err)
			}
			h, size, err := HashPath(p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := Format(h), "sha256:"+strings.TrimSpace(string(out)); got != want {
				t.Errorf("HashPath = %s, nix-hash says %s", got, want)
			}
			if size != uint64(len(dump)) {
				t.Errorf("NAR size %d, nix-store --dump wrote %d bytes", size, len(dump))
			}
		})
	}
}

func TestHashPathErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := HashPath(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v does not name %s", err, missing)
	}
}

// BenchmarkHashPath hashes a 64 MiB file: throughput is the NAR hashing cost
// per byte that verification adds.
func BenchmarkHashPath(b *testing.B) {
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, bytes.Repeat([]byte{1}, 64<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	for i := 0; i < b.N; i++ {
		if _, _, err := HashPath(p); err != nil {
			b.Fatal(err)
		}
	}
}
