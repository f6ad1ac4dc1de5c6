package image

import (
	"archive/tar"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// layerTar lists an uncompressed layer's entries (name -> header) and keeps
// the regular files' contents.
func layerTar(t *testing.T, out string, b built, i int) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(out, "blobs/sha256", b.manifest.Layers[i].Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			data[h.Name], _ = io.ReadAll(tr)
		}
	}
}

func TestBuildNixDatabase(t *testing.T) {
	root := fakeStore(t)
	o := opts(t, map[string]any{"compression": "none", "initializeNixDatabase": true, "nixUid": 1000, "nixGid": 100})
	out := build(t, root, appClosure(t), o)
	b := readLayout(t, out)
	last := len(b.manifest.Layers) - 1
	if last != 5 || b.config.History[last].Comment != "Nix database: 4 store paths registered" {
		t.Fatalf("%d layers, last history %q", len(b.manifest.Layers), b.config.History[last].Comment)
	}
	// Every store layer's entries, /nix and /nix/store included, belong to nixUid:nixGid.
	for i := 0; i < last; i++ {
		if !strings.HasPrefix(b.config.History[i].Comment, "store paths: ") {
			continue // the root layer: its own owners
		}
		hdrs, _ := layerTar(t, out, b, i)
		for name, h := range hdrs {
			if h.Uid != 1000 || h.Gid != 100 {
				t.Errorf("layer %d: %s owned by %d:%d, want 1000:100", i, name, h.Uid, h.Gid)
			}
		}
	}
	hdrs, data := layerTar(t, out, b, last)
	var names []string
	for name, h := range hdrs {
		names = append(names, name)
		if h.Uid != 1000 || h.Gid != 100 {
			t.Errorf("%s owned by %d:%d, want 1000:100", name, h.Uid, h.Gid)
		}
	}
	want := []string{"nix/", "nix/var/", "nix/var/nix/", "nix/var/nix/db/", "nix/var/nix/db/db.sqlite", "nix/var/nix/db/schema"}
	if strings.Join(sortedCopy(names), " ") != strings.Join(want, " ") {
		t.Errorf("database layer holds %v, want %v", sortedCopy(names), want)
	}
	if string(data["nix/var/nix/db/schema"]) != "10" {
		t.Errorf("schema file %q, want 10", data["nix/var/nix/db/schema"])
	}
	file := filepath.Join(t.TempDir(), "db.sqlite")
	if err := os.WriteFile(file, data["nix/var/nix/db/db.sqlite"], 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT v.path, v.hash, group_concat(r.path, ' ') FROM ValidPaths v LEFT JOIN (SELECT referrer, path FROM Refs JOIN ValidPaths ON reference = id ORDER BY path) r ON r.referrer = v.id GROUP BY v.id ORDER BY v.path`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var p, h string
		var refs sql.NullString
		if err := rows.Scan(&p, &h, &refs); err != nil {
			t.Fatal(err)
		}
		if h != "sha256:"+strings.Repeat("0", 64) {
			t.Errorf("%s: hash %q", p, h)
		}
		got = append(got, p+" -> "+refs.String)
	}
	wantRows := sortedCopy([]string{pApp + " -> " + pLib, pLib + " -> " + pLibc, pLibc + " -> ", pEtc + " -> "})
	if !reflect.DeepEqual(got, wantRows) {
		t.Errorf("registered:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	// Reproducible, and without nixUid the store stays root's.
	if dirDigest(t, out) != dirDigest(t, build(t, root, appClosure(t), o)) {
		t.Error("two builds with a Nix database differ")
	}
	b2 := readLayout(t, build(t, root, appClosure(t), opts(t, map[string]any{"initializeNixDatabase": true})))
	if b2.manifest.Layers[0].Digest != readLayout(t, build(t, root, appClosure(t), opts(t, nil))).manifest.Layers[0].Digest {
		t.Error("initializeNixDatabase without nixUid changed a store layer")
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func TestBuildNixDatabaseErrors(t *testing.T) {
	root := fakeStore(t)
	layerDir := filepath.Join(t.TempDir(), "layer")
	lc := closure(t, map[string][]string{pLib: {pLibc}, pLibc: nil})
	if err := BuildLayer(Request{Closure: lc, Options: json.RawMessage(`{"layers":[],"compression":"none","perms":[]}`), Out: layerDir, Root: root}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    map[string]any
		want string
	}{
		{"owner without database", map[string]any{"nixUid": 1000}, "need `initializeNixDatabase = true`"},
		{"owner with explicit layers", map[string]any{"initializeNixDatabase": true, "nixGid": 100, "layers": []string{layerDir}}, "owned by 0:0"},
		{"negative", map[string]any{"initializeNixDatabase": true, "nixUid": -1}, "`nixUid` must be at least 0, not -1"},
		{"no room", map[string]any{"initializeNixDatabase": true, "maxLayers": 1}, "and the Nix database layer leave no room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Build(Request{Closure: appClosure(t), Options: opts(t, tt.o), Out: filepath.Join(t.TempDir(), "image"), Root: root})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	// An explicit layer's paths are registered when the closure has them
	// (nix/image.nix adds the layers' roots), and refused when it does not.
	o := opts(t, map[string]any{"initializeNixDatabase": true, "layers": []string{layerDir}})
	if err := Build(Request{Closure: appClosure(t), Options: o, Out: filepath.Join(t.TempDir(), "image"), Root: root}); err != nil {
		t.Errorf("explicit layer: %v", err)
	}
	small := closure(t, map[string][]string{pApp: nil})
	err := Build(Request{Closure: small, Options: o, Out: filepath.Join(t.TempDir(), "image"), Root: root})
	if err == nil || !strings.Contains(err.Error(), "is not in the closure (its NAR hash is unknown)") {
		t.Errorf("explicit layer outside the closure: got %v", err)
	}
}
