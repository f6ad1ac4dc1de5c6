package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/layout"
)

// Validate checks a configuration against the runtime-spec JSON schema and the
// checks the schema cannot make; rootfs is the bundle's root directory, used to
// resolve process.args[0] ("" skips that check). Each error is one line.
func Validate(s *specs.Spec, rootfs string) []error {
	if s == nil {
		return []error{errors.New("no configuration")}
	}
	data, err := json.Marshal(s)
	if err != nil {
		return []error{fmt.Errorf("encoding the configuration: %w", err)}
	}
	errs := schemaCheck(data)
	errs = append(errs, checkConfig(s)...)
	if rootfs != "" {
		if err := checkProgram(s, rootfs); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ValidateBundle reads BUNDLE/config.json and validates it against its rootfs.
// The schema sees the file's own bytes (a null that decoding would drop still
// counts), and a field the runtime spec does not define is an error.
func ValidateBundle(bundle string) []error {
	cfgPath := filepath.Join(bundle, layout.ConfigFile)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return []error{fmt.Errorf("reading the configuration: %w", err)}
	}
	errs := schemaCheck(data)
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		// The schema already reported type errors; report what it cannot.
		if strings.Contains(err.Error(), "unknown field") {
			errs = append(errs, fmt.Errorf("%s: %v (runtime-spec %s does not define it)", cfgPath, err, specs.Version))
		} else if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("%s: %w", cfgPath, err))
		}
		var loose specs.Spec
		if json.Unmarshal(data, &loose) != nil {
			return errs
		}
		s = loose
	}
	errs = append(errs, checkConfig(&s)...)
	if s.Root == nil || s.Root.Path == "" {
		return errs
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return append(errs, fmt.Errorf("root.path %q: %s is not a directory", s.Root.Path, rootfs))
	}
	if err := checkProgram(&s, rootfs); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkConfig makes the checks the schema cannot: the ones that need the
// whole document, or ranges the schema leaves open.
func checkConfig(s *specs.Spec) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Root == nil || s.Root.Path == "" {
		add("root.path is missing: it names the rootfs directory")
	}
	if s.Process == nil {
		add("process is missing: a bundle must say what to run")
	} else {
		p := s.Process
		if len(p.Args) == 0 || p.Args[0] == "" {
			add("process.args is empty: args[0] is the program to run")
		}
		if !strings.HasPrefix(p.Cwd, "/") {
			add("process.cwd %q is not an absolute path", p.Cwd)
		}
		checkID := func(what string, id uint32) {
			if id == math.MaxUint32 {
				add("%s %d is out of range: ids go from 0 to 4294967294 (4294967295 means no id)", what, id)
			}
		}
		checkID("process.user.uid", p.User.UID)
		checkID("process.user.gid", p.User.GID)
		for _, g := range p.User.AdditionalGids {
			checkID("process.user.additionalGids", g)
		}
		for _, e := range p.Env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				add("process.env: %q is not of the form NAME=value", e)
			}
		}
	}
	seen := map[string]bool{}
	for i, m := range s.Mounts {
		if !strings.HasPrefix(m.Destination, "/") {
			add("mounts[%d]: destination %q is not an absolute path", i, m.Destination)
			continue
		}
		d := path.Clean(m.Destination)
		if seen[d] {
			add("mounts: destination %q appears more than once", d)
		}
		seen[d] = true
	}
	if s.Linux != nil {
		nss := map[specs.LinuxNamespaceType]bool{}
		for _, ns := range s.Linux.Namespaces {
			if nss[ns.Type] {
				add("linux.namespaces: %q appears more than once", ns.Type)
			}
			nss[ns.Type] = true
		}
		if s.Hostname != "" && !nss[specs.UTSNamespace] {
			add("hostname %q needs a uts namespace in linux.namespaces", s.Hostname)
		}
		for _, m := range append(append([]specs.LinuxIDMapping{}, s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
			if uint64(m.ContainerID)+uint64(m.Size) > math.MaxUint32 || uint64(m.HostID)+uint64(m.Size) > math.MaxUint32 {
				add("linux id mapping %d:%d:%d goes past 4294967294", m.ContainerID, m.HostID, m.Size)
			}
		}
	}
	return errs
}

