package layering

import (
	"fmt"
	"sort"
	"strings"
)

// closureGraph is the closure indexed for the planners.
type closureGraph struct {
	nodes     []Node
	index     map[string]int
	referrers [][]int
}

func newGraph(nodes []Node) (*closureGraph, error) {
	g := &closureGraph{nodes: nodes, index: make(map[string]int, len(nodes)), referrers: make([][]int, len(nodes))}
	for i, n := range nodes {
		if _, dup := g.index[n.Path]; dup {
			return nil, fmt.Errorf("layering: %s is listed twice", n.Path)
		}
		g.index[n.Path] = i
	}
	for i, n := range nodes {
		for _, r := range n.References {
			j, ok := g.index[r]
			if !ok {
				return nil, fmt.Errorf("layering: %s refers to %s, which is not in the closure", n.Path, r)
			}
			if j != i {
				g.referrers[j] = append(g.referrers[j], i)
			}
		}
	}
	return g, nil
}

// less orders paths by store name, then whole path: an order that depends
// only on the graph.
func (g *closureGraph) less(a, b int) bool {
	na, nb := storeName(g.nodes[a].Path), storeName(g.nodes[b].Path)
	if na != nb {
		return na < nb
	}
	return g.nodes[a].Path < g.nodes[b].Path
}

// Auto plans at most maxLayers layers so that they stay the same when only
// the application changes. Roots are the paths nothing else in the closure
// refers to (the application, the config's programs) and then the largest
// paths by narSize, up to three quarters of the budget. Every other path is attributed to
// the roots that reach it without passing through another root: a path only
// one root uses joins that root's layer, paths several roots share form one
// layer per set of roots. A new application path then changes its own layer
// (and the paths only it uses), never the large dependencies' layers. When
// there are more groups than layers, the top paths' layers and the largest
// groups are kept and the others share one layer.
func Auto(nodes []Node, maxLayers int, exclude map[string]bool) ([]Layer, error) {
	if maxLayers < 1 {
		return nil, fmt.Errorf("maxLayers must be at least 1, not %d", maxLayers)
	}
	g, err := newGraph(nodes)
	if err != nil {
		return nil, err
	}
	roots, isTop := g.roots(maxLayers, exclude)
	groups := g.group(roots, exclude)
	return g.fit(groups, roots, isTop, maxLayers), nil
}

// roots picks the layer roots: every top path, then the largest others.
func (g *closureGraph) roots(maxLayers int, exclude map[string]bool) ([]int, map[int]bool) {
	var tops, rest []int
	for i := range g.nodes {
		if exclude[g.nodes[i].Path] {
			continue
		}
		if len(g.referrers[i]) == 0 {
			tops = append(tops, i)
		} else {
			rest = append(rest, i)
		}
	}
	sort.Slice(tops, func(a, b int) bool { return g.less(tops[a], tops[b]) })
	sort.Slice(rest, func(a, b int) bool {
		x, y := rest[a], rest[b]
		if g.nodes[x].NarSize != g.nodes[y].NarSize {
			return g.nodes[x].NarSize > g.nodes[y].NarSize
		}
		return g.less(x, y)
	})
	// A quarter of the budget is left for the groups roots share.
	want := max(maxLayers*3/4, 1)
	roots := tops
	for _, i := range rest {
		if len(roots) >= want {
			break
		}
		roots = append(roots, i)
	}
	isTop := map[int]bool{}
	for _, i := range tops {
		isTop[i] = true
	}
	return roots, isTop
}

// group attributes every included path to the set of roots reaching it.
// A root's walk stops at other roots: what lies below a root is that root's.
func (g *closureGraph) group(roots []int, exclude map[string]bool) map[string][]int {
	rootOf := map[int]int{} // node -> position in roots
	for k, r := range roots {
		rootOf[r] = k
	}
	users := make([][]int, len(g.nodes))
	seen := make([]int, len(g.nodes))
	for k, r := range roots {
		gen := k + 1
		stack := []int{r}
		seen[r] = gen
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			users[n] = append(users[n], k)
			for _, ref := range g.nodes[n].References {
				j := g.index[ref]
				if _, isRoot := rootOf[j]; isRoot || seen[j] == gen {
					continue
				}
				seen[j] = gen
				stack = append(stack, j)
			}
		}
	}
	groups := map[string][]int{}
	for i := range g.nodes {
		if exclude[g.nodes[i].Path] {
			continue
		}
		if k, isRoot := rootOf[i]; isRoot {
			users[i] = []int{k}
		}
		key := fmt.Sprint(users[i])
		groups[key] = append(groups[key], i)
	}
	return groups
}

type group struct {
	members []int
	size    uint64
	users   int  // how many roots share it (1 for a root's own layer)
	top     bool // the layer of a top path: never merged
}

// fit turns groups into at most maxLayers layers, bottom first: shared groups
// (most roots first), the large roots' layers, the merged rest, the tops.
func (g *closureGraph) fit(byKey map[string][]int, roots []int, isTop map[int]bool, maxLayers int) []Layer {
	rootAt := map[int]bool{}
	for _, r := range roots {
		rootAt[r] = true
	}
	var gs []*group
	for key, members := range byKey {
		gr := &group{members: members, users: strings.Count(key, " ") + 1}
		for _, m := range members {
			gr.size += g.nodes[m].NarSize
			if rootAt[m] && isTop[m] {
				gr.top = true
			}
		}
		sort.Slice(gr.members, func(a, b int) bool { return g.less(gr.members[a], gr.members[b]) })
		gs = append(gs, gr)
	}
	// Keep order: tops first, then by size; ties by the first member.
	sort.Slice(gs, func(a, b int) bool {
		x, y := gs[a], gs[b]
		if x.top != y.top {
			return x.top
		}
		if x.size != y.size {
			return x.size > y.size
		}
		return g.less(x.members[0], y.members[0])
	})
	kept, rest := gs, (*group)(nil)
	if len(gs) > maxLayers {
		kept, rest = gs[:maxLayers-1], &group{}
		for _, gr := range gs[maxLayers-1:] {
			rest.members = append(rest.members, gr.members...)
			rest.size += gr.size
		}
	}
	sort.SliceStable(kept, func(a, b int) bool {
		x, y := kept[a], kept[b]
		if x.top != y.top {
			return !x.top
		}
		return x.users > y.users
	})
	var out []*group
	for _, gr := range kept {
		if gr.top && rest != nil {
			out, rest = append(out, rest), nil
		}
		out = append(out, gr)
	}
	if rest != nil {
		out = append(out, rest)
	}
	layers := make([]Layer, 0, len(out))
	for _, gr := range out {
		l := Layer{}
		for _, m := range gr.members {
			l.Paths = append(l.Paths, g.nodes[m].Path)
		}
		sort.Strings(l.Paths)
		layers = append(layers, l)
	}
	return layers
}
