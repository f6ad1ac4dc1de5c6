package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plan-layers writes the auto groups, covering the closure once; a layer
// built from one group holds exactly its paths.
func TestPlanLayersAndPlannedLayer(t *testing.T) {
	root := fakeStore(t)
	out := filepath.Join(t.TempDir(), "plan.json")
	if err := PlanLayers(Request{Closure: appClosure(t), Options: json.RawMessage(`{"maxLayers":3,"layers":[]}`), Out: out, Root: root}); err != nil {
		t.Fatal(err)
	}
	var plan Plan
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &plan); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, g := range plan.Groups {
		for _, p := range g {
			seen[p]++
		}
	}
	if len(plan.Groups) > 3 || len(seen) != 4 {
		t.Fatalf("groups %v: want at most 3 covering the 4 paths", plan.Groups)
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("%s is in %d groups", p, n)
		}
	}
	layerOut := filepath.Join(t.TempDir(), "layer")
	o := json.RawMessage(`{"layers":[],"compression":"zstd","perms":[],"paths":["` + pLib + `"]}`)
	if err := BuildLayer(Request{Closure: appClosure(t), Options: o, Out: layerOut, Root: root}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadLayerInfo(layerOut)
	if err != nil || len(info.Paths) != 1 || info.Paths[0] != pLib {
		t.Errorf("the planned layer holds %v (%v), want only %s", info.Paths, err, pLib)
	}
	o = json.RawMessage(`{"layers":[],"compression":"zstd","perms":[],"paths":["/nix/store/` + strings.Repeat("z", 32) + `-other"]}`)
	err = BuildLayer(Request{Closure: appClosure(t), Options: o, Out: filepath.Join(t.TempDir(), "bad"), Root: root})
	if err == nil || !strings.Contains(err.Error(), "is not in the closure") {
		t.Errorf("a path outside the closure: %v", err)
	}
}
