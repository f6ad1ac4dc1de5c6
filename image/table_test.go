package image

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layering"
	"github.com/ocitools/ocitools/options"
	"github.com/ocitools/ocitools/options/tabletest"
)

// Every row of buildImage's and buildLayer's argument tables (and of the
// imageConfig and perm tables their config and perms values follow), through
// nix/table.nix (what nix/image.nix checks) and the builder's parser.
func TestArgumentTablesBothSides(t *testing.T) {
	image := func(args []byte) error { _, err := parseOptions(args, "x86_64-linux"); return err }
	layer := func(args []byte) error { _, _, _, err := parseLayerOptions(args); return err }
	const dep = `"/nix/store/00000000000000000000000000000000-x"`
	for _, s := range []tabletest.Sides{
		{Table: "buildImage", Function: "buildImage", NixBase: `{"name":"x"}`, GoBase: `{"name":"x","tag":"t"}`, Go: image},
		{Table: "imageConfig", Function: "buildImage", NixBase: `{"name":"x"}`, GoBase: `{"name":"x","tag":"t"}`, Go: image,
			Wrap: func(name string, v json.RawMessage) (string, json.RawMessage) {
				return "config", mustJSON(t, map[string]json.RawMessage{name: v})
			}},
		{Table: "perm", Function: "buildImage", NixBase: `{"name":"x"}`, GoBase: `{"name":"x","tag":"t"}`, Go: image,
			Wrap: func(name string, v json.RawMessage) (string, json.RawMessage) {
				return "perms", mustJSON(t, []map[string]json.RawMessage{{"path": json.RawMessage(`"/x"`), name: v}})
			}},
		{Table: "planLayers", Function: "planLayers", NixBase: `{}`, GoBase: `{}`, Go: func(args []byte) error {
			var o PlanOptions
			return options.TableOf("planLayers").Decode(args, &o)
		}},
		{Table: "buildLayer", Function: "buildLayer", NixBase: `{"deps":[` + dep + `]}`, GoBase: `{}`, Go: layer},
	} {
		t.Run(s.Table, func(t *testing.T) { tabletest.Run(t, s) })
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The table's compressions are the ones image/compress implements.
func TestCompressionsMatchTable(t *testing.T) {
	var have []string
	for _, a := range compress.Algorithms {
		have = append(have, string(a))
	}
	if want := options.KnownList("compressions"); !slices.Equal(have, want) {
		t.Errorf("image/compress implements %v, known.json's compressions are %v", have, want)
	}
}

// The table's layering strategies are the ones image/layering implements.
func TestLayeringStrategiesMatchTable(t *testing.T) {
	if want := options.KnownList("layeringStrategies"); !slices.Equal(layering.Strategies, want) {
		t.Errorf("image/layering implements %v, known.json's layeringStrategies are %v", layering.Strategies, want)
	}
}