// checkProgram resolves process.args[0] the way the container will see it and
// requires a regular executable file.
//
// A name without '/' is looked up in PATH (from process.env); a relative path
// with '/' is taken from process.cwd. Each component is resolved inside the
// rootfs: symlinks are followed, an absolute target starts again at the rootfs
// root and ".." stops at it, so resolution never leaves the rootfs. A path
// under a bind mount's destination is looked up under its source on this
// machine: in bind store mode the closure is bind-mounted from /nix/store, and
// the build sees those paths. A bind source that does not exist here is a
// host path of the machine that will run the bundle: the check trusts it. A
// path under any other mount (tmpfs, proc, ...) cannot hold the program: that
// mount hides the rootfs and starts empty. Mounts at "/" are ignored (they
// stack over the rootfs, as the rootless overlay does).
func checkProgram(s *specs.Spec, rootfs string) error {
	if s.Process == nil || len(s.Process.Args) == 0 || s.Process.Args[0] == "" {
		return nil
	}
	r := &resolver{rootfs: rootfs, mounts: s.Mounts}
	arg0 := s.Process.Args[0]
	prefix := fmt.Sprintf("process.args[0] %q", arg0)
	if !strings.Contains(arg0, "/") {
		pathEnv, ok := envPath(s.Process.Env)
		if !ok {
			return fmt.Errorf("%s is a bare name, and process.env sets no PATH to find it in", prefix)
		}
		for _, dir := range strings.Split(pathEnv, ":") {
			if !strings.HasPrefix(dir, "/") {
				continue
			}
			p := path.Join(dir, arg0)
			if err := r.executable(p); err == nil {
				return nil
			}
		}
		return fmt.Errorf("%s is not an executable file in any PATH directory of the rootfs (PATH=%s)", prefix, pathEnv)
	}
	p := arg0
	if !strings.HasPrefix(p, "/") {
		p = path.Join(s.Process.Cwd, p)
	}
	if err := r.executable(p); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return nil
}

func envPath(env []string) (string, bool) {
	val, found := "", false
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			val, found = v, true // the last one wins, as with execve
		}
	}
	return val, found
}

type resolver struct {
	rootfs string
	mounts []specs.Mount
}

// errTrusted ends resolution at a bind source that is not on this machine.
var errTrusted = errors.New("trusted")

const maxSymlinks = 40 // as the kernel's limit on nested symlinks

func (r *resolver) executable(p string) error {
	host, fi, err := r.resolve(p)
	if errors.Is(err, errTrusted) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s resolves to %s, a %s, not a regular file", p, host, kindOf(fi.Mode()))
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s resolves to %s, which is not executable (mode %04o)", p, host, fi.Mode().Perm())
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// hostPath maps a clean container path to where it is on this machine.
func (r *resolver) hostPath(p string) (string, error) {
	best := -1
	for i, m := range r.mounts {
		d := path.Clean(m.Destination)
		if d == "/" || (p != d && !strings.HasPrefix(p, d+"/")) {
			continue
		}
		// The deepest mount wins; among equals, the later one (it is on top).
		if best < 0 || len(d) >= len(path.Clean(r.mounts[best].Destination)) {
			best = i
		}
	}
	if best < 0 {
		return filepath.Join(r.rootfs, filepath.FromSlash(p)), nil
	}
	m := r.mounts[best]
	d := path.Clean(m.Destination)
	if !IsBind(m) {
		return "", fmt.Errorf("%s is inside the %s mount at %s, which hides the rootfs there and starts empty", p, m.Type, d)
	}
	if _, err := os.Lstat(m.Source); err != nil {
		return "", errTrusted
	}
	return filepath.Join(m.Source, filepath.FromSlash(strings.TrimPrefix(p, d))), nil
}

// resolve follows p component by component inside the container's view and
// returns the host path of the final file and its Lstat.
func (r *resolver) resolve(p string) (string, fs.FileInfo, error) {
	todo := splitPath(p)
	cur := "/"
	hops := 0
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		if part == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		host, err := r.hostPath(next)
		if err != nil {
			return "", nil, err
		}
		fi, err := os.Lstat(host)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil, fmt.Errorf("%s does not exist in the rootfs (is its package in the closure?)", next)
			}
			return "", nil, fmt.Errorf("%s: %w", next, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			hops++
			if hops > maxSymlinks {
				return "", nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target, err := os.Readlink(host)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %w", next, err)
			}
			if strings.HasPrefix(target, "/") {
				cur = "/"
			}
			todo = append(splitPath(target), todo...)
			continue
		}
		if len(todo) > 0 && !fi.IsDir() {
			return "", nil, fmt.Errorf("%s is not a directory", next)
		}
		cur = next
		if len(todo) == 0 {
			return host, fi, nil
		}
	}
	host, err := r.hostPath(cur)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", cur, err)
	}
	return host, fi, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}
