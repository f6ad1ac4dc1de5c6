package rootfs

import (
	"github.com/ocitools/ocitools/layout"

	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/nar"
)

// The manifest (layout.ClosureFile) is the file, next to config.json and outside rootfs/, that
// records what the rootfs store holds, for `ocitools verify`.

// Manifest is the content of closure.json.
type Manifest struct {
	// StoreMode is the bundle's store mode (copy or bind).
	StoreMode string `json:"storeMode"`
	// Paths is the closure, sorted by path, as Nix described it.
	Paths []ManifestPath `json:"paths"`
}

// ManifestPath is one store path of the closure.
type ManifestPath struct {
	Path       string   `json:"path"`
	NarHash    string   `json:"narHash"`
	NarSize    uint64   `json:"narSize"`
	References []string `json:"references"`
}

// NewManifest describes a closure.
func NewManifest(c *derivation.Closure, mode string) *Manifest {
	if mode == "" {
		mode = ModeCopy
	}
	m := &Manifest{StoreMode: mode, Paths: make([]ManifestPath, 0, len(c.Paths))}
	for _, p := range c.Paths {
		refs := p.References
		if refs == nil {
			refs = []string{}
		}
		m.Paths = append(m.Paths, ManifestPath{Path: p.Path(), NarHash: nar.Format(p.NarHash), NarSize: p.NarSize, References: refs})
	}
	return m
}

// WriteManifest writes bundleDir/closure.json (deterministic: sorted, indented).
func WriteManifest(bundleDir string, c *derivation.Closure, mode string) error {
	data, err := json.MarshalIndent(NewManifest(c, mode), "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundleDir, layout.ClosureFile), append(data, '\n'), 0o444); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// ReadManifest reads and checks bundleDir/closure.json.
func ReadManifest(bundleDir string) (*Manifest, *derivation.Closure, error) {
	p := filepath.Join(bundleDir, layout.ClosureFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the bundle's manifest: %w (was %s built by ocitools?)", err, bundleDir)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, nil, fmt.Errorf("%s: not valid JSON: %w", p, err)
	}
	if m.StoreMode != ModeCopy && m.StoreMode != ModeBind {
		return nil, nil, fmt.Errorf("%s: storeMode %q is not valid; valid modes are %q and %q", p, m.StoreMode, ModeCopy, ModeBind)
	}
	items := make([]derivation.PathInfoJSON, len(m.Paths))
	for i, mp := range m.Paths {
		items[i] = derivation.PathInfoJSON{Path: mp.Path, NarHash: mp.NarHash, NarSize: mp.NarSize, References: mp.References}
	}
	c, err := derivation.NewClosure(items)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return &m, c, nil
}

// Mismatch is one store path of a bundle that differs from its manifest.
type Mismatch struct {
	Path    string
	Problem string
}

func (m Mismatch) String() string { return m.Path + ": " + m.Problem }

// VerifyBundle re-hashes every store path of a bundle and compares it with the
// manifest. In copy mode it hashes rootfs/nix/store/<name> and also reports
// entries of rootfs/nix/store that the manifest does not list. In bind mode the
// rootfs holds only mount points and the content comes from the host store at
// run time, so the host's store paths are hashed (the same check as
// `nix-store --verify-path`, without needing the Nix database) and each mount
// point must exist. It returns how many paths were checked; err is for a
// bundle that cannot be checked at all.
func VerifyBundle(bundleDir string) (checked int, mismatches []Mismatch, err error) {
	return verifyBundle(bundleDir, "")
}

func verifyBundle(bundleDir, srcRoot string) (int, []Mismatch, error) {
	m, c, err := ReadManifest(bundleDir)
	if err != nil {
		return 0, nil, err
	}
	store := filepath.Join(bundleDir, layout.RootfsDir, layout.StoreDir)
	var (
		mu  sync.Mutex
		out []Mismatch
		wg  sync.WaitGroup
	)
	report := func(path, problem string) {
		mu.Lock()
		out = append(out, Mismatch{path, problem})
		mu.Unlock()
	}
	jobs := make(chan *derivation.PathInfo)
	for i := 0; i < max(runtime.NumCPU(), 1); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pi := range jobs {
				inRootfs := filepath.Join(store, pi.StorePath.String())
				target := inRootfs
				if m.StoreMode == ModeBind {
					if _, err := os.Lstat(inRootfs); err != nil {
						report(pi.Path(), "mount point missing from rootfs/nix/store")
					}
					target = srcRoot + pi.Path()
				}
				if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
					report(pi.Path(), "missing")
					continue
				}
				h, size, err := nar.HashPath(target)
				if err != nil {
					report(pi.Path(), err.Error())
					continue
				}
				if !sameHash(h, pi.NarHash) {
					report(pi.Path(), fmt.Sprintf("contents differ: NAR hash %s, expected %s", nar.Format(h), nar.Format(pi.NarHash)))
				} else if pi.NarSize != 0 && size != pi.NarSize {
					report(pi.Path(), fmt.Sprintf("NAR size %d, expected %d", size, pi.NarSize))
				}
			}
		}()
	}
	for _, pi := range c.Paths {
		jobs <- pi
	}
	close(jobs)
	wg.Wait()

	// Anything else in the rootfs store was added after the build.
	ents, err := os.ReadDir(store)
	if err != nil {
		return 0, nil, fmt.Errorf("verify: %w", err)
	}
	for _, e := range ents {
		p := layout.StoreDir + "/" + e.Name()
		if _, ok := c.Lookup(p); !ok {
			out = append(out, Mismatch{p, "not in the closure (added to rootfs/nix/store after the build)"})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Problem < out[j].Problem
	})
	return len(c.Paths), out, nil
}
