package bundle

import (
	"github.com/ocitools/ocitools/layout"

	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/nar"
	"github.com/ocitools/ocitools/spec"
)

const fakeStorePath = "/nix/store/0c3ajpr3l2ny8kr2jq1c7ddd0ffjfzp6-fake-sh"

// fakeStore makes a store under a temporary root holding one path with an
// executable bin/sh, and returns the root and that path's closure element.
func fakeStore(t *testing.T) (string, derivation.PathInfoJSON) {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, fakeStorePath)
	if err := os.MkdirAll(filepath.Join(p, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "bin", "sh"), []byte("#!/bin/false\n"), 0o555); err != nil {
		t.Fatal(err)
	}
	h, size, err := nar.HashPath(p)
	if err != nil {
		t.Fatal(err)
	}
	return root, derivation.PathInfoJSON{Path: fakeStorePath, NarHash: nar.Format(h), NarSize: size, References: []string{}}
}

func attrsWith(t *testing.T, item derivation.PathInfoJSON, options string) *derivation.Attrs {
	t.Helper()
	closure, err := json.Marshal([]derivation.PathInfoJSON{item})
	if err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`{"name":"fake-bundle","system":"x86_64-linux","outputs":{"out":"/unused"},"closure":%s,"container":%s}`, closure, options)
	a, err := derivation.ParseAttrs([]byte(raw))
	if err != nil {
		t.Fatalf("ParseAttrs: %v", err)
	}
	return a
}

func TestBuildWritesACompleteBundle(t *testing.T) {
	root, item := fakeStore(t)
	out := filepath.Join(t.TempDir(), "bundle")
	req := Request{
		Attrs:      attrsWith(t, item, `{"args":["`+fakeStorePath+`/bin/sh","-c","true"]}`),
		Out:        out,
		Self:       "/nix/store/00000000000000000000000000000000-ocitools/bin/ocitools",
		SourceRoot: root,
	}
	if err := Build(req); err != nil {
		t.Fatalf("Build: %v", err)
	}
	for _, p := range []string{layout.ConfigFile, layout.ClosureFile, "rootfs" + fakeStorePath + "/bin/sh"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("bundle lacks %s: %v", p, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(out, layout.BinDir, "fake-bundle")); err != nil || target != req.Self {
		t.Errorf("bin/fake-bundle links to %q (%v), want %s", target, err, req.Self)
	}
	if errs := spec.ValidateBundle(out); len(errs) > 0 {
		t.Errorf("built bundle does not validate: %v", errs)
	}
}

// A failure at any step leaves nothing: no half bundle that looks complete.
func TestBuildFailureRemovesOutput(t *testing.T) {
	root, item := fakeStore(t)
	badHash := item
	badHash.NarHash = "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
	for _, tc := range []struct {
		name    string
		item    derivation.PathInfoJSON
		options string
		want    string
	}{
		{"unknown option", item, `{"args":["` + fakeStorePath + `/bin/sh"],"readOnly":true}`, "readOnly"},
		{"program not in the rootfs", item, `{"args":["` + fakeStorePath + `/bin/bash"]}`, "bin/bash"},
		{"copy does not match narHash", badHash, `{"args":["` + fakeStorePath + `/bin/sh"],"verify":true}`, fakeStorePath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle")
			err := Build(Request{Attrs: attrsWith(t, tc.item, tc.options), Out: out, SourceRoot: root})
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if _, statErr := os.Lstat(out); !os.IsNotExist(statErr) {
				t.Errorf("output %s survived the failure (%v)", out, statErr)
			}
		})
	}
}

func TestBuildRefusesExistingOutput(t *testing.T) {
	root, item := fakeStore(t)
	out := t.TempDir()
	marker := filepath.Join(out, "keep")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Build(Request{Attrs: attrsWith(t, item, `{"args":["`+fakeStorePath+`/bin/sh"]}`), Out: out, SourceRoot: root})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Build into an existing directory: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("existing output was touched: %v", err)
	}
}
