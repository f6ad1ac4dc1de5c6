package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containerd is a containerd daemon the test started on a private socket,
// with its root, state and config in one temporary directory, so that it
// touches nothing of the host's (or docker's) containerd.
type containerd struct {
	*daemon
	sock string
}

// startContainerd starts Debian's containerd (1.6) without its CRI plugin
// (no CNI here) and stops it when the test ends.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	requireTools(t, "containerd", "ctr", "containerd-shim-runc-v2")
	dir := newDaemonDir(t, "ctd-")
	c := &containerd{sock: filepath.Join(dir, "sock")}
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
	ready := func() error {
		_, _, err := c.ctr(10*time.Second, "version")
		return err
	}
	c.daemon = startDaemon(t, dir, ready, "containerd", "--config", cfgFile, "--address", c.sock)
	return c
}

// ctr runs ctr against this daemon, in a namespace of the tests', with a
// deadline.
func (c *containerd) ctr(timeout time.Duration, args ...string) (string, string, error) {
	return runClient(timeout, "ctr", append([]string{"--address", c.sock, "--namespace", "ocitools-e2e"}, args...)...)
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
