package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/nixdb"
)

// nixDBLayer is the layer holding a Nix database (initializeNixDatabase)
// that registers every store path the other layers hold, with the NAR hash,
// size and references the closure gives; it and the state directories above
// it belong to uid:gid (nixUid, nixGid), so that Nix running as that user
// can use the store.
func nixDBLayer(closure *derivation.Closure, jobs []*layerJob, uid, gid int) (*layerJob, error) {
	var sps []string
	seen := map[string]bool{}
	for _, j := range jobs {
		for _, list := range [][]string{j.spec.StorePaths, j.info.Paths} {
			for _, sp := range list {
				if !seen[sp] {
					seen[sp] = true
					sps = append(sps, sp)
				}
			}
		}
	}
	paths, err := nixdb.FromClosure(closure, sps)
	if err != nil {
		return nil, fmt.Errorf("`initializeNixDatabase`: a store path of a layer: %w", err)
	}
	dir, err := os.MkdirTemp("", "nixdb-")
	if err != nil {
		return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := nixdb.WriteDir(dir, paths); err != nil {
		return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	entries := []layer.Entry{
		{Path: "/nix/var", Dir: true},
		{Path: "/nix/var/nix", Dir: true},
		{Path: nixdb.Dir, Dir: true},
	}
	for _, f := range []string{nixdb.DBFile, nixdb.SchemaFile} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
		}
		entries = append(entries, layer.Entry{Path: nixdb.Dir + "/" + f, File: true, Data: data})
	}
	for i := range entries {
		entries[i].UID, entries[i].GID = uid, gid
	}
	return &layerJob{
		spec:    layer.Spec{Entries: entries, UID: uid, GID: gid},
		comment: fmt.Sprintf("Nix database: %d store paths registered", len(paths)),
	}, nil
}

// checkNixOwner refuses nixUid/nixGid where they cannot hold.
func checkNixOwner(p *parsed) error {
	if p.nixUID == 0 && p.nixGID == 0 {
		return nil
	}
	if !p.nixDB {
		return fmt.Errorf("`nixUid` and `nixGid` (%d:%d) make the store and the Nix database belong to that user; they need `initializeNixDatabase = true`", p.nixUID, p.nixGID)
	}
	if len(p.layers) > 0 {
		return fmt.Errorf("`nixUid` and `nixGid` (%d:%d): the explicit `layers` (%s) are built owned by 0:0 and would give the store back to root; leave nixUid and nixGid at 0 or put those store paths in the image's own layers", p.nixUID, p.nixGID, strings.Join(p.layers, ", "))
	}
	return nil
}
