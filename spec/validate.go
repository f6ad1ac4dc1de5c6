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
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/resolve"
	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/options"
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
		errs = append(errs, checkRootfs(s, rootfs)...)
	}
	return errs
}

// checkOwnCopies checks that each bind of the bundle's own copy of a store
// path names something in the bundle's copied store, symlinks resolved: a
// symlink there must not lead the bind out of the bundle.
func checkOwnCopies(s *specs.Spec, rootfs string) []error {
	var errs []error
	store := filepath.Join(rootfs, filepath.FromSlash(layout.StoreDir))
	for _, m := range s.Mounts {
		if !IsBind(m) || !BundleStoreSource(m.Source) {
			continue
		}
		src := filepath.Join(filepath.Dir(rootfs), filepath.FromSlash(m.Source))
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("the bind mount at %s: its source %q is not in the bundle: %v", m.Destination, m.Source, err))
			continue
		}
		realStore, err := filepath.EvalSymlinks(store)
		if err != nil || !strings.HasPrefix(real, realStore+"/") {
			errs = append(errs, fmt.Errorf("the bind mount at %s: its source %q leads to %s, outside the bundle's copied store (a symlink to another store path: bind its target)", m.Destination, m.Source, real))
		}
	}
	return errs
}

// checkRootfs makes the checks that need the rootfs.
func checkRootfs(s *specs.Spec, rootfs string) []error {
	var errs []error
	if err := checkProgram(s, rootfs); err != nil {
		errs = append(errs, err)
	}
	if err := checkCwd(s, rootfs); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkOwnCopies(s, rootfs)...)
	return append(errs, checkStoreMountPoints(s, rootfs)...)
}

// checkCwd: a working directory that exists in the rootfs must be a directory
// (one that does not exist is created by the builder).
func checkCwd(s *specs.Spec, rootfs string) error {
	if s.Process == nil || !strings.HasPrefix(s.Process.Cwd, "/") {
		return nil
	}
	r := &resolver{rootfs: rootfs, mounts: s.Mounts}
	host, fi, err := r.resolve(path.Clean(s.Process.Cwd))
	if err != nil || fi.IsDir() {
		return nil
	}
	return fmt.Errorf("process.cwd %q resolves to %s, a %s, not a directory", s.Process.Cwd, host, kindOf(fi.Mode()))
}

// checkStoreMountPoints: a mount point or working directory under /nix/store
// must already exist (a store path of the closure, or inside one), because the
// rootfs builder cannot create anything there and a runtime would create it
// inside the bundle's store directory.
func checkStoreMountPoints(s *specs.Spec, rootfs string) []error {
	var errs []error
	inStore := func(p string) bool { return strings.HasPrefix(path.Clean(p), layout.StoreDir+"/") }
	exists := func(mounts []specs.Mount, p string) bool {
		r := &resolver{rootfs: rootfs, mounts: mounts}
		_, _, err := r.resolve(path.Clean(p))
		return err == nil || errors.Is(err, errTrusted)
	}
	for i, m := range s.Mounts {
		if !strings.HasPrefix(m.Destination, "/") || !inStore(m.Destination) {
			continue
		}
		// The mounts before it are in place when the runtime makes this one.
		if !exists(s.Mounts[:i], m.Destination) {
			errs = append(errs, fmt.Errorf("mounts[%d]: destination %q is under %s but is not in the closure: a runtime would create it inside the bundle's store directory; mount it elsewhere", i, m.Destination, layout.StoreDir))
		}
	}
	if s.Process != nil && inStore(s.Process.Cwd) && !exists(s.Mounts, s.Process.Cwd) {
		errs = append(errs, fmt.Errorf("process.cwd %q is under %s but is not in the closure: a runtime would create it inside the bundle's store directory", s.Process.Cwd, layout.StoreDir))
	}
	return errs
}

// checkConfig makes the checks the schema cannot: the ones that need the
// whole document, or ranges the schema leaves open.
func checkConfig(s *specs.Spec) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Root == nil || s.Root.Path == "" {
		add("root.path is missing: it must be %q", layout.RootfsDir)
	} else if s.Root.Path != layout.RootfsDir {
		add("root.path is %q: it must be %q, the bundle's own rootfs directory (any other path leads outside the bundle)", s.Root.Path, layout.RootfsDir)
	}
	checkHostnames(s, add)
	checkSysctls(s, add)
	checkProcess(s, add)
	checkMounts(s, add)
	checkLinux(s, add)
	return errs
}

