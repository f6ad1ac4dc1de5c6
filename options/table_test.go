package options_test

import (
	"testing"

	"github.com/ocitools/ocitools/options"
	"github.com/ocitools/ocitools/options/tabletest"
)

// Every row of buildIndex's, archive's and pullImage's argument tables
// through nix/table.nix (what nix/registry.nix, archive.nix and pull.nix
// check) and the table's Go checker. Their builders take command-line flags,
// checked by the same shapes (registry.BuildIndex, archive.Write, the
// registry client's reference grammar); the other tables are
// tested where their builders are: spec/ (buildContainer), image/ (buildImage,
// buildLayer, imageConfig, perm).
func TestArgumentTablesBothSides(t *testing.T) {
	const image = `"/nix/store/00000000000000000000000000000000-x-oci-image"`
	const pull = `{"imageName":"r.example/a","imageDigest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","hash":""}`
	check := func(fn string) func([]byte) error {
		return func(args []byte) error { _, err := options.TableOf(fn).Check(args); return err }
	}
	for _, s := range []tabletest.Sides{
		{Table: "buildIndex", Function: "buildIndex", NixBase: `{"name":"x","tag":"1","images":[` + image + `]}`, GoBase: `{"name":"x","tag":"1","images":[` + image + `]}`, Go: check("buildIndex")},
		{Table: "archive", Function: "archive", NixBase: `{"image":` + image + `}`, GoBase: `{"image":` + image + `}`, Go: check("archive")},
		{Table: "pullImage", Function: "pullImage", NixBase: pull, GoBase: pull, Go: check("pullImage")},
		{Table: "pullImageFromLock", Function: "pullImageFromLock", NixBase: `{"lockFile":"/x.json"}`, GoBase: `{"lockFile":"/x.json"}`, Go: check("pullImageFromLock")},
	} {
		t.Run(s.Table, func(t *testing.T) { tabletest.Run(t, s) })
	}
}
