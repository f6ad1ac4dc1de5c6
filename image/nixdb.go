package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/nixdb"
)

// NixDBDir is where Nix keeps its database (NIX_STATE_DIR's default
// /nix/var/nix, then db/).
const NixDBDir = "/nix/var/nix/db"

// nixDBLayer is the layer holding a Nix database (initializeNixDatabase)
// that registers every store path the other layers hold, with the NAR hash,
// size and references the closure gives; it and the state directories above
// it belong to uid:gid (nixUid, nixGid), so that Nix running as that user
// can use the store.
func nixDBLayer(closure *derivation.Closure, jobs []*layerJob, uid, gid int) (*layerJob, error) {
	var paths []nixdb.Path
	seen := map[string]bool{}
	for _, j := range jobs {
		for _, list := range [][]string{j.spec.StorePaths, j.info.Paths} {
			for _, sp := range list {
				if seen[sp] {
					continue
				}
				seen[sp] = true
				p, err := nixDBPath(closure, sp)
				if err != nil {
					return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
				}
				paths = append(paths, p)
			}
		}
	}
	dir, err := os.MkdirTemp("", "nixdb-")
	if err != nil {
		return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "db.sqlite")
	if err := nixdb.Write(file, paths); err != nil {
		return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	own := func(e layer.Entry) layer.Entry { e.UID, e.GID = uid, gid; return e }
	entries := []layer.Entry{
		own(layer.Entry{Path: "/nix/var", Dir: true}),
		own(layer.Entry{Path: "/nix/var/nix", Dir: true}),
		own(layer.Entry{Path: NixDBDir, Dir: true}),
		own(layer.Entry{Path: NixDBDir + "/db.sqlite", File: true, Data: data}),
		own(layer.Entry{Path: NixDBDir + "/schema", File: true, Data: []byte(strconv.Itoa(nixdb.SchemaVersion))}),
	}
	return &layerJob{
		spec:    layer.Spec{Entries: entries, UID: uid, GID: gid},
		comment: fmt.Sprintf("Nix database: %d store paths registered", len(paths)),
	}, nil
}

// nixDBPath is one store path as the database registers it.
func nixDBPath(closure *derivation.Closure, sp string) (nixdb.Path, error) {
	pi, ok := closure.Lookup(sp)
	if !ok {
		return nixdb.Path{}, fmt.Errorf("%s is in a layer but not in the image's closure (its NAR hash is unknown)", sp)
	}
	if pi.NarHash.Algo() != nixhash.SHA256 {
		return nixdb.Path{}, fmt.Errorf("%s: the closure gives a %s NAR hash; Nix registers sha256", sp, pi.NarHash.Algo())
	}
	return nixdb.Path{
		Path:       sp,
		NarHash:    pi.NarHash.Format(nixhash.Base16, true),
		NarSize:    pi.NarSize,
		References: pi.References,
		CA:         pi.CA,
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
