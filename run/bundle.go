package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/readfile"
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
	// Read once: what runs is what was validated.
	b, problems := spec.LoadBundle(abs)
	if b == nil {
		if errors.Is(problems[0], os.ErrNotExist) {
			return "", nil, fmt.Errorf("bundle %s has no config.json: it is not an OCI runtime bundle", bundle)
		}
		return "", nil, problems[0]
	}
	if len(problems) > 0 {
		lines := make([]string, len(problems))
		for i, e := range problems {
			lines[i] = "  " + e.Error()
		}
		return "", nil, fmt.Errorf("bundle %s is invalid:\n%s", bundle, strings.Join(lines, "\n"))
	}
	s := b.Config
	cfgPath := filepath.Join(abs, layout.ConfigFile)
	// Validation said all this; checked again because what follows relies on it.
	if s.Root == nil || s.Root.Path != layout.RootfsDir {
		return "", nil, fmt.Errorf("%s: root.path must be %q", cfgPath, layout.RootfsDir)
	}
	if s.Process == nil {
		return "", nil, fmt.Errorf("%s: process is missing: ocitools run starts the configured process", cfgPath)
	}
	return abs, s, nil
}

// privateBundle is the temporary bundle a run uses: config.json, an empty root
// directory, and the overlay's upper and work directories.
type privateBundle struct {
	dir, root, upper, work string
	lower                  string   // the stored rootfs, set by prepare
	lock                   *os.File // held while the run lives: see reclaimStale
}

// Names in the private bundle.
const (
	privatePrefix = "ocitools-run-"
	lockName      = "lock"
	infoName      = "run.json"
	pidName       = "pid"
)

// runInfo is what a later run needs to clean up after this one if ocitools is
// killed: the container and its state directory, and the id mappings to
// remove files of subordinate ids.
type runInfo struct {
	ID          string                 `json:"id"`
	State       string                 `json:"state"`
	UIDMappings []specs.LinuxIDMapping `json:"uidMappings,omitempty"`
	GIDMappings []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
}

func newPrivateBundle(tmp string) (*privateBundle, error) {
	dir, err := os.MkdirTemp(tmp, privatePrefix)
	if err != nil {
		return nil, fmt.Errorf("creating the private bundle directory: %w", err)
	}
	b := &privateBundle{
		dir:   dir,
		root:  filepath.Join(dir, "root"),
		upper: filepath.Join(dir, "upper"),
		work:  filepath.Join(dir, "work"),
	}
	// The lock is taken before anything else exists, and the run record is
	// written only while it is held: a record whose lock is free belongs to
	// a run that is gone.
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("locking the private bundle: %w", err)
	}
	b.lock = lock
	for _, d := range []string{b.root, b.upper, b.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.unlock()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("creating the private bundle: %w", err)
		}
	}
	return b, nil
}

func (b *privateBundle) unlock() {
	if b.lock != nil {
		b.lock.Close()
		b.lock = nil
	}
}

// record writes what a later run needs to clean up after this one.
func (b *privateBundle) record(info runInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("recording the run: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, infoName), data, 0o600); err != nil {
		return fmt.Errorf("recording the run: %w", err)
	}
	return nil
}

func (b *privateBundle) pidFile() string { return filepath.Join(b.dir, pidName) }

// started reports whether the runtime started the container's process: runc
// and crun write --pid-file only once it runs.
func (b *privateBundle) started() bool {
	fi, err := os.Stat(b.pidFile())
	return err == nil && fi.Size() > 0
}

