package layering

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// closure150 is an application over 149 dependencies: 12 large libraries,
// each over a few exclusive helpers, and small libraries shared by several of
// them; appHash names the application's store path (a rebuilt app has
// another hash), extra are paths only the application uses.
func closure150(appHash string, extra int) []Node {
	sp := func(hash byte, name string) string {
		return "/nix/store/" + strings.Repeat(string(hash), 32) + "-" + name
	}
	var nodes []Node
	var shared []string
	for i := 0; i < 40; i++ {
		n := Node{Path: sp('s', fmt.Sprintf("small-%02d", i)), NarSize: uint64(1000 + i)}
		if i > 0 {
			n.References = []string{shared[i-1]}
		}
		shared = append(shared, n.Path)
		nodes = append(nodes, n)
	}
	var app []string
	for i := 0; i < 12; i++ {
		big := Node{Path: sp('b', fmt.Sprintf("big-%02d", i)), NarSize: uint64(50_000_000 + i)}
		for h := 0; h < 8; h++ {
			helper := Node{Path: sp('h', fmt.Sprintf("helper-%02d-%d", i, h)), NarSize: 500, References: []string{shared[(i*3+h)%40]}}
			nodes = append(nodes, helper)
			big.References = append(big.References, helper.Path)
		}
		big.References = append(big.References, shared[i], shared[39-i])
		nodes = append(nodes, big)
		app = append(app, big.Path)
	}
	for i := 0; i < 149-len(nodes); i++ {
		n := Node{Path: sp('m', fmt.Sprintf("misc-%02d", i)), NarSize: 100, References: []string{shared[i%40]}}
		nodes = append(nodes, n)
		app = append(app, n.Path)
	}
	for i := 0; i < extra; i++ {
		n := Node{Path: sp('x', fmt.Sprintf("only-app-%d", i)), NarSize: 10}
		nodes = append(nodes, n)
		app = append(app, n.Path)
	}
	return append(nodes, Node{Path: "/nix/store/" + appHash + "-app", NarSize: 4096, References: app})
}

func layerSet(ls []Layer) map[string]bool {
	m := map[string]bool{}
	for _, l := range ls {
		m[strings.Join(l.Paths, " ")] = true
	}
	return m
}

// changed lists the layers of b that a does not have (new digests).
func changed(a, b []Layer) []string {
	old := layerSet(a)
	var out []string
	for k := range layerSet(b) {
		if !old[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestAutoStableWhenOnlyTheAppChanges(t *testing.T) {
	v1 := closure150(strings.Repeat("1", 32), 0)
	if len(v1) != 150 {
		t.Fatalf("the test closure has %d paths, want 150", len(v1))
	}
	a, err := Auto(v1, 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) > 20 || len(a) < 12 {
		t.Fatalf("%d layers, want between 12 and 20", len(a))
	}
	total := 0
	for _, l := range a {
		total += len(l.Paths)
	}
	if total != 150 {
		t.Fatalf("the layers hold %d paths, want all 150", total)
	}
	for name, v2 := range map[string][]Node{
		"rebuilt app":            closure150(strings.Repeat("2", 32), 0),
		"app with two new paths": closure150(strings.Repeat("3", 32), 2),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Auto(v2, 20, nil)
			if err != nil {
				t.Fatal(err)
			}
			diff := changed(a, b)
			if len(diff) != 1 || !strings.Contains(diff[0], "-app") {
				t.Fatalf("layers that changed: %q, want only the app's", diff)
			}
			if strings.Contains(diff[0], "-big-") {
				t.Errorf("the app's layer holds a large library: %s", diff[0])
			}
		})
	}
	// The popularity strategy, for comparison: the app shares the merged
	// tail with most of the closure, so the layer that changes is large.
	p1, _ := Plan(v1, 20, nil)
	p2, _ := Plan(closure150(strings.Repeat("2", 32), 0), 20, nil)
	if d := changed(p1, p2); len(d) != 1 || len(strings.Fields(d[0])) < 100 {
		t.Errorf("popularity: changed layers %d (first holds %d paths); the comparison in this test's comment is wrong", len(d), len(strings.Fields(d[0])))
	}
}

func TestAutoLargestPathsOwnLayers(t *testing.T) {
	ls, err := Auto(closure150(strings.Repeat("1", 32), 0), 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		bigs := 0
		for _, p := range l.Paths {
			if strings.Contains(p, "-big-") {
				bigs++
			}
		}
		if bigs > 1 {
			t.Errorf("a layer holds %d large libraries: %v", bigs, l.Paths)
		}
	}
}

func TestAutoSmallBudgetsAndOrder(t *testing.T) {
	g := graph()
	rev := []Node{g[3], g[2], g[1], g[0]}
	for _, max := range []int{1, 2, 3, 10} {
		a, err := Auto(g, max, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Auto(rev, max, nil)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("maxLayers %d: the plan depends on the node order: %v vs %v", max, a, b)
		}
		n := 0
		for _, l := range a {
			n += len(l.Paths)
		}
		if len(a) > max || n != 4 {
			t.Errorf("maxLayers %d: %d layers holding %d paths", max, len(a), n)
		}
	}
	ls, _ := Auto(g, 10, map[string]bool{p("libc"): true})
	for _, l := range ls {
		for _, x := range l.Paths {
			if x == p("libc") {
				t.Errorf("an excluded path is in %v", l.Paths)
			}
		}
	}
	if _, err := ByName("largest", g, 3, nil); err == nil || !strings.Contains(err.Error(), `"auto"`) {
		t.Errorf("an unknown strategy: %v", err)
	}
}
