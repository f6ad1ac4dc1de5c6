// Package run starts an OCI runtime bundle with an OCI runtime (runc, crun), as
// root or rootless, in a private temporary bundle: the stored bundle, which
// normally lives in /nix/store, is only ever read.
package run

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/rootfs"
	"github.com/ocitools/ocitools/spec"
)

// DefaultGrace is how long a container gets between a forwarded terminating
// signal and SIGKILL.
const DefaultGrace = 10 * time.Second

// Options of one run.
type Options struct {
	// Bundle is the bundle directory (config.json, rootfs/).
	Bundle string
	// Args, when not empty, replace process.args for this run.
	Args []string
	// ProgramArgs, when Args is empty and ProgramArgs is not nil, replace
	// process.args[1:]: the configured program gets these arguments instead,
	// as a program started by `nix run X -- ARGS` does.
	ProgramArgs []string
	// NoTerminal runs a process configured with process.terminal without one,
	// for when standard input is not a terminal.
	NoTerminal bool
	// Runtime is a runtime name or path; empty: $OCITOOLS_RUNTIME, runc, crun.
	Runtime string
	// StateDir is the runtime's --root. Empty: /run/ocitools as root; as another
	// user $XDG_RUNTIME_DIR/ocitools, or a directory in the private bundle.
	StateDir string
	// Grace is the time from a forwarded SIGINT/SIGTERM/SIGHUP/SIGQUIT (or ctx
	// being done) to SIGKILL. Zero means DefaultGrace.
	Grace time.Duration
	// TempDir holds the private bundle; empty means os.TempDir().
	TempDir string
	// AllowHostConfig runs bundles whose configuration acts on the host
	// outside the container: hooks (programs the runtime runs on the host, as
	// the caller) and namespaces joined by path. Without it they are refused.
	AllowHostConfig bool
	// Signals delivers the signals to forward to the container (the caller
	// subscribes with signal.Notify). May be nil.
	Signals <-chan os.Signal

	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run runs the bundle and returns the container's exit status (128+N when it was
// killed by signal N, or when signal N stopped the run before the container
// started). err is set when the container could not be started; the runtime's
// own errors reach Stderr.
func Run(ctx context.Context, o Options) (int, error) {
	st := &stopper{signals: o.Signals, ctx: ctx}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	bundle, s, err := loadBundle(o.Bundle)
	if err != nil {
		return 0, err
	}
	if !o.AllowHostConfig {
		if err := checkHostConfig(s, os.Geteuid() != 0); err != nil {
			return 0, fmt.Errorf("bundle %s: %w", o.Bundle, err)
		}
		if os.Geteuid() == 0 {
			confineRoot(s)
		}
	}
	runtime, err := FindRuntime(o.Runtime)
	if err != nil {
		return 0, err
	}
	rootless := os.Geteuid() != 0
	var uidMap, gidMap []specs.LinuxIDMapping // set when removal may need them
	if rootless {
		if uidMap, gidMap, err = rootlessSpec(s, o); err != nil {
			return 0, err
		}
	}
	if err := checkTerminal(s, o); err != nil {
		return 0, err
	}
	tmp, err := upperParent(o.TempDir)
	if err != nil {
		return 0, err
	}
	reclaimStale(tmp, runtime, o.Stderr)
	if sig := st.stopped(); sig != 0 {
		return 128 + int(sig), nil
	}
	c := &container{runtime: runtime, id: newID(), grace: o.Grace, stderr: o.Stderr, uidMap: uidMap, gidMap: gidMap}
	if c.grace <= 0 {
		c.grace = DefaultGrace
	}
	pb, err := newPrivateBundle(tmp)
	if err != nil {
		return 0, err
	}
	c.state = o.StateDir
	if c.state == "" {
		c.state = defaultStateDir(rootless, pb.dir)
	}
	removed := false
	cleanUp := func() {
		if removed {
			return
		}
		removed = true
		if derr := c.delete(); derr != nil {
			fmt.Fprintf(c.stderr, "ocitools run: warning: %v\n", derr)
		}
		if rerr := removePrivate(pb, uidMap, gidMap); rerr != nil {
			fmt.Fprintf(c.stderr, "ocitools run: warning: removing the private bundle: %v\n", rerr)
		}
	}
	defer cleanUp()
	if err := pb.record(runInfo{ID: c.id, State: c.state, UIDMappings: uidMap, GIDMappings: gidMap}); err != nil {
		return 0, err
	}
	if err := pb.fill(s, bundle, o, rootless, uidMap, st); err != nil {
		return 0, err
	}
	if sig := st.stopped(); sig != 0 {
		return 128 + int(sig), nil
	}
	code, err := c.run(ctx, pb, o, st)
	cleanUp()
	return code, err
}

// checkTerminal turns process.terminal off when asked to (--no-terminal),
// and refuses it without a terminal on standard input.
func checkTerminal(s *specs.Spec, o Options) error {
	if !s.Process.Terminal {
		return nil
	}
	if o.NoTerminal {
		s.Process.Terminal = false
		return nil
	}
	if !isTerminal(o.Stdin) {
		return fmt.Errorf("bundle %s sets process.terminal, but standard input is not a terminal: run it from one, or pass --no-terminal", o.Bundle)
	}
	return nil
}

// fill writes the private bundle the runtime runs (the configuration with
// the arguments to run, the root over the bundle's) and opens it to the
// user namespace that will read it: shared with it as root, or, rootless
// with a writable root, its directories mirrored for the mapped uids.
func (b *privateBundle) fill(s *specs.Spec, bundle string, o Options, rootless bool, uidMap []specs.LinuxIDMapping, st *stopper) error {
	args := o.Args
	if len(args) == 0 && o.ProgramArgs != nil && len(s.Process.Args) > 0 {
		args = append([]string{s.Process.Args[0]}, o.ProgramArgs...)
	}
	if err := b.prepare(s, bundle, args); err != nil {
		return err
	}
	if !rootless {
		return b.shareWithUserNS(s)
	}
	if !s.Root.Readonly {
		if err := b.mirrorDirs(st.stopped, mappedHost(uidMap)); err != nil && !errors.Is(err, errStopped) {
			return err
		}
	}
	return nil
}

// rootlessSpec makes s runnable as this unprivileged user (ToRootless, with
// subordinate ids where the process needs them), warns of what it cannot
// keep, and returns the id mappings the runtime's user namespace gets when
// there are subordinate ids (the container's then become the identity).
func rootlessSpec(s *specs.Spec, o Options) (uidMap, gidMap []specs.LinuxIDMapping, err error) {
	if err := checkUserNamespaces("/proc/sys"); err != nil {
		return nil, nil, err
	}
	u := s.Process.User
	// The caller's other supplementary groups can be dropped only by a
	// runtime that is root in a user namespace whose gid map came from
	// newgidmap with subordinate gids (runtimeInUserNS): the kernel
	// denies setgroups where an unprivileged user wrote the map.
	others := otherGroups()
	needSub := u.UID != 0 || u.GID != 0 || len(u.AdditionalGids) > 0 || len(others) > 0
	ids := rootlessIDs(needSub, "/etc")
	if err := ToRootless(s, ids); err != nil {
		return nil, nil, fmt.Errorf("bundle %s cannot run as uid %d: %w", o.Bundle, os.Getuid(), err)
	}
	if len(others) > 0 && len(s.Linux.GIDMappings) == 1 {
		fmt.Fprintf(o.Stderr, "ocitools run: warning: your supplementary groups %v stay with the container process (shown as 65534) and open to it what they open to you, such as group-readable files in a bind-mounted host directory; without subordinate ids they cannot be dropped (%s)\n", others, ids.NoSubIDs)
	}
	if len(u.AdditionalGids) > 0 && len(s.Process.User.AdditionalGids) == 0 {
		fmt.Fprintf(o.Stderr, "ocitools run: warning: process.user.additionalGids %v are left out: without subordinate gids that map them (newgidmap, /etc/subgid), supplementary groups cannot be set rootless\n", u.AdditionalGids)
	}
	if len(s.Linux.UIDMappings) > 1 || len(s.Linux.GIDMappings) > 1 {
		uidMap, gidMap = s.Linux.UIDMappings, s.Linux.GIDMappings
		// The runtime runs in a user namespace with these mappings
		// (runtimeInUserNS), where the container's are the identity.
		s.Linux.UIDMappings, s.Linux.GIDMappings = identity(uidMap), identity(gidMap)
	}
	return uidMap, gidMap, nil
}

// mappedHost tells whether a host uid is one the container's user
// namespace maps (uidMap, else only this user).
func mappedHost(uidMap []specs.LinuxIDMapping) func(uint32) bool {
	return func(h uint32) bool {
		for _, m := range uidMap {
			if h >= m.HostID && uint64(h) < uint64(m.HostID)+uint64(m.Size) {
				return true
			}
		}
		return h == uint32(os.Getuid())
	}
}

// containedCaps are the capabilities a root container may hold without
// reaching the host (the default set of Docker and Podman); the others
// (CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH, CAP_SYS_MODULE, ...) let container root
// remount, open host files by handle, load modules.
var containedCaps = map[string]bool{
	"CAP_CHOWN": true, "CAP_DAC_OVERRIDE": true, "CAP_FSETID": true, "CAP_FOWNER": true, "CAP_MKNOD": true,
	"CAP_NET_RAW": true, "CAP_SETGID": true, "CAP_SETUID": true, "CAP_SETFCAP": true, "CAP_SETPCAP": true,
	"CAP_NET_BIND_SERVICE": true, "CAP_SYS_CHROOT": true, "CAP_KILL": true, "CAP_AUDIT_WRITE": true,
}

// containedMounts are the mount types that take no host path or device
// (bind mounts are checked apart: their source is a host path by design).
var containedMounts = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devpts": true, "mqueue": true, "cgroup": true, "cgroup2": true,
}

