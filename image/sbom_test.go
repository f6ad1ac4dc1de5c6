package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/internal/storetest"
	"github.com/ocitools/ocitools/sbom"
)

// The image's SBOM lists every store path its layers hold, those of an
// explicit layer too (whose paths the image's own closure need not have),
// with the references as the graph.
func TestBuildSBOMWithExplicitLayer(t *testing.T) {
	root := fakeStore(t)
	layerDir := filepath.Join(t.TempDir(), "layer")
	lc := closure(t, map[string][]string{pEtc: nil})
	if err := BuildLayer(Request{Closure: lc, Options: json.RawMessage(`{"layers":[],"compression":"none","perms":[]}`), Out: layerDir, Root: root}); err != nil {
		t.Fatal(err)
	}
	// What Nix exports for the layer output: itself and the paths it names.
	layerOut := storetest.Path('f', "oci-layer")
	layerGraph := []derivation.PathInfoJSON{
		{Path: layerOut, NarHash: "sha256:" + strings.Repeat("0", 51) + "1", NarSize: 9, References: []string{pEtc}},
		{Path: pEtc, NarHash: "sha256:" + strings.Repeat("0", 51) + "2", NarSize: 3},
	}
	appOnly := closure(t, map[string][]string{pApp: {pLib}, pLib: {pLibc}, pLibc: nil})
	out := filepath.Join(t.TempDir(), "image")
	attr := json.RawMessage(`{"formats":["cyclonedx","spdx"],"roots":["` + pApp + `"],"metadata":{"` + pApp + `":{"pname":"app","version":"1.0"}}}`)
	req := Request{Closure: appOnly, Options: opts(t, map[string]any{"layers": []string{layerDir}}), Out: out, Root: root, SBOM: attr, LayerClosure: layerGraph}
	if err := Build(req); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, sbom.CycloneDXFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := sbom.Validate(data); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components []struct {
			Ref     string `json:"bom-ref"`
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, c := range doc.Components {
		refs = append(refs, c.Ref)
		if c.Ref == pApp && (c.Name != "app" || c.Version != "1.0") {
			t.Errorf("app: %+v", c)
		}
	}
	want := []string{pApp, pLib, pLibc, pEtc}
	slices.Sort(want)
	if !slices.Equal(refs, want) {
		t.Errorf("components %v, want %v", refs, want)
	}
	if _, err := os.Stat(filepath.Join(out, sbom.SPDXFile)); err != nil {
		t.Error(err)
	}

	// Without the layer's graph the builder cannot describe its paths.
	req.Out, req.LayerClosure = filepath.Join(t.TempDir(), "image"), nil
	if err := Build(req); err == nil || !strings.Contains(err.Error(), "layerClosure") {
		t.Errorf("no layer closure: %v", err)
	}
	if _, err := os.Lstat(req.Out); err == nil {
		t.Error("the failed build left its output")
	}
	// No sbom attribute, no SBOM file.
	req.Out, req.SBOM = filepath.Join(t.TempDir(), "image"), nil
	if err := Build(req); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(req.Out, sbom.CycloneDXFile)); err == nil {
		t.Error("an SBOM without the sbom attribute")
	}
}
