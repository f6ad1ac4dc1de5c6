package nixdb

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	pa = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app"
	pb = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib"
	pc = "/nix/store/cccccccccccccccccccccccccccccccc-src"
)

var hash = "sha256:" + strings.Repeat("0a", 32)

func closure() []Path {
	return []Path{
		{Path: pc, NarHash: hash, NarSize: 3, CA: "fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"},
		{Path: pa, NarHash: hash, NarSize: 1, References: []string{pb, pa}},
		{Path: pb, NarHash: hash, NarSize: 2, References: []string{pb}},
	}
}

func write(t *testing.T, paths []Path) (string, []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "db.sqlite")
	if err := Write(file, paths); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, b
}

func TestWrite(t *testing.T) {
	file, _ := write(t, closure())
	if _, err := os.Stat(file + "-journal"); !os.IsNotExist(err) {
		t.Errorf("a journal is left beside the database: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
	if err := db.QueryRow("PRAGMA foreign_key_check").Scan(&ok); err != sql.ErrNoRows {
		t.Errorf("foreign_key_check: %v", err)
	}
	rows, err := db.Query(`SELECT id, path, hash, registrationTime, narSize, coalesce(ca, ''), deriver IS NULL, ultimate IS NULL, sigs IS NULL FROM ValidPaths ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id           int
		path, hash   string
		reg, narSize int64
		ca           string
		nulls        [3]bool
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.path, &r.hash, &r.reg, &r.narSize, &r.ca, &r.nulls[0], &r.nulls[1], &r.nulls[2]); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	all := [3]bool{true, true, true}
	want := []row{
		{1, pa, hash, 1, 1, "", all},
		{2, pb, hash, 1, 2, "", all},
		{3, pc, hash, 1, 3, closure()[0].CA, all},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ValidPaths:\n got %v\nwant %v", got, want)
	}
	// The query Nix runs for `nix-store -q --references`.
	refs := func(p string) []string {
		rows, err := db.Query(`SELECT path FROM Refs JOIN ValidPaths ON reference = id WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?) ORDER BY path`, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	if r := refs(pa); !reflect.DeepEqual(r, []string{pa, pb}) {
		t.Errorf("references of %s: %v", pa, r)
	}
	if r := refs(pc); r != nil {
		t.Errorf("references of %s: %v", pc, r)
	}
}

// The same closure, in any order, gives the same bytes.
func TestWriteReproducible(t *testing.T) {
	_, a := write(t, closure())
	c := closure()
	c[0], c[2] = c[2], c[0]
	c[1].References = []string{pa, pb, pb}
	_, b := write(t, c)
	if !bytes.Equal(a, b) {
		t.Error("two databases of the same closure differ")
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		paths []Path
		want  string
	}{
		{"dangling", []Path{{Path: pa, NarHash: hash, References: []string{pb}}}, "which is not registered"},
		{"twice", []Path{{Path: pa, NarHash: hash}, {Path: pa, NarHash: hash}}, "listed twice"},
		{"hash", []Path{{Path: pa, NarHash: "md5:00"}}, "NAR hash"},
		{"relative", []Path{{Path: "nix/store/x", NarHash: hash}}, "not an absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "db.sqlite")
			err := Write(file, tt.paths)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Errorf("the file is left behind: %v", err)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "db.sqlite")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(file, closure()); err == nil {
		t.Error("an existing file was overwritten")
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("the existing file was removed: %v", err)
	}
}