// checkProcess checks what the bundle runs: program, working directory,
// ids, environment, limits and capabilities.
func checkProcess(s *specs.Spec, add func(string, ...any)) {
	if s.Process == nil {
		add("process is missing: a bundle must say what to run")
		return
	}
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
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		add("process.oomScoreAdj %d is out of range: the kernel accepts -1000 to 1000", *p.OOMScoreAdj)
	}
	checkCapabilities(p.Capabilities, add)
	for _, r := range p.Rlimits {
		if r.Soft > r.Hard {
			add("process.rlimits: %s has soft limit %d above its hard limit %d", r.Type, r.Soft, r.Hard)
		}
		if !slices.Contains(options.Rlimits(), r.Type) {
			add("process.rlimits: unknown type %q; valid types are %s", r.Type, quotedList(options.Rlimits()))
		}
	}
	if strings.HasPrefix(p.Cwd, "/") {
		cwd := path.Clean(p.Cwd)
		for _, m := range s.Mounts {
			d := path.Clean(m.Destination)
			if (m.Type == "proc" || m.Type == "sysfs" || d == "/proc") && (cwd == d || strings.HasPrefix(cwd, d+"/")) {
				add("process.cwd %q is inside the %s mount at %s: a runtime cannot make a working directory there", p.Cwd, m.Type, d)
				break
			}
		}
	}
}

// checkMounts checks the mounts' destinations and bind sources.
func checkMounts(s *specs.Spec, add func(string, ...any)) {
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
		if d == "/" {
			add("mounts[%d]: destination \"/\": the root file system is root.path (%q); a mount cannot replace it", i, layout.RootfsDir)
		}
		if d == "/proc" && m.Type != "proc" {
			add("mounts[%d]: /proc must be a mount of type \"proc\" (runtimes refuse anything else there), not %q", i, m.Type)
		}
		if IsBind(m) && BundleStoreSource(m.Source) {
			if !isReadOnlyBind(m.Options) {
				add("mounts[%d]: the bind mount at %s has source %q, the bundle's own copy of a store path: it must be read-only (option \"ro\"), since the container must never write the bundle", i, d, m.Source)
			}
		} else if IsBind(m) && !strings.HasPrefix(m.Source, "/") {
			add("mounts[%d]: the bind mount at %s has source %q, which is not an absolute path: a relative source names a path inside the bundle, which the container must never write; give an absolute host path", i, d, m.Source)
		}
	}
}

