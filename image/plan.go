package image

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ocitools/ocitools/image/layering"
	"github.com/ocitools/ocitools/options"
)

// PlanOptionsKey is the structured attribute holding plan-layers' arguments.
const PlanOptionsKey = "plan"

// PlanOptions are the arguments of a layer plan (nix/image.nix, layering =
// "auto-derivations"): how many layers, and the explicit layers whose paths
// are left out.
type PlanOptions struct {
	MaxLayers int      `json:"maxLayers"`
	Layers    []string `json:"layers"`
}

// Plan is what PlanLayers writes: the groups of store paths, bottom first,
// each of which Nix turns into a layer derivation of its own.
type Plan struct {
	Groups [][]string `json:"groups"`
}

// PlanLayers writes the "auto" layering of the closure as JSON to req.Out.
// It compresses nothing: Nix reads the plan at evaluation and builds one
// derivation per group, which it reuses while the group's paths are the
// same, so that a new app recompresses only its own group.
func PlanLayers(req Request) error {
	var o PlanOptions
	if err := options.TableOf("planLayers").Decode(req.Options, &o); err != nil {
		return fmt.Errorf("plan-layers: the %q attribute: %w", PlanOptionsKey, err)
	}
	exclude := map[string]bool{}
	for i, dir := range o.Layers {
		info, err := ReadLayerInfo(dir)
		if err != nil {
			return fmt.Errorf("plan-layers: `layers` element %d: %w", i, err)
		}
		for _, p := range info.Paths {
			exclude[p] = true
		}
	}
	nodes := make([]layering.Node, 0, len(req.Closure.Paths))
	for _, pi := range req.Closure.Paths {
		nodes = append(nodes, layering.Node{Path: pi.Path(), References: pi.References, NarSize: pi.NarSize})
	}
	plan := Plan{Groups: [][]string{}}
	if len(nodes) > len(exclude) {
		layers, err := layering.Auto(nodes, max(o.MaxLayers, 1), exclude)
		if err != nil {
			return fmt.Errorf("plan-layers: %w", err)
		}
		for _, l := range layers {
			plan.Groups = append(plan.Groups, l.Paths)
		}
	}
	data, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("plan-layers: %w", err)
	}
	if err := os.WriteFile(req.Out, append(data, '\n'), 0o444); err != nil {
		return fmt.Errorf("plan-layers: %w", err)
	}
	return nil
}