// rootReaches is what a root container without a user namespace of its own
// reaches of the host: shared namespaces, bind mounts of /proc, /sys or
// /dev, capabilities beyond the contained set, host devices.
func rootReaches(s *specs.Spec) []string {
	var found []string
	have := map[specs.LinuxNamespaceType]bool{}
	if s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			have[ns.Type] = true
		}
	}
	for _, ns := range rootNamespaces {
		if !have[ns] {
			found = append(found, fmt.Sprintf("without a %s namespace, container root shares the host's", ns))
		}
	}
	for _, m := range s.Mounts {
		if !spec.IsBind(m) {
			continue
		}
		src := m.Source
		if real, err := filepath.EvalSymlinks(src); err == nil {
			src = real
		}
		for _, k := range []string{"/proc", "/sys", "/dev"} {
			if within(src, k) || within(k, src) {
				found = append(found, fmt.Sprintf("the bind mount at %s gives container root the host's %s", m.Destination, src))
				break
			}
		}
	}
	if p := s.Process; p != nil && p.Capabilities != nil {
		seen := map[string]bool{}
		c := p.Capabilities
		for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			for _, cp := range set {
				if !containedCaps[cp] && !seen[cp] {
					seen[cp] = true
					found = append(found, fmt.Sprintf("capability %s reaches the host from a root container", cp))
				}
			}
		}
	}
	if s.Linux != nil {
		for _, d := range s.Linux.Devices {
			found = append(found, fmt.Sprintf("device %s is a host device", d.Path))
		}
		if r := s.Linux.Resources; r != nil {
			for _, d := range r.Devices {
				if d.Allow {
					found = append(found, fmt.Sprintf("linux.resources.devices allows %s access to host devices", d.Access))
				}
			}
		}
	}
	return found
}