// checkLinux checks the namespaces and id mappings.
func checkLinux(s *specs.Spec, add func(string, ...any)) {
	if s.Linux == nil {
		return
	}
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

// hostPath maps a clean container path to where it is on this machine,
// through the mount that covers it (CoveringMount).
func (r *resolver) hostPath(p string) (string, error) {
	mp, _ := CoveringMount(r.mounts, p)
	if mp == nil {
		return filepath.Join(r.rootfs, filepath.FromSlash(p)), nil
	}
	m := *mp
	d := path.Clean(m.Destination)
	if !IsBind(m) {
		return "", fmt.Errorf("%s is inside the %s mount at %s, which hides the rootfs there and starts empty", p, m.Type, d)
	}
	src := m.Source
	if BundleStoreSource(src) {
		// The bundle's own copy: relative to the bundle, which holds rootfs.
		src = filepath.Join(filepath.Dir(r.rootfs), filepath.FromSlash(src))
	}
	if _, err := os.Lstat(src); err != nil {
		return "", errTrusted
	}
	return filepath.Join(src, filepath.FromSlash(strings.TrimPrefix(p, d))), nil
}

// resolve follows p inside the container's view (resolve.Path, through
// hostPath's mounts) and returns the host path of the final file and its
// Lstat.
func (r *resolver) resolve(p string) (string, fs.FileInfo, error) {
	var host string
	var fi fs.FileInfo
	_, _, err := resolve.Path(p, func(q string) (resolve.Node, error) {
		h, err := r.hostPath(q)
		if err != nil {
			return resolve.Node{}, err
		}
		info, err := os.Lstat(h)
		if errors.Is(err, fs.ErrNotExist) {
			return resolve.Node{}, fmt.Errorf("%s does not exist in the rootfs (is its package in the closure?)", q)
		}
		if err != nil {
			return resolve.Node{}, fmt.Errorf("%s: %w", q, err)
		}
		n := resolve.Node{Dir: info.IsDir()}
		if info.Mode()&fs.ModeSymlink != 0 {
			if n.Target, err = os.Readlink(h); err != nil {
				return resolve.Node{}, fmt.Errorf("%s: %w", q, err)
			}
			n.Symlink = true
		}
		host, fi = h, info // the last answer is the final path's
		return n, nil
	})
	if err != nil {
		return "", nil, err
	}
	return host, fi, nil
}

func quotedList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// checkSysctls: runtimes set only sysctls that belong to a namespace the
// container has of its own (the ipc, network and uts ones), and refuse the
// others at start.
func checkSysctls(s *specs.Spec, add func(string, ...any)) {
	if s.Linux == nil || len(s.Linux.Sysctl) == 0 {
		return
	}
	nss := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		nss[ns.Type] = ns.Path == ""
	}
	ipc := map[string]bool{"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
		"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true}
	for _, k := range sortedKeys(s.Linux.Sysctl) {
		var need specs.LinuxNamespaceType
		switch {
		case ipc[k] || strings.HasPrefix(k, "fs.mqueue."):
			need = specs.IPCNamespace
		case strings.HasPrefix(k, "net."):
			need = specs.NetworkNamespace
		case k == "kernel.hostname" || k == "kernel.domainname":
			need = specs.UTSNamespace
		default:
			add("linux.sysctl: %q is not namespaced: a container cannot set it (namespaced ones are kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)", k)
			continue
		}
		if !nss[need] {
			add("linux.sysctl: %q needs a %s namespace of the container's own in linux.namespaces", k, need)
		}
	}
}

// maxHostname is the kernel's limit on a host or domain name (HOST_NAME_MAX).
const maxHostname = 64

func checkHostnames(s *specs.Spec, add func(string, ...any)) {
	if len(s.Hostname) > maxHostname {
		add("hostname is %d bytes long: the kernel allows at most %d", len(s.Hostname), maxHostname)
	}
	if len(s.Domainname) > maxHostname {
		add("domainname is %d bytes long: the kernel allows at most %d", len(s.Domainname), maxHostname)
	}
}

// checkCapabilities refuses names the kernel does not know: runc ignores them
// silently, so the configuration would not say what the container gets.
func checkCapabilities(c *specs.LinuxCapabilities, add func(string, ...any)) {
	if c == nil {
		return
	}
	// What the kernel refuses when the runtime sets them (capset).
	for _, cp := range c.Effective {
		if !slices.Contains(c.Permitted, cp) {
			add("process.capabilities: %s is effective but not permitted: the kernel refuses that", cp)
		}
	}
	// The kernel raises an ambient capability only when it is permitted and
	// inheritable, and runc ignores the refusal.
	for _, cp := range c.Ambient {
		if !slices.Contains(c.Permitted, cp) || !slices.Contains(c.Inheritable, cp) {
			add("process.capabilities: %s is ambient but not both permitted and inheritable: the kernel cannot raise it, and runc silently drops it", cp)
		}
	}

	sets := []struct {
		name string
		caps []string
	}{{"bounding", c.Bounding}, {"effective", c.Effective}, {"inheritable", c.Inheritable}, {"permitted", c.Permitted}, {"ambient", c.Ambient}}
	for _, set := range sets {
		for _, name := range set.caps {
			if !slices.Contains(options.Capabilities(), name) {
				add("process.capabilities.%s: unknown capability %q; valid names are CAP_ followed by a Linux capability (%s, ...)", set.name, name, quotedList(options.Capabilities()[:3]))
			}
		}
	}
}

// duplicateKeys reports object keys that appear twice in one object: Go's
// decoder keeps the last, other readers the first, so the configuration would
// mean different things to different tools.
func duplicateKeys(data []byte) []error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj  bool
		keys map[string]bool
		path string
		next int  // array index
		key  bool // an object expects a key next
		cur  string
	}
	var stack []*frame
	var errs []error
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.obj {
			return f.path + "/" + f.cur
		}
		f.next++
		return fmt.Sprintf("%s/%d", f.path, f.next-1)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return errs // io.EOF, or a syntax error reported elsewhere
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].key = true
				}
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				where := top.path
				if where == "" {
					where = "/"
				}
				errs = append(errs, fmt.Errorf("config.json: key %q appears more than once in the object at %s: readers disagree on which one counts", k, where))
			}
			top.keys[k] = true
			top.cur, top.key = k, false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, path: child(), key: true})
			continue
		case '[':
			stack = append(stack, &frame{path: child()})
			continue
		case ']':
			stack = stack[:len(stack)-1]
		default:
			_ = child()
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
}
