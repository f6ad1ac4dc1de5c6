package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/spec"
)

// loadBundle resolves bundle, validates it and returns its absolute path and
// configuration.
func loadBundle(bundle string) (string, *specs.Spec, error) {
	if bundle == "" {
		return "", nil, errors.New("no bundle given: name a directory holding config.json and rootfs/")
	}
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return "", nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	// A result symlink from nix-build names the store path: use that.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil, fmt.Errorf("bundle %s does not exist: name a directory holding config.json and rootfs/", bundle)
	case err != nil:
		return "", nil, fmt.Errorf("bundle %s: %w", bundle, err)
	case !fi.IsDir():
		return "", nil, fmt.Errorf("bundle %s is not a directory: name a directory holding config.json and rootfs/", bundle)
	}
	cfgPath := filepath.Join(abs, layout.ConfigFile)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("bundle %s has no config.json: it is not an OCI runtime bundle", bundle)
		}
		return "", nil, fmt.Errorf("reading %s: %w", cfgPath, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return "", nil, fmt.Errorf("%s is not a valid runtime configuration: %s", cfgPath, describeJSONError(data, err))
	}
	if errs := validate(abs); len(errs) > 0 {
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = "  " + e.Error()
		}
		return "", nil, fmt.Errorf("bundle %s is invalid:\n%s", bundle, strings.Join(lines, "\n"))
	}
	if s.Root == nil || s.Root.Path == "" {
		return "", nil, fmt.Errorf("%s: root.path is missing: it names the root file system (\"rootfs\")", cfgPath)
	}
	if s.Process == nil {
		return "", nil, fmt.Errorf("%s: process is missing: ocitools run starts the configured process", cfgPath)
	}
	return abs, &s, nil
}

// validate runs the spec package's bundle validation. Until that exists it
// answers "not implemented", which must not stop every run.
func validate(bundle string) []error {
	errs := spec.ValidateBundle(bundle)
	if len(errs) == 1 && errs[0].Error() == "not implemented" {
		return nil
	}
	return errs
}

// describeJSONError says where in data a decoding error is, as line:column.
func describeJSONError(data []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// privateBundle is the temporary bundle a run uses: config.json, an empty root
// directory, and the overlay's upper and work directories.
type privateBundle struct {
	dir, root, upper, work string
	lower                  string // the stored rootfs, set by prepare
}

func newPrivateBundle(tmp string) (*privateBundle, error) {
	dir, err := os.MkdirTemp(tmp, "ocitools-run-")
	if err != nil {
		return nil, fmt.Errorf("creating the private bundle directory: %w", err)
	}
	b := &privateBundle{
		dir:   dir,
		root:  filepath.Join(dir, "root"),
		upper: filepath.Join(dir, "upper"),
		work:  filepath.Join(dir, "work"),
	}
	for _, d := range []string{b.root, b.upper, b.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("creating the private bundle: %w", err)
		}
	}
	return b, nil
}

// overlayUnsafe are characters the kernel's overlay option parser treats as
// separators.
const overlayUnsafe = ",:\\"