// checkHostConfig refuses the parts of a configuration that act on the host
// rather than in the container: a bundle from someone else must not run a
// program on the host, enter the host's namespaces, mount host devices or
// file systems by option, or (as root, where container root is host root)
// hold capabilities or devices that reach the host.
func checkHostConfig(s *specs.Spec, rootless bool) error {
	var found []string
	for _, m := range s.Mounts {
		if !spec.IsBind(m) && !containedMounts[m.Type] {
			found = append(found, fmt.Sprintf("the %q mount at %s can name host paths or devices", m.Type, m.Destination))
		}
	}
	if !rootless && !userNSConfines(s) {
		found = append(found, rootReaches(s)...)
	}
	if h := s.Hooks; h != nil {
		//lint:ignore SA1019 deprecated in the spec, but runtimes still run them
		prestart := h.Prestart
		for _, hs := range []struct {
			name  string
			hooks []specs.Hook
		}{{"prestart", prestart}, {"createRuntime", h.CreateRuntime}, {"createContainer", h.CreateContainer},
			{"startContainer", h.StartContainer}, {"poststart", h.Poststart}, {"poststop", h.Poststop}} {
			for _, hook := range hs.hooks {
				found = append(found, fmt.Sprintf("hooks.%s runs %s on the host", hs.name, hook.Path))
			}
		}
	}
	if s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			if ns.Path != "" {
				found = append(found, fmt.Sprintf("the %s namespace joins %s instead of a new one", ns.Type, ns.Path))
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("its configuration acts on the host: %s; run it with --allow-host-config if you trust it", strings.Join(found, "; "))
}

// rootNamespaces are the namespaces a root container must have of its own:
// without a pid namespace container root can signal host processes (CAP_KILL),
// without a network one it uses the host's network, and so on.
var rootNamespaces = []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace}

