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

// containerd is a containerd daemon the test started on a private socket,
// with its root, state and config in one temporary directory, so that it
// touches nothing of the host's (or docker's) containerd.
type containerd struct {
	dir, sock string
	cmd       *exec.Cmd
	log       *os.File
	done      chan error
}

// startContainerd starts Debian's containerd (1.6) without its CRI plugin
// (no CNI here) and stops it when the test ends.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	requireTools(t, "containerd", "ctr", "containerd-shim-runc-v2")
	// Short: a unix socket path has a 108-byte limit, the shims' live below.
	dir, err := os.MkdirTemp("", "ctd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, sock: filepath.Join(dir, "sock"), done: make(chan error, 1)}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	cfgFile := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.log, err = os.Create(filepath.Join(dir, "containerd.log")); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("containerd", "--config", cfgFile, "--address", c.sock)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, err := c.ctr(10*time.Second, "version"); err == nil {
			return c
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("containerd exited while starting: %v\n%s", err, tail(c.log.Name()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 60 s\n%s", c.sock, tail(c.log.Name()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ctr runs ctr against this daemon, in a namespace of the tests', with a
// deadline.
func (c *containerd) ctr(timeout time.Duration, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "--namespace", "ocitools-e2e"}, args...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("ctr %s: no answer within %s", strings.Join(args, " "), timeout)
	}
	return o.String(), e.String(), err
}

// stop ends the daemon (TERM, then KILL), unmounts what it left and removes
// its directory.
func (c *containerd) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Errorf("containerd did not stop within 30 s of SIGTERM; killing it")
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	c.log.Close()
	if t.Failed() {
		t.Logf("containerd log:\n%s", tail(c.log.Name()))
	}
	if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], c.dir+"/") {
				_ = syscall.Unmount(lines[i], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("removing containerd's directory: %v", err)
	}
}

func tail(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// containerd as a consumer, for gzip, zstd and none: ctr images import of
// toOCIArchive's file, ctr run of it, and ctr images pull --plain-http of the
// image ocitools pushed (with its SBOM referrer beside it) to the test
// registry, run too.
func TestImageConsumersContainerd(t *testing.T) {
	imgs := consumerImagesFor(t)
	c := startContainerd(t)
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	for _, comp := range []string{"gzip", "zstd", "none"} {
		img := imgs[comp]
		t.Run(comp, func(t *testing.T) {
			out, errOut, err := c.ctr(3*time.Minute, "images", "import", img.ociArchive)
			if err != nil {
				t.Fatalf("ctr images import %s: %v\n%s%s", img.ociArchive, err, out, errOut)
			}
			name := "docker.io/" + img.ref()
			if !strings.Contains(out, name) {
				t.Errorf("ctr images import printed %q, want the image %s", out, name)
			}
			out, errOut, err = c.ctr(3*time.Minute, "run", "--rm", name, "import-"+comp)
			if err != nil {
				t.Fatalf("ctr run %s: %v\n%s%s", name, err, out, errOut)
			}
			wantRan(t, "ctr run of the imported archive", out)

			pushed := r.addr + "/containerd/consumers:" + comp
			push(t, env, img.layout, pushed)
			out, errOut, err = c.ctr(3*time.Minute, "images", "pull", "--plain-http", pushed)
			if err != nil {
				t.Fatalf("ctr images pull --plain-http %s: %v\n%s%s", pushed, err, out, errOut)
			}
			out, errOut, err = c.ctr(3*time.Minute, "run", "--rm", pushed, "pull-"+comp)
			if err != nil {
				t.Fatalf("ctr run %s: %v\n%s%s", pushed, err, out, errOut)
			}
			wantRan(t, "ctr run of the pulled image", out)
		})
	}
}
