// Package layering splits a closure into image layers. Two strategies:
// "popularity" (Plan: one layer per store path, the most shared paths first,
// the tail merged into the last layer) and "auto" (Auto: the largest paths and
// the image's top paths become layer roots, the other paths are grouped by the
// set of roots that use them, so that a change of the application leaves the
// other layers' bytes alone).
package layering

import (
	"fmt"
	"sort"
	"strings"
)

// Node is one store path of the references graph (exportReferencesGraph).
type Node struct {
	Path       string
	References []string
	// NarSize is the path's size in the store (exportReferencesGraph's
	// narSize); only Auto reads it.
	NarSize uint64
}

// Strategies are the values of buildImage's `layering` argument that name a
// strategy (a list of groups is the third form, handled by nix/image.nix).
// "auto-derivations" is "auto" planned at evaluation (nix/image.nix makes
// each group a layer derivation); whatever reaches the builder is planned as
// "auto".
var Strategies = []string{"popularity", "auto", "auto-derivations"}

// ByName plans with the strategy named s ("" is popularity, the default).
func ByName(s string, nodes []Node, maxLayers int, exclude map[string]bool) ([]Layer, error) {
	switch s {
	case "", "popularity":
		return Plan(nodes, maxLayers, exclude)
	case "auto", "auto-derivations":
		return Auto(nodes, maxLayers, exclude)
	}
	return nil, fmt.Errorf("`layering` %q is not a strategy: use \"popularity\", \"auto\", \"auto-derivations\" or a list of groups (lists of packages)", s)
}

// Layer is the store paths of one automatic layer.
type Layer struct {
	Paths []string
}

// Plan orders the closure by popularity and returns at most maxLayers layers:
// one per path for the first maxLayers-1 paths, and every remaining path in
// the last one. Paths in exclude (those of explicit layers) are left out.
//
// A path's popularity is how many paths of the closure depend on it, directly
// or not (its reverse closure, itself included): a library that everything
// links is shared by more images than the application at the top, so it goes
// to a lower layer that caches and registries keep. Ties are broken by the
// store name (the part after the hash), then the whole path, so that the order
// depends only on the graph: the same inputs give the same layers everywhere.
func Plan(nodes []Node, maxLayers int, exclude map[string]bool) ([]Layer, error) {
	if maxLayers < 1 {
		return nil, fmt.Errorf("maxLayers must be at least 1, not %d", maxLayers)
	}
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		if _, dup := index[n.Path]; dup {
			return nil, fmt.Errorf("layering: %s is listed twice", n.Path)
		}
		index[n.Path] = i
	}
	// Reverse edges: who refers to each node.
	referrers := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, r := range n.References {
			j, ok := index[r]
			if !ok {
				return nil, fmt.Errorf("layering: %s refers to %s, which is not in the closure", n.Path, r)
			}
			if j != i {
				referrers[j] = append(referrers[j], i)
			}
		}
	}
	pop := make([]int, len(nodes))
	seen := make([]int, len(nodes)) // generation marks, to avoid clearing a set per node
	stack := []int{}
	for i := range nodes {
		gen := i + 1
		count := 0
		stack = append(stack[:0], i)
		seen[i] = gen
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			count++
			for _, r := range referrers[k] {
				if seen[r] != gen {
					seen[r] = gen
					stack = append(stack, r)
				}
			}
		}
		pop[i] = count
	}
	order := make([]int, 0, len(nodes))
	for i, n := range nodes {
		if !exclude[n.Path] {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := order[a], order[b]
		if pop[x] != pop[y] {
			return pop[x] > pop[y]
		}
		nx, ny := storeName(nodes[x].Path), storeName(nodes[y].Path)
		if nx != ny {
			return nx < ny
		}
		return nodes[x].Path < nodes[y].Path
	})
	var layers []Layer
	for k, i := range order {
		// Paths 0..maxLayers-1 each start a layer; the rest join the last.
		if k < maxLayers {
			layers = append(layers, Layer{})
		}
		last := &layers[len(layers)-1]
		last.Paths = append(last.Paths, nodes[i].Path)
	}
	for _, l := range layers {
		sort.Strings(l.Paths)
	}
	return layers, nil
}

// storeName is the name part of /nix/store/<hash>-<name>.
func storeName(p string) string {
	base := p[strings.LastIndexByte(p, '/')+1:]
	if i := strings.IndexByte(base, '-'); i >= 0 {
		return base[i+1:]
	}
	return base
}
