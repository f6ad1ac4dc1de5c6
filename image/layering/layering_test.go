package layering

import (
	"reflect"
	"strings"
	"testing"
)

func p(name string) string { return "/nix/store/" + strings.Repeat("a", 31) + name[:1] + "-" + name }

// A small graph: app -> lib -> libc, tool -> libc, app -> tool.
func graph() []Node {
	return []Node{
		{Path: p("app"), References: []string{p("lib"), p("tool"), p("app")}},
		{Path: p("lib"), References: []string{p("libc")}},
		{Path: p("tool"), References: []string{p("libc")}},
		{Path: p("libc"), References: nil},
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name      string
		maxLayers int
		exclude   []string
		want      [][]string
	}{
		{"one per path, most shared first", 10, nil, [][]string{{p("libc")}, {p("lib")}, {p("tool")}, {p("app")}}},
		{"exactly as many layers as paths", 4, nil, [][]string{{p("libc")}, {p("lib")}, {p("tool")}, {p("app")}}},
		{"tail merged into the last layer", 2, nil, [][]string{{p("libc")}, {p("app"), p("lib"), p("tool")}}},
		{"one layer", 1, nil, [][]string{{p("app"), p("lib"), p("libc"), p("tool")}}},
		{"explicit layers' paths left out", 10, []string{p("libc"), p("tool")}, [][]string{{p("lib")}, {p("app")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := map[string]bool{}
			for _, e := range tt.exclude {
				ex[e] = true
			}
			layers, err := Plan(graph(), tt.maxLayers, ex)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, l := range layers {
				got = append(got, l.Paths)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// The plan depends only on the graph, not on the order nodes are listed in.
func TestPlanOrderIndependent(t *testing.T) {
	g := graph()
	rev := []Node{g[3], g[2], g[1], g[0]}
	a, _ := Plan(g, 3, nil)
	b, _ := Plan(rev, 3, nil)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%v != %v", a, b)
	}
}

// Equal popularity is broken by the store name, then the path.
func TestPlanTies(t *testing.T) {
	nodes := []Node{{Path: "/nix/store/" + strings.Repeat("z", 32) + "-b"}, {Path: "/nix/store/" + strings.Repeat("a", 32) + "-c"}, {Path: "/nix/store/" + strings.Repeat("b", 32) + "-a"}}
	layers, err := Plan(nodes, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range layers {
		names = append(names, l.Paths[0][44:])
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("order %v, want a,b,c", names)
	}
}

func TestPlanErrors(t *testing.T) {
	if _, err := Plan(graph(), 0, nil); err == nil {
		t.Error("maxLayers 0 accepted")
	}
	bad := append(graph(), Node{Path: p("x"), References: []string{p("missing")}})
	if _, err := Plan(bad, 5, nil); err == nil || !strings.Contains(err.Error(), "not in the closure") {
		t.Errorf("dangling reference: %v", err)
	}
	dup := append(graph(), graph()[0])
	if _, err := Plan(dup, 5, nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
}