// prepare rewrites s for the private bundle: the root becomes an overlay whose
// lower layer is the stored rootfs and whose upper layer lives in b, so that
// writes (and mount points the runtime creates) never reach the stored bundle;
// root.readonly keeps its meaning because the runtime remounts "/" read-only.
// Relative bind sources are made absolute, since config.json moves.
func (b *privateBundle) prepare(s *specs.Spec, bundle string, args []string) error {
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if real, err := filepath.EvalSymlinks(rootfs); err == nil {
		rootfs = real
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return fmt.Errorf("bundle %s: root.path %q is not a directory", bundle, s.Root.Path)
	}
	b.lower = rootfs
	for _, p := range []string{rootfs, b.upper, b.work} {
		if strings.ContainsAny(p, overlayUnsafe) {
			return fmt.Errorf("path %s contains one of %q, which an overlay mount cannot name; move it (or set TMPDIR) elsewhere", p, overlayUnsafe)
		}
	}
	if len(args) > 0 {
		s.Process.Args = args
	}
	if len(s.Process.Args) == 0 {
		return fmt.Errorf("bundle %s: process.args is empty: give the command after --", bundle)
	}
	for i, m := range s.Mounts {
		if spec.IsBind(m) && m.Source != "" && !filepath.IsAbs(m.Source) {
			s.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
	overlay := specs.Mount{
		Destination: "/",
		Type:        "overlay",
		Source:      "overlay",
		Options:     []string{"lowerdir=" + rootfs, "upperdir=" + b.upper, "workdir=" + b.work},
	}
	s.Mounts = append([]specs.Mount{overlay}, s.Mounts...)
	s.Root.Path = b.root
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the private config.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, layout.ConfigFile), data, 0o600); err != nil {
		return fmt.Errorf("writing the private config.json: %w", err)
	}
	return nil
}

// shareWithUserNS hands the root, upper and work directories to the host ids of
// container root when a root run's configuration has its own user namespace:
// the runtime's init mounts the overlay from inside it, as that user.
func (b *privateBundle) shareWithUserNS(s *specs.Spec) error {
	if s.Linux == nil {
		return nil
	}
	userNS := false
	for _, ns := range s.Linux.Namespaces {
		userNS = userNS || (ns.Type == specs.UserNamespace && ns.Path == "")
	}
	uid, uok := hostID(s.Linux.UIDMappings, 0)
	gid, gok := hostID(s.Linux.GIDMappings, 0)
	if !userNS || !uok || !gok {
		return nil
	}
	if err := os.Chmod(b.dir, 0o711); err != nil {
		return fmt.Errorf("sharing the private bundle with the user namespace: %w", err)
	}
	for _, d := range []string{b.root, b.upper, b.work} {
		if err := os.Chown(d, int(uid), int(gid)); err != nil {
			return fmt.Errorf("sharing the private bundle with the user namespace: %w", err)
		}
	}
	return nil
}

// mirrorDirs gives the writable layer, for each directory of the stored rootfs
// outside /nix, a directory of the same mode and mtime that the caller owns.
// Rootless, the stored directories belong to a host user the namespace does
// not map: the overlay cannot copy them up, so without this nothing could be
// created or removed in them. With it, container root owns them as it does in
// a root run; files from the store still cannot be modified, and /nix stays
// as stored.
func (b *privateBundle) mirrorDirs() error {
	type dir struct {
		path string
		fi   fs.FileInfo
	}
	var dirs []dir
	err := filepath.WalkDir(b.lower, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == b.lower {
			return nil // unreadable parts just stay as they are
		}
		rel, err := filepath.Rel(b.lower, p)
		if err != nil {
			return nil
		}
		if rel == "nix" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		up := filepath.Join(b.upper, rel)
		if err := os.Mkdir(up, 0o700); err != nil {
			return fmt.Errorf("preparing the writable layer: %w", err)
		}
		dirs = append(dirs, dir{up, fi})
		return nil
	})
	if err != nil {
		return err
	}
	// Deepest first: a read-only parent must not stop its children, and
	// creating a child changes its parent's mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Chmod(d.path, d.fi.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetgid)); err != nil {
			return fmt.Errorf("preparing the writable layer: %w", err)
		}
		if err := os.Chtimes(d.path, d.fi.ModTime(), d.fi.ModTime()); err != nil {
			return fmt.Errorf("preparing the writable layer: %w", err)
		}
	}
	return nil
}

// removeTree removes dir. Directories the caller owns but may not write (those
// mirrorDirs made read-only, the overlay's work directory) are opened first.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700) // before WalkDir reads it
		}
		return nil
	})
	return os.RemoveAll(dir)
}

func hostID(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, r := range m {
		if id >= r.ContainerID && uint64(id) < uint64(r.ContainerID)+uint64(r.Size) {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}
