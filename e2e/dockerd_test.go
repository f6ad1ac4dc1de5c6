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

// dockerClient is Debian's docker.io client, which matches its daemon (20.10);
// another docker earlier on PATH (a newer static client) is not used.
const dockerClient = "/usr/bin/docker"

// dockerd is a Docker daemon the test started, with everything it keeps
// (data-root, exec-root, socket, pid file, its own containerd) in one
// temporary directory, so that it touches nothing of the host's docker.
type dockerd struct {
	dir  string
	sock string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// startDockerd starts a private dockerd and stops it when the test ends.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	requireE2E(t)
	for _, tool := range []string{"dockerd", dockerClient} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian package docker.io; the README's test command installs it): %v", tool, err)
		}
	}
	// Short paths: a unix socket path has a 108-byte limit, and containerd's
	// sockets live under exec-root.
	dir, err := os.MkdirTemp("", "dkr-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{dir: dir, sock: filepath.Join(dir, "sock"), done: make(chan error, 1)}
	d.log, err = os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command("dockerd",
		"--iptables=false", "--ip-masq=false", "--bridge=none",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+d.sock)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// Its own process group: a signal to the test's group does not reach it,
	// and stop can reach its containerd too.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting dockerd: %v", err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, err := d.run(10*time.Second, "version", "--format", "{{.Server.Version}}"); err == nil {
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("dockerd exited while starting: %v\n%s", err, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not answer on %s within 60 s\n%s", d.sock, d.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run runs the docker client against this daemon with a deadline.
func (d *dockerd) run(timeout time.Duration, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerClient, append([]string{"-H", "unix://" + d.sock}, args...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("docker %s: no answer within %s", strings.Join(args, " "), timeout)
	}
	return o.String(), e.String(), err
}

// stop ends the daemon (TERM, then KILL after a grace period) and removes
// everything it kept.
func (d *dockerd) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Errorf("dockerd did not stop within 30 s of SIGTERM; killing it\n%s", d.logTail())
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	// Its containerd is in the same process group; anything left is killed.
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.log.Close()
	if t.Failed() {
		t.Logf("dockerd log:\n%s", d.logTail())
	}
	// Mounts dockerd left (overlay2 layers of a killed daemon) would keep the
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
		t.Errorf("removing dockerd's directory: %v", err)
	}
}

func (d *dockerd) logTail() string {
	b, err := os.ReadFile(d.log.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
