package derivation

import (
	"fmt"
	"sort"

	"github.com/nix-community/go-nix/pkg/nixhash"
	"github.com/nix-community/go-nix/pkg/storepath"
)

// PathInfoJSON is one element of an exportReferencesGraph list.
type PathInfoJSON struct {
	Path        string   `json:"path"`
	NarHash     string   `json:"narHash"`
	NarSize     uint64   `json:"narSize"`
	References  []string `json:"references"`
	ClosureSize uint64   `json:"closureSize,omitempty"`
	CA          string   `json:"ca,omitempty"`
}

// PathInfo is a checked closure element.
type PathInfo struct {
	StorePath  *storepath.StorePath
	NarHash    *nixhash.Hash
	NarSize    uint64
	References []string // absolute store paths, each in the closure
	CA         string   // the content address of a content-addressed path, else ""
}

// Path is the absolute store path.
func (p *PathInfo) Path() string { return p.StorePath.Absolute() }

// Closure is a set of store paths closed under references, sorted by path.
type Closure struct {
	Paths  []*PathInfo
	byPath map[string]*PathInfo
}

// NewClosure checks every element: each path and reference is a valid store path,
// each narHash parses, no path appears twice, and every reference is in the set.
func NewClosure(items []PathInfoJSON) (*Closure, error) {
	c := &Closure{byPath: make(map[string]*PathInfo, len(items))}
	for i, it := range items {
		sp, err := validateStorePath(it.Path)
		if err != nil {
			return nil, fmt.Errorf("closure element %d: %w", i, err)
		}
		if _, dup := c.byPath[it.Path]; dup {
			return nil, fmt.Errorf("closure: %s is listed twice", it.Path)
		}
		h, err := nixhash.ParseAny(it.NarHash, nil)
		if err != nil {
			return nil, fmt.Errorf("closure: %s: narHash %q: %w", it.Path, it.NarHash, err)
		}
		refs := append([]string(nil), it.References...)
		sort.Strings(refs)
		for _, r := range refs {
			if _, err := validateStorePath(r); err != nil {
				return nil, fmt.Errorf("closure: %s: reference: %w", it.Path, err)
			}
		}
		pi := &PathInfo{StorePath: sp, NarHash: &h.Hash, NarSize: it.NarSize, References: refs, CA: it.CA}
		c.byPath[it.Path] = pi
		c.Paths = append(c.Paths, pi)
	}
	for _, p := range c.Paths {
		for _, r := range p.References {
			if _, ok := c.byPath[r]; !ok {
				return nil, fmt.Errorf("closure: %s refers to %s, which the closure does not contain", p.Path(), r)
			}
		}
	}
	sort.Slice(c.Paths, func(i, j int) bool { return c.Paths[i].Path() < c.Paths[j].Path() })
	return c, nil
}

// Lookup returns the element for an absolute store path.
func (c *Closure) Lookup(path string) (*PathInfo, bool) {
	p, ok := c.byPath[path]
	return p, ok
}

// StorePaths returns the absolute paths, sorted.
func (c *Closure) StorePaths() []string {
	out := make([]string, len(c.Paths))
	for i, p := range c.Paths {
		out[i] = p.Path()
	}
	return out
}
