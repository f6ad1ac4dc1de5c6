package rootfs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/nar"
	"github.com/ocitools/ocitools/spec"
)

// The manifest (layout.ClosureFile) is the file, next to config.json and outside rootfs/, that
// records what the rootfs store holds, for `ocitools verify`.

// Manifest is the content of closure.json.
type Manifest struct {
	// StoreMode is the bundle's store mode (copy or bind).
	StoreMode string `json:"storeMode"`
	// Paths is the closure, sorted by path, in the shape Nix's
	// exportReferencesGraph gives it (closureSize and ca left out).
	Paths []derivation.PathInfoJSON `json:"paths"`
}

// NewManifest describes a closure.
func NewManifest(c *derivation.Closure, mode string) *Manifest {
	if mode == "" {
		mode = ModeCopy
	}
	m := &Manifest{StoreMode: mode, Paths: make([]derivation.PathInfoJSON, 0, len(c.Paths))}
	for _, p := range c.Paths {
		refs := p.References
		if refs == nil {
			refs = []string{}
		}
		m.Paths = append(m.Paths, derivation.PathInfoJSON{Path: p.Path(), NarHash: nar.Format(p.NarHash), NarSize: p.NarSize, References: refs})
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
	data, err := readfile.Regular(p, readfile.ManifestLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the bundle's manifest: %w (was %s built by ocitools?)", err, bundleDir)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%s: not a valid manifest: %w", p, err)
	}
	if m.StoreMode != ModeCopy && m.StoreMode != ModeBind {
		return nil, nil, fmt.Errorf("%s: storeMode %q is not valid; valid modes are %q and %q", p, m.StoreMode, ModeCopy, ModeBind)
	}
	c, err := derivation.NewClosure(m.Paths)
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

// VerifyBundle checks that what a container of the bundle sees at each store
// path is what Nix recorded in closure.json, and that nothing in the bundle
// has modes a store path cannot have.
//
// What is checked comes from the bundle itself, never from the record: a
// store path that config.json bind-mounts onto itself (bind store mode) is the
// host's, hashed there (the same check as `nix-store --verify-path`, without
// the Nix database), and its mount point in the rootfs must be empty; any
// other store path is the bundle's copy, hashed in rootfs/nix/store, whose
// files must have the modes Nix gives (0444 or 0555, directories 0555). A
// store path another mount hides, an entry of rootfs/nix/store the closure
// does not list, and anywhere in the bundle a setuid, setgid or sticky bit, a
// world-writable mode or a device, FIFO or socket are reported too. It returns
// how many paths were checked; err is for a bundle that cannot be checked.
func VerifyBundle(bundleDir string) (checked int, mismatches []Mismatch, err error) {
	return verifyBundle(bundleDir, "")
}

// storePathProblems checks one store path of the closure as a container
// of the bundle would see it: the copy in the rootfs (its modes), or the
// host's path bound over its empty mount point (bind mode), against its NAR
// hash; or says which mount hides it.
func storePathProblems(pi *derivation.PathInfo, store, srcRoot string, mounts []specs.Mount) []string {
	inRootfs := filepath.Join(store, pi.StorePath.String())
	target := inRootfs
	var problems []string
	switch m, i := spec.CoveringMount(mounts, pi.Path()); {
	case m == nil, spec.IsBind(*m) && m.Source == layout.RootfsDir+pi.Path() && path.Clean(m.Destination) == pi.Path():
		// Nothing over it, or its own copy bound onto itself
		// (copy mode, read-only): the container sees the copy.
		problems = append(problems, storeModes(inRootfs)...)
	case spec.IsBind(*m) && path.Clean(m.Source) == pi.Path() && path.Clean(m.Destination) == pi.Path():
		if p := emptyMountPoint(inRootfs); p != "" {
			problems = append(problems, p)
		}
		target = srcRoot + pi.Path()
	default:
		return []string{fmt.Sprintf("hidden by mounts[%d] (%s from %q at %s): a container would not see this store path", i, m.Type, m.Source, m.Destination)}
	}
	if p := narMismatch(target, pi); p != "" {
		problems = append(problems, p)
	}
	return problems
}

func verifyBundle(bundleDir, srcRoot string) (int, []Mismatch, error) {
	_, c, err := ReadManifest(bundleDir)
	if err != nil {
		return 0, nil, err
	}
	// The one reader of config.json; verify needs only the mounts, so a
	// bundle with validation problems is still verified (validate says them).
	b, problems := spec.LoadBundle(bundleDir)
	if b == nil {
		return 0, nil, fmt.Errorf("verify: %w", problems[0])
	}
	mounts := b.Config.Mounts
	store := filepath.Join(bundleDir, layout.RootfsDir, layout.StoreDir)
	if fi, err := os.Lstat(store); err != nil || !fi.IsDir() {
		return 0, nil, fmt.Errorf("verify: %s is not a directory", store)
	}
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
				for _, p := range storePathProblems(pi, store, srcRoot, mounts) {
					report(pi.Path(), p)
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
	out = append(out, unsafeModes(bundleDir, store)...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Problem < out[j].Problem
	})
	return len(c.Paths), out, nil
}

// narMismatch compares the NAR serialisation of target with what Nix
// recorded for pi; "" means they are the same. The copy's verification and
// `ocitools verify` share it.
func narMismatch(target string, pi *derivation.PathInfo) string {
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		return "missing"
	}
	h, size, err := nar.HashPath(target)
	if err != nil {
		return err.Error()
	}
	if !sameHash(h, pi.NarHash) {
		return fmt.Sprintf("contents differ: NAR hash %s, expected %s", nar.Format(h), nar.Format(pi.NarHash))
	}
	if pi.NarSize != 0 && size != pi.NarSize {
		return fmt.Sprintf("NAR size %d, expected %d", size, pi.NarSize)
	}
	return ""
}

// emptyMountPoint checks a bind store path's mount point: an empty directory
// (0555) or an empty file (0444), as the rootfs builder makes them.
func emptyMountPoint(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return "mount point missing from rootfs/nix/store"
	}
	switch {
	case fi.IsDir():
		ents, err := os.ReadDir(p)
		if err != nil || len(ents) > 0 {
			return "mount point in rootfs/nix/store is not empty"
		}
	case fi.Mode().IsRegular():
		if fi.Size() != 0 {
			return "mount point in rootfs/nix/store is not empty"
		}
	default:
		return fmt.Sprintf("mount point in rootfs/nix/store is a %s", fi.Mode().Type())
	}
	return ""
}

