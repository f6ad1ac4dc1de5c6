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
	"syscall"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	// Signals delivers the signals to forward to the container (the caller
	// subscribes with signal.Notify). May be nil.
	Signals <-chan os.Signal

	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run runs the bundle and returns the container's exit status (128+N when it was
// killed by signal N). err is set when the container could not be started; the
// runtime's own errors reach Stderr and its exit status is returned.
func Run(ctx context.Context, o Options) (int, error) {
	bundle, s, err := loadBundle(o.Bundle)
	if err != nil {
		return 0, err
	}
	runtime, err := FindRuntime(o.Runtime)
	if err != nil {
		return 0, err
	}
	rootless := os.Geteuid() != 0
	var uidMap, gidMap []specs.LinuxIDMapping // set when removal may need them
	if rootless {
		if err := checkUserNamespaces("/proc/sys"); err != nil {
			return 0, err
		}
		u := s.Process.User
		if len(u.AdditionalGids) > 0 && o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "ocitools run: warning: process.user.additionalGids %v are left out: runc cannot set supplementary groups rootless\n", u.AdditionalGids)
		}
		needSub := u.UID != 0 || u.GID != 0
		if err := ToRootless(s, rootlessIDs(needSub, "/etc")); err != nil {
			return 0, fmt.Errorf("bundle %s cannot run as uid %d: %w", o.Bundle, os.Getuid(), err)
		}
		if len(s.Linux.UIDMappings) > 1 {
			uidMap, gidMap = s.Linux.UIDMappings, s.Linux.GIDMappings
		}
	}
	if s.Process.Terminal {
		if o.NoTerminal {
			s.Process.Terminal = false
		} else if !isTerminal(o.Stdin) {
			return 0, fmt.Errorf("bundle %s sets process.terminal, but standard input is not a terminal: run it from one, or pass --no-terminal", o.Bundle)
		}
	}
	tmp, err := upperParent(o.TempDir)
	if err != nil {
		return 0, err
	}
	pb, err := newPrivateBundle(tmp)
	if err != nil {
		return 0, err
	}
	defer func() { _ = removeTree(pb.dir) }()
	args := o.Args
	if len(args) == 0 && o.ProgramArgs != nil && len(s.Process.Args) > 0 {
		args = append([]string{s.Process.Args[0]}, o.ProgramArgs...)
	}
	if err := pb.prepare(s, bundle, args); err != nil {
		return 0, err
	}
	if !rootless {
		if err := pb.shareWithUserNS(s); err != nil {
			return 0, err
		}
	} else if !s.Root.Readonly {
		if err := pb.mirrorDirs(); err != nil {
			return 0, err
		}
	}
	state := o.StateDir
	if state == "" {
		state = defaultStateDir(rootless, pb.dir)
	}
	c := &container{
		runtime: runtime,
		state:   state,
		id:      newID(),
		grace:   o.Grace,
		stderr:  o.Stderr,
	}
	if c.grace <= 0 {
		c.grace = DefaultGrace
	}
	if c.stderr == nil {
		c.stderr = io.Discard
	}
	code, err := c.run(ctx, pb.dir, o)
	if derr := c.delete(); derr != nil && err == nil {
		fmt.Fprintf(c.stderr, "ocitools run: warning: %v\n", derr)
	}
	if rerr := removePrivate(pb.dir, uidMap, gidMap); rerr != nil {
		fmt.Fprintf(c.stderr, "ocitools run: warning: removing the private bundle: %v\n", rerr)
	}
	return code, err
}

// removePrivate removes the private bundle. Files the container's subordinate
// ids left in the writable layer are removed in a user namespace.
func removePrivate(dir string, uidMap, gidMap []specs.LinuxIDMapping) error {
	err := removeTree(dir)
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
}

// terminating signals start the grace period that ends with SIGKILL.
var terminating = map[syscall.Signal]bool{
	syscall.SIGINT: true, syscall.SIGTERM: true, syscall.SIGHUP: true, syscall.SIGQUIT: true,
}

func (c *container) run(ctx context.Context, bundleDir string, o Options) (int, error) {
	cmd := exec.Command(c.runtime, "--root", c.state, "run", "--bundle", bundleDir, c.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	// Stdin copying (when it is not a file) must not keep Wait waiting forever.
	cmd.WaitDelay = time.Second
	tty := isTerminal(o.Stdin)
	if !tty {
		// Its own process group: a signal meant for us reaches the container
		// once, through "kill", not also through the runtime's own forwarding.
		// With a terminal it must stay in the foreground group to read it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.runtime, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var (
		pending  []syscall.Signal // signals the runtime could not deliver yet
		retry    <-chan time.Time
		killAt   <-chan time.Time
		ctxDone  = ctx.Done()
		signals  = o.Signals
		escalate = func() {
			if killAt == nil {
				killAt = time.After(c.grace)
			}
		}
	)
	// The grace period starts when a terminating signal reaches the running
	// process, so that a slow start does not eat into it.
	send := func(sig syscall.Signal) {
		if err := c.kill(sig); err != nil {
			pending = append(pending, sig)
			if retry == nil {
				retry = time.After(50 * time.Millisecond)
			}
			return
		}
		if terminating[sig] {
			escalate()
		}
	}
	for {
		select {
		case err := <-done:
			return exitStatus(err, c.runtime)
		case sig := <-signals:
			ss, ok := sig.(syscall.Signal)
			if !ok {
				continue
			}
			if tty && (ss == syscall.SIGINT || ss == syscall.SIGQUIT) {
				// With a terminal, ^C and ^\ reach the runtime (same process
				// group), which forwards them itself.
				escalate()
				continue
			}
			send(ss)
		case <-ctxDone:
			ctxDone = nil
			send(syscall.SIGTERM)
		case <-killAt:
			send(syscall.SIGKILL)
		case <-retry:
			retry = nil
			again := pending
			pending = nil
			for _, sig := range again {
				send(sig)
			}
		}
	}
}

// kill asks the runtime to signal the container's process. It fails while the
// process has not started yet (the caller retries) and after it stopped
// (nothing to do). Before the start, the container's PID 1 is the runtime's
// own init, which a signal would kill instead of the configured process, so
// only SIGKILL goes through then.
func (c *container) kill(sig syscall.Signal) error {
	if sig != syscall.SIGKILL {
		out, err := exec.Command(c.runtime, "--root", c.state, "state", c.id).Output()
		if err != nil {
			return fmt.Errorf("%s state %s: %w", c.runtime, c.id, err)
		}
		var st specs.State
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("%s state %s: %w", c.runtime, c.id, err)
		}
		if st.Status != specs.StateRunning {
			return fmt.Errorf("container %s is %s, not running", c.id, st.Status)
		}
	}
	out, err := exec.Command(c.runtime, "--root", c.state, "kill", c.id, strconv.Itoa(int(sig))).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s kill %s %d: %v: %s", c.runtime, c.id, sig, err, bytes.TrimSpace(out))
	}
	return nil
}

// delete removes the runtime's state of the container, running or not.
func (c *container) delete() error {
	out, err := exec.Command(c.runtime, "--root", c.state, "delete", "--force", c.id).CombinedOutput()
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(filepath.Join(c.state, c.id)); errors.Is(serr, os.ErrNotExist) {
		return nil // runc run deletes what it created; nothing is left
	}
	return fmt.Errorf("%s delete --force %s: %v: %s", c.runtime, c.id, err, bytes.TrimSpace(out))
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
