package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a server process a test started (dockerd, containerd) with
// everything it keeps in one temporary directory, so that it touches nothing
// of the host's. It runs in its own process group: a signal to the test's
// group does not reach it, and stop reaches its children (shims) too.
type daemon struct {
	name string
	dir  string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// newDaemonDir makes the daemon's directory; short (prefix under /tmp), since
// a unix socket path has a 108-byte limit and the daemons put sockets below.
func newDaemonDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// startDaemon starts name args... logging to DIR/name.log, waits (60 s at
// most) until ready answers, and stops it when the test ends.
func startDaemon(t *testing.T, dir string, ready func() error, name string, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, dir: dir, done: make(chan error, 1)}
	var err error
	if d.log, err = os.Create(filepath.Join(dir, name+".log")); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(name, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready() == nil {
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("%s exited while starting: %v\n%s", name, err, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 60 s\n%s", name, d.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends the daemon (TERM, then KILL after a grace period), unmounts what
// it left below its directory and removes the directory.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of SIGTERM; killing it\n%s", d.name, d.logTail())
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	// What it started is in the same process group; anything left is killed.
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.log.Close()
	if t.Failed() {
		t.Logf("%s log:\n%s", d.name, d.logTail())
	}
	// Mounts a killed daemon left (overlay layers, rootfs) would keep the
	// directory from being removed.
	if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], d.dir+"/") {
				_ = syscall.Unmount(lines[i], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("removing %s's directory: %v", d.name, err)
	}
}

func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// runClient runs a daemon's client with a deadline.
func runClient(timeout time.Duration, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: no answer within %s", name, strings.Join(args, " "), timeout)
	}
	return o.String(), e.String(), err
}