// maxModeReports bounds the mode problems reported for one store path.
const maxModeReports = 5

// storeModes checks every entry of a copied store path for the modes Nix
// gives: regular files 0444 or 0555, directories 0555, symlinks; nothing else.
func storeModes(root string) []string {
	var problems []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a missing path is reported by the hash
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		what := ""
		mode := fi.Mode()
		perm := uint32(mode.Perm()) | specialBits(mode)
		switch {
		case mode&fs.ModeSymlink != 0:
		case mode.IsDir():
			if perm != 0o555 {
				what = fmt.Sprintf("directory has mode %04o, a store directory has 0555", perm)
			}
		case mode.IsRegular():
			if perm != 0o444 && perm != 0o555 {
				what = fmt.Sprintf("file has mode %04o, a store file has 0444 or 0555", perm)
			}
		default:
			what = fmt.Sprintf("is a %s, which a store path cannot hold", kind(mode))
		}
		if what != "" && len(problems) < maxModeReports {
			if rel == "." {
				problems = append(problems, what)
			} else {
				problems = append(problems, rel+": "+what)
			}
		}
		return nil
	})
	return problems
}

// unsafeModes reports, outside the store copy, what no bundle needs and a
// container could abuse: setuid, setgid or sticky bits, world-writable files
// and directories, devices, FIFOs and sockets.
func unsafeModes(bundleDir, store string) []Mismatch {
	var out []Mismatch
	_ = filepath.WalkDir(bundleDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if filepath.Dir(p) == store {
			return filepath.SkipDir // store paths: checked exactly above
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		mode := fi.Mode()
		rel, _ := filepath.Rel(bundleDir, p)
		switch {
		case mode&fs.ModeSymlink != 0:
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			out = append(out, Mismatch{rel, fmt.Sprintf("is a %s, which a bundle must not hold", kind(mode))})
		case specialBits(mode) != 0 || mode.Perm()&0o002 != 0:
			out = append(out, Mismatch{rel, fmt.Sprintf("has mode %04o: a bundle holds no setuid, setgid, sticky or world-writable entries", uint32(mode.Perm())|specialBits(mode))})
		}
		return nil
	})
	return out
}

func specialBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}
