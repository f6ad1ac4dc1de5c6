package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nonRootExpr builds examples/nonroot-image.nix, the worked example of
// docs/buildImage.md: a service running as uid 1000 with its own data dir.
func nonRootExpr() string {
	return fmt.Sprintf("import %s/examples/nonroot-image.nix { ocitools = %s; busyboxDir = %s; }",
		repoRoot, filepath.Dir(filepath.Dir(ocitoolsBin)), busyboxDir)
}

// wantNonRootRan checks what the example's service prints: it ran as app
// without any --user, wrote /tmp and its data dir, read the CA bundle, and
// did not see the host's name.
func wantNonRootRan(t *testing.T, who, out string) {
	t.Helper()
	for _, want := range []string{
		"user=app uid=1000 gid=1000 home=/var/lib/app\n",
		"tmp=writable\n", "data=writable\n",
		"-----BEGIN CERTIFICATE----- (example bundle)\n",
		"drwxrwxrwt root root\n", "drwxr-x--- app app\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", who, want, out)
		}
	}
	host := hostName(t)
	if m := regexp.MustCompile(`hostname=(\S*)`).FindStringSubmatch(out); m == nil || m[1] == host {
		t.Errorf("%s: the container's hostname is the host's (%s):\n%s", who, host, out)
	}
}

func hostName(t *testing.T) string {
	out, err := exec.Command("hostname").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// The root layer as tar lists it: owners and modes in the headers, real
// files from copyToRoot.
func TestImageNonRootLayer(t *testing.T) {
	out := nixBuildImage(t, nonRootExpr())
	img := readImage(t, out)
	last := img.manifest.Layers[len(img.manifest.Layers)-1]
	listing := mustOutput(t, exec.Command("tar", "-tvzf", img.blob(last.Digest.Encoded())))
	for _, want := range []string{
		`drwxrwxrwt 0/0 +0 [^\n]* tmp/\n`,
		`drwxr-x--- 1000/1000 +0 [^\n]* var/lib/app/\n`,
		`-r-xr-xr-x 0/0 +[0-9]+ [^\n]* bin/service\n`,
		`-rw------- 0/0 +[0-9]+ [^\n]* etc/shadow\n`,
		`-rw-r--r-- 0/0 +[0-9]+ [^\n]* etc/passwd\n`,
		`lrwxrwxrwx 0/0 +0 [^\n]* etc/ssl/certs/ca-certificates.crt -> /nix/store/[^\n]*-cacert-example/etc/ssl/certs/ca-bundle.crt\n`,
		`lrwxrwxrwx 0/0 +0 [^\n]* usr/bin/env -> /nix/store/[^\n]*-busybox/bin/env\n`,
	} {
		if !regexp.MustCompile(want).MatchString(listing) {
			t.Errorf("the root layer lacks %s:\n%s", want, listing)
		}
	}
}

// The service runs as its user under ocitools run (root and rootless),
// podman (the layout, no --user) and docker (the archive).
func TestImageNonRootRuns(t *testing.T) {
	out := nixBuildImage(t, nonRootExpr())
	u := unprivUser(t)
	ensureSubIDs(t, u)
	for _, r := range runners(t) {
		t.Run("ocitools run as "+r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", out+":latest"))
			if res.code != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			wantNonRootRan(t, "ocitools run", res.stdout)
		})
	}
	t.Run("podman", func(t *testing.T) {
		podman := podmanCmd(t)
		stdout, stderr, err := podman(append(podmanRun, "oci:"+out+":latest")...)
		if err != nil {
			t.Fatalf("podman run: %v\n%s%s", err, stdout, stderr)
		}
		wantNonRootRan(t, "podman run", stdout)
	})
	t.Run("docker", func(t *testing.T) {
		archive := nixBuild(t, "("+nonRootExpr()+").archive")
		d := startDockerd(t)
		if stdout, stderr, err := d.run(3*time.Minute, "load", "--input", archive); err != nil {
			t.Fatalf("docker load: %v\n%s%s", err, stdout, stderr)
		}
		stdout, stderr, err := d.run(3*time.Minute, "run", "--rm", "--network", "none", "ocitools-nonroot:latest")
		if err != nil {
			t.Fatalf("docker run: %v\n%s%s", err, stdout, stderr)
		}
		wantNonRootRan(t, "docker run", stdout)
	})
}
