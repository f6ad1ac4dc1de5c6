package run

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A rootless container whose user comes from the caller's subordinate ids can
// leave files in the writable layer that the caller does not own and cannot
// remove. They are removed by ocitools itself, re-executed in a user namespace
// with the container's mappings, where the caller is root over them. Two stages,
// because capabilities in a new user namespace survive execve only for a
// process that is already root there, that is, after newuidmap has run.
const (
	helperWait   = "__ocitools-run-remove-wait"
	helperRemove = "__ocitools-run-remove"
	// helperArgv0 is the argv[0] removeInUserNS gives: a user typing the
	// stage's name (or a bundle's bin/NAME passing it on) does not.
	helperArgv0 = "ocitools-run-remove"
	// helperRuntime starts the runtime in a user namespace of ocitools' own
	// (see runtimeInUserNS), under argv[0] helperRuntimeArgv0.
	helperRuntime      = "__ocitools-run-runtime"
	helperRuntimeArgv0 = "ocitools-run-runtime"
)

// Helper runs a removal stage when args (os.Args) ask for one the internal
// way: main calls it (after the multicall check, so that a bundle's bin/NAME
// passes every argument to its container) and exits with code when handled is
// true. A stage is refused unless argv[0] is helperArgv0, the process is in a
// user namespace of its own and the directory is a private bundle's, so that
// it never removes a host directory it is pointed at.
func Helper(args []string) (handled bool, code int) {
	if len(args) >= 3 && args[1] == helperRuntime {
		return true, runtimeStage(args)
	}
	if len(args) != 3 || (args[1] != helperWait && args[1] != helperRemove) {
		return false, 0
	}
	dir := args[2]
	if args[0] != helperArgv0 || initialUserNS() || !strings.HasPrefix(filepath.Base(dir), privatePrefix) {
		fmt.Fprintf(os.Stderr, "%s is internal to ocitools run and refuses to run when invoked directly\n", args[1])
		return true, 2
	}
	if args[1] == helperWait {
		// The parent writes one byte once the mappings are in place.
		var b [1]byte
		if n, err := os.Stdin.Read(b[:]); n != 1 {
			fmt.Fprintf(os.Stderr, "waiting for the user namespace mappings: %v\n", err)
			return true, 1
		}
		err := syscall.Exec("/proc/self/exe", []string{helperArgv0, helperRemove, dir}, os.Environ())
		fmt.Fprintf(os.Stderr, "re-executing in the user namespace: %v\n", err)
		return true, 1
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return true, 1
	}
	return true, 0
}

// runtimeStage waits (on fd 3) until the parent has written this process's
// user namespace mappings, then execs the runtime, args[2:]. Being root in the
// namespace by then, the runtime gets its full capabilities there at execve.
func runtimeStage(args []string) int {
	if args[0] != helperRuntimeArgv0 || initialUserNS() {
		fmt.Fprintf(os.Stderr, "%s is internal to ocitools run and refuses to run when invoked directly\n", args[1])
		return 2
	}
	ready := os.NewFile(3, "ready")
	var b [1]byte
	if n, err := ready.Read(b[:]); n != 1 {
		fmt.Fprintf(os.Stderr, "waiting for the user namespace mappings: %v\n", err)
		return 1
	}
	ready.Close()
	err := syscall.Exec(args[2], args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "starting %s in the user namespace: %v\n", args[2], err)
	return 1
}

// runtimeInUserNS makes cmd (a runtime command line) start in a new user
// namespace that maps the caller to root and its subordinate ids after it, as
// rootless container ids are mapped. The runtime is then root there: it sets
// the container process's supplementary groups (an unprivileged runtime
// cannot, so the process would keep the caller's, its own gid among them as
// container gid 0) and writes the container's id mappings itself. start
// returns the started command, mapped and released.
func runtimeInUserNS(cmd *exec.Cmd, uidMap, gidMap []specs.LinuxIDMapping) (start func() error, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start the runtime in a user namespace: %w", err)
	}
	cmd.Args = append([]string{helperRuntimeArgv0, helperRuntime, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = self
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{r}
	return func() error {
		defer w.Close()
		err := cmd.Start()
		r.Close()
		if err != nil {
			return err
		}
		if err := writeMappings(cmd.Process.Pid, uidMap, gidMap); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return err
		}
		_, err = w.Write([]byte{1})
		return err
	}, nil
}

// writeMappings sets the user namespace mappings of pid with newuidmap and
// newgidmap.
func writeMappings(pid int, uidMap, gidMap []specs.LinuxIDMapping) error {
	for _, m := range []struct {
		tool string
		ids  []specs.LinuxIDMapping
	}{{"newuidmap", uidMap}, {"newgidmap", gidMap}} {
		args := []string{strconv.Itoa(pid)}
		for _, r := range m.ids {
			args = append(args, strconv.FormatUint(uint64(r.ContainerID), 10), strconv.FormatUint(uint64(r.HostID), 10), strconv.FormatUint(uint64(r.Size), 10))
		}
		ctx, cancel := context.WithTimeout(context.Background(), runtimeCall)
		o, err := exec.CommandContext(ctx, m.tool, args...).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("%s %v: %v: %s", m.tool, args, err, bytes.TrimSpace(o))
		}
	}
	return nil
}

// initialUserNS reports whether this process is in the host's user namespace,
// whose uid_map maps every id to itself; a new one has no mapping yet or the
// one newuidmap wrote.
func initialUserNS() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return true
	}
	f := strings.Fields(string(data))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

// removeWait bounds the removal helper: a writable layer of a few GiB is
// removed well within it, and a helper that hangs (a stuck file system) must
// not hang ocitools. A variable for tests.
var removeWait = 2 * time.Minute

// These are variables so that tests can stand in for a helper that hangs.
var (
	selfExecutable = os.Executable
	mapIDs         = writeMappings
)

// removeInUserNS removes dir inside a new user namespace with the given
// mappings, set with newuidmap and newgidmap.
func removeInUserNS(dir string, uidMap, gidMap []specs.LinuxIDMapping) error {
	self, err := selfExecutable()
	if err != nil {
		return fmt.Errorf("finding this program to remove %s in a user namespace: %w", dir, err)
	}
	cmd := exec.Command(self, helperWait, dir)
	cmd.Args[0] = helperArgv0
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Output through a pipe would make Wait wait for whatever inherited it.
	cmd.WaitDelay = time.Second
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the removal in a user namespace: %w", err)
	}
	deadline := time.Now().Add(removeWait)
	if err := mapIDs(cmd.Process.Pid, uidMap, gidMap); err != nil {
		w.Close()
		_ = waitUntil(cmd, deadline)
		return err
	}
	_, _ = w.Write([]byte{1})
	w.Close()
	if err := waitUntil(cmd, deadline); err != nil {
		return fmt.Errorf("removing %s in a user namespace: %v: %s", dir, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// waitUntil waits for cmd until deadline, then kills it and reaps it.
func waitUntil(cmd *exec.Cmd, deadline time.Time) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		_ = cmd.Process.Kill()
		// A process in uninterruptible sleep dies only when its I/O ends: do
		// not wait for that without bound either.
		select {
		case <-done:
		case <-time.After(runtimeCall):
		}
		return fmt.Errorf("no exit within %v: killed", removeWait)
	}
}