// Kernel interfaces a root container must not write (runc spec's defaults):
// /proc/sys/kernel/core_pattern or /sys/kernel/uevent_helper would run a host
// program, /proc/sysrq-trigger reboots the host, a cgroup v1 release_agent
// runs one too.
// They are run's floor, whatever buildContainer's defaults become.
var (
	rootReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	rootMasked   = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
)

// confineRoot adds, for a run as root, what keeps
// container root from writing the host's kernel interfaces, whatever the
// configuration says: the read-only and masked paths of runc's defaults, and
// read-only sysfs and cgroup mounts.
func confineRoot(s *specs.Spec) {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.ReadonlyPaths = addMissing(s.Linux.ReadonlyPaths, rootReadonly)
	s.Linux.MaskedPaths = addMissing(s.Linux.MaskedPaths, rootMasked)
	for i, m := range s.Mounts {
		if m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2" {
			opts := make([]string, 0, len(m.Options)+1)
			for _, o := range m.Options {
				if o != "rw" && o != "ro" {
					opts = append(opts, o)
				}
			}
			s.Mounts[i].Options = append(opts, "ro")
		}
	}
}

func addMissing(list, want []string) []string {
	have := map[string]bool{}
	for _, p := range list {
		have[filepath.Clean(p)] = true
	}
	for _, p := range want {
		if !have[p] {
			list = append(list, p)
		}
	}
	return list
}

// userNSConfines reports whether the configuration has a user namespace of
// its own in which no container id is host root: then container root's
// capabilities are the namespace's, not the host's.
func userNSConfines(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	userNS := false
	for _, ns := range s.Linux.Namespaces {
		userNS = userNS || (ns.Type == specs.UserNamespace && ns.Path == "")
	}
	for _, m := range append(append([]specs.LinuxIDMapping{}, s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
		if m.HostID == 0 {
			return false
		}
	}
	return userNS && len(s.Linux.UIDMappings) > 0
}

// stopper watches for a terminating signal (or ctx) while the run is being set
// up, so that SIGINT/SIGTERM stop it at every stage; other signals are kept
// for the container.
type stopper struct {
	signals <-chan os.Signal
	ctx     context.Context
	stop    syscall.Signal
	queued  []syscall.Signal
}

var errStopped = errors.New("stopped by a signal")

// stopped returns the terminating signal received so far, or 0.
func (st *stopper) stopped() syscall.Signal {
	for st.stop == 0 {
		select {
		case sig, ok := <-st.signals:
			if !ok {
				st.signals = nil
				continue
			}
			if ss, ok := sig.(syscall.Signal); ok {
				if terminating[ss] {
					st.stop = ss
				} else {
					st.queued = append(st.queued, ss)
				}
			}
		default:
			if st.ctx != nil && st.ctx.Err() != nil {
				st.stop = syscall.SIGTERM
			}
			return st.stop
		}
	}
	return st.stop
}

// removePrivate removes the private bundle. Files the container's subordinate
// ids left in the writable layer are removed in a user namespace.
func removePrivate(pb *privateBundle, uidMap, gidMap []specs.LinuxIDMapping) error {
	pb.unlock()
	return removeDir(pb.dir, uidMap, gidMap)
}

func removeDir(dir string, uidMap, gidMap []specs.LinuxIDMapping) error {
	err := rootfs.RemoveAll(dir)
	if err == nil || uidMap == nil {
		return err
	}
	if uerr := removeInUserNS(dir, uidMap, gidMap); uerr != nil {
		return fmt.Errorf("%v; then %w", err, uerr)
	}
	return os.RemoveAll(dir)
}

func defaultStateDir(rootless bool, private string) string {
	if !rootless {
		return "/run/ocitools"
	}
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
		if fi, err := os.Stat(xdg); err == nil && fi.IsDir() && ownedByMe(fi) {
			return filepath.Join(xdg, "ocitools")
		}
	}
	return filepath.Join(private, "state")
}

