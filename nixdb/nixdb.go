// Package nixdb writes a Nix database (the SQLite file Nix keeps at
// /nix/var/nix/db/db.sqlite) registering a closure as valid, so that Nix run
// inside an image knows the image's store paths: their NAR hashes and sizes
// and their references.
//
// The file must be bit-reproducible (images are checked with
// `nix-build --check`): rows are inserted in one transaction, in path order,
// with a fixed registration time, by a pinned SQLite (modernc.org/sqlite, pure
// Go, since the builder is a static binary).
package nixdb

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixhash"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/ocitools/ocitools/derivation"
)

// Dir is where Nix keeps its database: NIX_STATE_DIR's default
// (/nix/var/nix), then db/.
const Dir = "/nix/var/nix/db"

// DBFile and SchemaFile are the database and the schema version's file in Dir.
const (
	DBFile     = "db.sqlite"
	SchemaFile = "schema"
)

// SchemaVersion is the Nix store schema the database follows: Nix writes it
// to /nix/var/nix/db/schema, and every Nix from 2.0 to today uses 10.
const SchemaVersion = 10

// RegistrationTime is every path's registration time (seconds since the
// epoch): fixed, like the store's mtimes, so that the file does not depend on
// when it was built.
const RegistrationTime = 1

// Path is one valid path to register.
type Path struct {
	Path       string   // absolute store path
	NarHash    string   // "sha256:" and the digest in base16, as Nix stores it
	NarSize    uint64   // the NAR's size in bytes
	References []string // absolute store paths, each registered too
	CA         string   // the content address, for content-addressed paths; "" if none
}

// FromClosure lists the store paths sps as the database registers them, with
// the NAR hash, size, references and content address the closure gives.
func FromClosure(c *derivation.Closure, sps []string) ([]Path, error) {
	out := make([]Path, 0, len(sps))
	for _, sp := range sps {
		pi, ok := c.Lookup(sp)
		if !ok {
			return nil, fmt.Errorf("%s is not in the closure (its NAR hash is unknown)", sp)
		}
		if pi.NarHash.Algo() != nixhash.SHA256 {
			return nil, fmt.Errorf("%s: the closure gives a %s NAR hash; Nix registers sha256", sp, pi.NarHash.Algo())
		}
		out = append(out, Path{
			Path:       sp,
			NarHash:    pi.NarHash.Format(nixhash.Base16, true),
			NarSize:    pi.NarSize,
			References: pi.References,
			CA:         pi.CA,
		})
	}
	return out, nil
}

// WriteDir writes the database and the schema file into dir (an existing
// directory, the host side of Dir).
func WriteDir(dir string, paths []Path) error {
	if err := Write(filepath.Join(dir, DBFile), paths); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, SchemaFile), []byte(strconv.Itoa(SchemaVersion)), 0o644); err != nil {
		_ = os.Remove(filepath.Join(dir, DBFile))
		return fmt.Errorf("nix database: %w", err)
	}
	return nil
}

// schema is the DDL of Nix's schema version 10 (the tables, indexes and the
// trigger Nix 2.8 creates for a new store; the content-addressed derivations
// tables are left out: Nix adds them itself when that experimental feature
// is on).
var schema = []string{
	`CREATE TABLE ValidPaths (
	id integer primary key autoincrement not null,
	path text unique not null,
	hash text not null,
	registrationTime integer not null,
	deriver text,
	narSize integer,
	ultimate integer,
	sigs text,
	ca text
)`,
	`CREATE TABLE Refs (
	referrer integer not null,
	reference integer not null,
	primary key (referrer, reference),
	foreign key (referrer) references ValidPaths(id) on delete cascade,
	foreign key (reference) references ValidPaths(id) on delete restrict
)`,
	`CREATE INDEX IndexReferrer on Refs(referrer)`,
	`CREATE INDEX IndexReference on Refs(reference)`,
	// Deleting a path that refers to itself would violate the restrict
	// above: its own references go first.
	`CREATE TRIGGER DeleteSelfRefs before delete on ValidPaths
	begin
		delete from Refs where referrer = old.id and reference = old.id;
	end`,
	`CREATE TABLE DerivationOutputs (
	drv integer not null,
	id text not null,
	path text not null,
	primary key (drv, id),
	foreign key (drv) references ValidPaths(id) on delete cascade
)`,
	`CREATE INDEX IndexDerivationOutputs on DerivationOutputs(path)`,
}

// Write creates the database file (which must not exist) registering paths.
// Every reference must be among paths. On failure the file is removed.
func Write(file string, paths []Path) (err error) {
	sorted, err := check(paths)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(file)
			_ = os.Remove(file + "-journal")
		}
	}()
	// A plain rollback journal, deleted at commit, so that the one file is
	// the whole database (Nix switches it to WAL when it opens it).
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=journal_mode(delete)&_pragma=page_size(4096)&_pragma=foreign_keys(1)")
	if err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("nix database: %w", cerr)
		}
	}()
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for _, stmt := range schema {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("nix database: schema: %w", err)
		}
	}
	if err := insert(tx, sorted); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	return nil
}

// check sorts a copy of paths and refuses duplicates, dangling references
// and hashes Nix would not read.
func check(paths []Path) ([]Path, error) {
	sorted := append([]Path(nil), paths...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	known := make(map[string]bool, len(sorted))
	for i, p := range sorted {
		if !strings.HasPrefix(p.Path, "/") {
			return nil, fmt.Errorf("nix database: %q is not an absolute store path", p.Path)
		}
		if i > 0 && sorted[i-1].Path == p.Path {
			return nil, fmt.Errorf("nix database: %s is listed twice", p.Path)
		}
		if algo, _, ok := strings.Cut(p.NarHash, ":"); !ok || algo != "sha256" {
			return nil, fmt.Errorf("nix database: %s: NAR hash %q is not \"sha256:\" and base16", p.Path, p.NarHash)
		}
		known[p.Path] = true
	}
	for _, p := range sorted {
		for _, r := range p.References {
			if !known[r] {
				return nil, fmt.Errorf("nix database: %s refers to %s, which is not registered", p.Path, r)
			}
		}
	}
	return sorted, nil
}

// insert adds the paths (ids 1, 2, ... in path order) and their references
// (in referrer, then reference order).
func insert(tx *sql.Tx, paths []Path) error {
	addPath, err := tx.Prepare(`INSERT INTO ValidPaths (id, path, hash, registrationTime, narSize, ca) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	defer addPath.Close()
	addRef, err := tx.Prepare(`INSERT INTO Refs (referrer, reference) VALUES (?, ?)`)
	if err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	defer addRef.Close()
	ids := make(map[string]int64, len(paths))
	for i, p := range paths {
		id := int64(i + 1)
		ids[p.Path] = id
		var ca any
		if p.CA != "" {
			ca = p.CA
		}
		if _, err := addPath.Exec(id, p.Path, p.NarHash, RegistrationTime, int64(p.NarSize), ca); err != nil {
			return fmt.Errorf("nix database: %s: %w", p.Path, err)
		}
	}
	for _, p := range paths {
		refs := make([]int64, 0, len(p.References))
		for _, r := range p.References {
			refs = append(refs, ids[r])
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i] < refs[j] })
		for i, r := range refs {
			if i > 0 && refs[i-1] == r {
				continue
			}
			if _, err := addRef.Exec(ids[p.Path], r); err != nil {
				return fmt.Errorf("nix database: %s: reference: %w", p.Path, err)
			}
		}
	}
	return nil
}
