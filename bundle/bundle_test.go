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
	a, err := derivation.ParseAttrs([]byte(raw), derivation.ContainerKey)
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

// In copy mode a bind of a closure path binds the bundle's own copy (a source
// relative to the bundle, read-only), so the bundle does not need the host's
// store; in bind mode it stays the host's store path.
func TestCopyModeBindsOwnCopies(t *testing.T) {
	root, item := fakeStore(t)
	opts := func(mode string) string {
		return `{"args":["` + fakeStorePath + `/bin/sh"],"storeMode":"` + mode + `","mounts":{` +
			`"/etc/app.sh":{"type":"bind","source":"` + fakeStorePath + `/bin/sh","options":["rbind","rw"]},` +
			`"/opt/pkg":{"type":"bind","source":"` + fakeStorePath + `"},` +
			`"/host":{"type":"bind","source":"/etc","options":["rbind","ro"]}}}`
	}
	for _, tt := range []struct {
		mode          string
		wantFile, dir string
	}{
		{"copy", "rootfs" + fakeStorePath + "/bin/sh", "rootfs" + fakeStorePath},
		{"bind", fakeStorePath + "/bin/sh", fakeStorePath},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle")
			if err := Build(Request{Attrs: attrsWith(t, item, opts(tt.mode)), Out: out, SourceRoot: root}); err != nil {
				t.Fatalf("Build: %v", err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(out) })
			data, err := os.ReadFile(filepath.Join(out, layout.ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Mounts []struct {
					Destination, Source string
					Options             []string
				}
			}
			if err := json.Unmarshal(data, &cfg); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			ro := map[string]bool{}
			for _, m := range cfg.Mounts {
				got[m.Destination] = m.Source
				ro[m.Destination] = strings.Join(m.Options, ",") == "rbind,ro" || strings.Join(m.Options, ",") == "ro"
			}
			if got["/etc/app.sh"] != tt.wantFile || got["/opt/pkg"] != tt.dir || got["/host"] != "/etc" {
				t.Errorf("bind sources: %v", got)
			}
			if tt.mode == "copy" && (!ro["/etc/app.sh"] || !ro["/opt/pkg"]) {
				t.Errorf("a bind of the bundle's own copy is not read-only: %s", data)
			}
			// A file bind gets a file mount point, a directory bind a directory.
			if fi, err := os.Lstat(filepath.Join(out, "rootfs", "etc", "app.sh")); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("mount point /etc/app.sh: %v %v", fi, err)
			}
			if fi, err := os.Lstat(filepath.Join(out, "rootfs", "opt", "pkg")); err != nil || !fi.IsDir() {
				t.Errorf("mount point /opt/pkg: %v %v", fi, err)
			}
			if tt.mode == "copy" {
				if errs := spec.ValidateBundle(out); len(errs) != 0 {
					t.Errorf("ValidateBundle: %v", errs)
				}
			}
		})
	}
}

// initializeNixDatabase: the rootfs holds Nix's database registering the
// closure with its NAR hash, and the schema file.
func TestBuildNixDatabase(t *testing.T) {
	root, item := fakeStore(t)
	for _, mode := range []string{"copy", "bind"} {
		out := filepath.Join(t.TempDir(), "bundle")
		req := Request{
			Attrs:      attrsWith(t, item, `{"args":["`+fakeStorePath+`/bin/sh"],"initializeNixDatabase":true,"storeMode":"`+mode+`"}`),
			Out:        out,
			Self:       "/nix/store/00000000000000000000000000000000-ocitools/bin/ocitools",
			SourceRoot: root,
		}
		if err := Build(req); err != nil {
			t.Fatalf("%s: Build: %v", mode, err)
		}
		db := filepath.Join(out, "rootfs/nix/var/nix/db")
		if b, err := os.ReadFile(filepath.Join(db, "schema")); err != nil || string(b) != "10" {
			t.Errorf("%s: schema file %q (%v), want 10", mode, b, err)
		}
		b, err := os.ReadFile(filepath.Join(db, "db.sqlite"))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		// The path and its hash in base16 are in the file (the nixdb package
		// tests the database itself).
		h, _, err := nar.HashPath(filepath.Join(root, fakeStorePath))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), fakeStorePath) || !strings.Contains(string(b), fmt.Sprintf("sha256:%x", h.Digest())) {
			t.Errorf("%s: the database does not register %s with its NAR hash", mode, fakeStorePath)
		}
		if errs := spec.ValidateBundle(out); len(errs) > 0 {
			t.Errorf("%s: bundle does not validate: %v", mode, errs)
		}
	}
}