func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails on Linux
	return "ocitools-" + hex.EncodeToString(b)
}

type container struct {
	runtime, state, id string
	grace              time.Duration
	stderr             io.Writer
	// uidMap and gidMap, when set, are the mappings of a user namespace of
	// ocitools' own in which the runtime runs (rootless with subordinate ids).
	uidMap, gidMap []specs.LinuxIDMapping
}

// identity maps the container ids of m onto themselves, for a runtime that
// runs in a user namespace with mappings m: one range per range of m, since
// the kernel wants each range inside one range of the parent's map.
func identity(m []specs.LinuxIDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, len(m))
	for i, r := range m {
		out[i] = specs.LinuxIDMapping{ContainerID: r.ContainerID, HostID: r.ContainerID, Size: r.Size}
	}
	return out
}

// terminating signals start the grace period that ends with SIGKILL.
var terminating = map[syscall.Signal]bool{
	syscall.SIGINT: true, syscall.SIGTERM: true, syscall.SIGHUP: true, syscall.SIGQUIT: true,
}

// runtimeCall bounds every call to the runtime other than the run itself: a
// runtime that hangs must not hang ocitools.
const runtimeCall = 5 * time.Second

// run starts the runtime on the private bundle and supervises it until it
// exits: signals forwarded to the container, a stop (signal or ctx)
// escalated to SIGKILL after the grace period.
func (c *container) run(ctx context.Context, pb *privateBundle, o Options, st *stopper) (int, error) {
	cmd, tty, err := c.start(pb, o)
	if err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	sv := &supervisor{c: c, cmd: cmd, pending: st.queued, stopSig: st.stop, results: make(chan sent, 64)}
	if len(sv.pending) > 0 {
		sv.retry = time.After(50 * time.Millisecond)
	}
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			return c.exit(err, pb, sv.stopSig)
		case sig := <-o.Signals:
			ss, ok := sig.(syscall.Signal)
			if !ok {
				continue
			}
			if terminating[ss] {
				sv.stop(ss)
			}
			if tty && (ss == syscall.SIGINT || ss == syscall.SIGQUIT) {
				// With a terminal, ^C and ^\ reach the runtime (same process
				// group), which forwards them itself.
				continue
			}
			sv.send(ss)
		case <-ctxDone:
			ctxDone = nil
			sv.stop(syscall.SIGTERM)
			sv.send(syscall.SIGTERM)
		case r := <-sv.results:
			if r.err != nil && r.sig != syscall.SIGKILL {
				sv.pending = append(sv.pending, r.sig)
				if sv.retry == nil {
					sv.retry = time.After(50 * time.Millisecond)
				}
			}
		case <-sv.killAt:
			sv.killAt = nil
			sv.killAll()
			sv.giveUp = time.After(runtimeCall)
		case <-sv.giveUp:
			return 128 + int(syscall.SIGKILL), fmt.Errorf("%s did not exit %v after SIGKILL", c.runtime, runtimeCall)
		case <-sv.retry:
			sv.retry = nil
			again := sv.pending
			sv.pending = nil
			for _, sig := range again {
				sv.send(sig)
			}
		}
	}
}

