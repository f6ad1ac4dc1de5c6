package e2e

import (
	"os/exec"
	"path/filepath"
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
	*daemon
	sock string
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
	// containerd's sockets live under exec-root.
	dir := newDaemonDir(t, "dkr-")
	d := &dockerd{sock: filepath.Join(dir, "sock")}
	ready := func() error {
		_, _, err := d.run(10*time.Second, "version", "--format", "{{.Server.Version}}")
		return err
	}
	d.daemon = startDaemon(t, dir, ready, "dockerd",
		"--iptables=false", "--ip-masq=false", "--bridge=none",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+d.sock)
	return d
}

// run runs the docker client against this daemon with a deadline.
func (d *dockerd) run(timeout time.Duration, args ...string) (string, string, error) {
	return runClient(timeout, dockerClient, append([]string{"-H", "unix://" + d.sock}, args...)...)
}