// reclaimStale removes what runs killed with SIGKILL left in tmp: their
// container and runtime state (through the runtime) and their private bundle.
// Only directories of this user whose lock no process holds are touched.
func reclaimStale(tmp, runtime string, stderr io.Writer) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), privatePrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || !ownedByMe(fi) {
			continue
		}
		lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|syscall.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			lock.Close()
			continue // a live run
		}
		data, err := readfile.Regular(filepath.Join(dir, infoName), readfile.RunInfoLimit)
		var info runInfo
		if err != nil || json.Unmarshal(data, &info) != nil || !strings.HasPrefix(info.ID, "ocitools-") {
			lock.Close()
			continue // not recorded yet, or not ours
		}
		c := &container{runtime: runtime, state: info.State, id: info.ID}
		if err := c.delete(); err != nil {
			fmt.Fprintf(stderr, "ocitools run: warning: an interrupted run left container %s: %v\n", info.ID, err)
		}
		lock.Close()
		if err := removeDir(dir, info.UIDMappings, info.GIDMappings); err != nil {
			fmt.Fprintf(stderr, "ocitools run: warning: removing what an interrupted run left: %v\n", err)
			continue
		}
		fmt.Fprintf(stderr, "ocitools run: removed what an interrupted run left (container %s, %s)\n", info.ID, dir)
	}
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
	// Always the bundle's own rootfs, never followed through a symlink: the
	// overlay's lower layer must not be a directory outside the bundle.
	if s.Root.Path != layout.RootfsDir {
		return fmt.Errorf("bundle %s: root.path is %q: it must be %q", bundle, s.Root.Path, layout.RootfsDir)
	}
	rootfs := filepath.Join(bundle, layout.RootfsDir)
	if fi, err := os.Lstat(rootfs); err != nil || !fi.IsDir() {
		return fmt.Errorf("bundle %s: root.path %q is not a directory (a symlink is not followed)", bundle, s.Root.Path)
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
		if !spec.IsBind(m) {
			continue
		}
		if spec.BundleStoreSource(m.Source) {
			// The bundle's own copy of a store path (copy mode): taken from
			// the stored bundle, read-only (writesStored below), and only
			// where its symlinks keep it inside the bundle's rootfs.
			src := filepath.Join(bundle, filepath.FromSlash(m.Source))
			real, err := filepath.EvalSymlinks(src)
			realRootfs, rerr := filepath.EvalSymlinks(rootfs)
			if err != nil || rerr != nil || !within(real, realRootfs) {
				return fmt.Errorf("bundle %s: the bind mount at %s has the source %q, which does not lead to a path inside the bundle's rootfs", bundle, m.Destination, m.Source)
			}
			s.Mounts[i].Source = real
			m.Source = real
		} else if !filepath.IsAbs(m.Source) {
			return fmt.Errorf("bundle %s: the bind mount at %s has the relative source %q: give an absolute host path", bundle, m.Destination, m.Source)
		}
		if writesStored(m.Source, bundle) {
			s.Mounts[i].Options = readOnly(m.Options)
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

// writesStored reports whether a bind of source could reach the stored bundle
// or the Nix store: source (symlinks resolved) is inside one of them or holds
// one. Such a bind is made read-only.
func writesStored(source, bundle string) bool {
	if real, err := filepath.EvalSymlinks(source); err == nil {
		source = real
	}
	for _, p := range []string{bundle, layout.StoreDir} {
		if within(source, p) || within(p, source) {
			return true
		}
	}
	return false
}

// within reports whether p is dir or inside it (both clean and absolute).
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// readOnly turns bind options into read-only ones, recursively ("rro") so
// that mounts below the source are read-only too.
func readOnly(opts []string) []string {
	out := make([]string, 0, len(opts)+2)
	for _, o := range opts {
		if o != "rw" && o != "ro" && o != "rro" && o != "rrw" {
			out = append(out, o)
		}
	}
	return append(out, "ro", "rro")
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
// as stored. A directory the namespace maps (mapped: its host owner is the
// caller or one of its subordinate ids, as in an image unpacked by `ocitools
// run IMAGE`) is left to the overlay with what it holds: it copies it up
// with its owner, a service user's data directory stays that user's.
func (b *privateBundle) mirrorDirs(stop func() syscall.Signal, mapped func(hostUID uint32) bool) error {
	type dir struct {
		path string
		fi   fs.FileInfo
	}
	var dirs []dir
	err := filepath.WalkDir(b.lower, func(p string, d fs.DirEntry, err error) error {
		if stop != nil && stop() != 0 {
			return errStopped
		}
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
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && mapped != nil && mapped(st.Uid) {
			return filepath.SkipDir
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