// start starts the runtime's run of the private bundle (in a user namespace
// of its own when c has id mappings) and says whether standard input is a
// terminal.
func (c *container) start(pb *privateBundle, o Options) (*exec.Cmd, bool, error) {
	cmd := exec.Command(c.runtime, "--root", c.state, "run", "--pid-file", pb.pidFile(), "--bundle", pb.dir, c.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	// Stdin copying (when it is not a file) must not keep Wait waiting forever.
	cmd.WaitDelay = time.Second
	tty := isTerminal(o.Stdin)
	if !tty {
		// Its own process group: a signal meant for us reaches the container
		// once, through "kill", not also through the runtime's own forwarding;
		// and the group (runtime, hooks, container init) can be killed at once.
		// With a terminal it must stay in the foreground group to read it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	start := cmd.Start
	if c.uidMap != nil {
		var err error
		if start, err = runtimeInUserNS(cmd, c.uidMap, c.gidMap); err != nil {
			return nil, false, err
		}
	}
	if err := start(); err != nil {
		return nil, false, fmt.Errorf("starting %s: %w", c.runtime, err)
	}
	return cmd, tty, nil
}

// exit is the run's result once the runtime exited with err: the
// container's status, or the stop signal's when a stop kept it from
// starting.
func (c *container) exit(err error, pb *privateBundle, stopSig syscall.Signal) (int, error) {
	code, werr := exitStatus(err, c.runtime)
	if werr != nil {
		return 0, werr
	}
	if !pb.started() {
		if stopSig != 0 {
			return 128 + int(stopSig), nil
		}
		return code, fmt.Errorf("%s could not start the container (it exited with status %d; its message is above)", c.runtime, code)
	}
	return code, nil
}

// sent is the runtime's answer to one signal sent through "kill".
type sent struct {
	sig syscall.Signal
	err error
}

// supervisor is the state of container.run's loop.
type supervisor struct {
	c       *container
	cmd     *exec.Cmd
	pending []syscall.Signal // signals the runtime could not deliver yet
	retry   <-chan time.Time
	killAt  <-chan time.Time
	giveUp  <-chan time.Time
	stopSig syscall.Signal
	results chan sent
}

// send asks the runtime to signal the container, beside the loop and with a
// deadline, so that a runtime that hangs cannot delay the kill.
func (sv *supervisor) send(sig syscall.Signal) {
	go func() {
		select {
		case sv.results <- sent{sig, sv.c.kill(sig)}:
		default:
		}
	}()
}

// killAll ends the runtime, its hooks and the container: the process group
// (without a terminal), the runtime itself and, through the runtime, the
// container's init.
func (sv *supervisor) killAll() {
	sv.send(syscall.SIGKILL)
	if sv.cmd.SysProcAttr != nil && sv.cmd.SysProcAttr.Setpgid {
		_ = syscall.Kill(-sv.cmd.Process.Pid, syscall.SIGKILL)
	}
	_ = sv.cmd.Process.Kill()
}

// stop records the first stop signal and starts the grace period.
func (sv *supervisor) stop(sig syscall.Signal) {
	if sv.stopSig == 0 {
		sv.stopSig = sig
	}
	if sv.killAt == nil && sv.giveUp == nil {
		sv.killAt = time.After(sv.c.grace)
	}
}

// kill asks the runtime to signal the container's process. It fails while the
// process has not started yet (the caller retries) and after it stopped
// (nothing to do). Before the start, the container's PID 1 is the runtime's
// own init, which a signal would kill instead of the configured process, so
// only SIGKILL goes through then.
func (c *container) kill(sig syscall.Signal) error {
	if sig != syscall.SIGKILL {
		out, err := c.call("state", c.id)
		if err != nil {
			return err
		}
		var st specs.State
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("%s state %s: %w", c.runtime, c.id, err)
		}
		if st.Status != specs.StateRunning {
			return fmt.Errorf("container %s is %s, not running", c.id, st.Status)
		}
	}
	_, err := c.call("kill", c.id, strconv.Itoa(int(sig)))
	return err
}

// call runs the runtime with a deadline and returns its standard output.
func (c *container) call(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runtimeCall)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.runtime, append([]string{"--root", c.state}, args...)...)
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s %s: no answer within %v", c.runtime, strings.Join(args, " "), runtimeCall)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", c.runtime, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// delete removes the runtime's state of the container, running or not.
func (c *container) delete() error {
	_, err := c.call("delete", "--force", c.id)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(filepath.Join(c.state, c.id)); errors.Is(serr, os.ErrNotExist) {
		return nil // runc run deletes what it created; nothing is left
	}
	return err
}

func exitStatus(err error, runtime string) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("waiting for %s: %w", runtime, err)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
