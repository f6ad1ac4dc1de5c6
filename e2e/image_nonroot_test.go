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
func wantNonRootRan(t *testing.T, who, out string, owners bool) {
	t.Helper()
	wants := []string{
		"user=app uid=1000 gid=1000 home=/var/lib/app\n",
		"tmp=writable\n",
		"-----BEGIN CERTIFICATE----- (example bundle)\n",
		"drwxrwxrwt root root\n",
	}
	if owners {
		wants = append(wants, "data=writable\n", "drwxr-x--- app app\n")
	}
	for _, want := range wants {
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

// users without config.User: the image runs as root and still has them.
func TestImageUsersWithoutConfigUser(t *testing.T) {
	out := nixBuildImage(t, `ociTools.buildImage {
	  name = "u"; tag = "t";
	  users = { app = { uid = 1000; }; };
	  perms = [ { glob = "/etc/pass*"; gid = "app"; } ];
	  config.Entrypoint = [ "${busybox}/bin/sh" "-c" "${busybox}/bin/cat /etc/passwd" ];
	}`)
	res := runCmd(t, exec.Command(ocitoolsBin, "run", out+":t"))
	if res.code != 0 || !strings.Contains(res.stdout, "app:x:1000:1000::/home/app:/bin/sh\n") {
		t.Errorf("exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
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
			// Rootless, the image is unpacked in a user namespace with the
			// caller's subordinate ids, so the data directory is app's.
			wantNonRootRan(t, "ocitools run", res.stdout, true)
		})
	}
	t.Run("podman", func(t *testing.T) {
		podman := podmanCmd(t)
		stdout, stderr, err := podman(append(podmanRun, "oci:"+out+":latest")...)
		if err != nil {
			t.Fatalf("podman run: %v\n%s%s", err, stdout, stderr)
		}
		wantNonRootRan(t, "podman run", stdout, true)
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
		wantNonRootRan(t, "docker run", stdout, true)
	})
}

// Docker's own config fields (Healthcheck, ...) are in the config blob:
// docker reads them from the archive; podman reads them once the image is in
// Docker's format (the archive), not from an OCI layout (libimage takes the
// health check from Docker configs only), which docs/buildImage.md says.
func TestImageDockerConfigFields(t *testing.T) {
	expr := `ociTools.buildImage {
	  name = "ocitools-e2e/health"; tag = "t";
	  config = {
	    Entrypoint = [ "${busybox}/bin/sh" "-c" "echo up" ];
	    Healthcheck = { Test = [ "CMD" "${busybox}/bin/true" ]; Interval = 30000000000; Retries = 3; };
	    StopTimeout = 7;
	  };
	}`
	out := nixBuildImage(t, expr)
	archive := nixBuild(t, "("+expr+").archive")
	t.Run("docker", func(t *testing.T) {
		d := startDockerd(t)
		if stdout, stderr, err := d.run(3*time.Minute, "load", "--input", archive); err != nil {
			t.Fatalf("docker load: %v\n%s%s", err, stdout, stderr)
		}
		stdout, stderr, err := d.run(time.Minute, "image", "inspect", "--format", "{{json .Config.Healthcheck}} {{.Config.StopTimeout}}", "ocitools-e2e/health:t")
		if err != nil || !strings.Contains(stdout, `"Interval":30000000000,"Retries":3`) || !strings.Contains(stdout, "-busybox/bin/true") {
			t.Errorf("docker image inspect: %v\n%s%s", err, stdout, stderr)
		}
	})
	t.Run("podman", func(t *testing.T) {
		podman := podmanCmd(t)
		health := func(ref string) string {
			stdout, stderr, err := podman("image", "inspect", "--format", "{{json .HealthCheck}}", ref)
			if err != nil {
				t.Fatalf("podman image inspect %s: %v\n%s%s", ref, err, stdout, stderr)
			}
			return strings.TrimSpace(stdout)
		}
		// In Docker's format (skopeo's docker-archive:), podman reads it.
		dockArch := filepath.Join(t.TempDir(), "skopeo.tar")
		mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "oci:"+out+":t", "docker-archive:"+dockArch+":ocitools-e2e/health:docker")
		if stdout, stderr, err := podman("load", "--input", dockArch); err != nil {
			t.Fatalf("podman load: %v\n%s%s", err, stdout, stderr)
		}
		if got := health("ocitools-e2e/health:docker"); !strings.Contains(got, `"Interval":30000000000,"Retries":3`) || !strings.Contains(got, "-busybox/bin/true") {
			t.Errorf("podman, Docker's format: HealthCheck %s", got)
		}
		// As an OCI image (the layout, or the archive podman loads as one),
		// podman 4.3 leaves it out; if this changes, update docs/buildImage.md.
		if stdout, stderr, err := podman("load", "--input", archive); err != nil {
			t.Fatalf("podman load: %v\n%s%s", err, stdout, stderr)
		}
		if got := health("ocitools-e2e/health:t"); got != "null" {
			t.Errorf("podman now reads HealthCheck from an OCI image (%s): update docs/buildImage.md", got)
		}
	})
}

// buildContainer's users and groups: /etc/passwd and friends in the rootfs,
// the home a tmpfs owned by the user (the rootfs is the store's, root's).
func TestBuildContainerUsers(t *testing.T) {
	bundle := nixBuild(t, `ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" "id; echo $HOME; ls -ldL /var/lib/app | cut -c1-10; echo x > /var/lib/app/f && echo home=writable; grep -c '!' /etc/shadow" ];
	  env = { PATH = "${busybox}/bin"; HOME = "/var/lib/app"; };
	  user = "1000:1000";
	  users = [ { name = "app"; uid = 1000; home = "/var/lib/app"; groups = [ "data" ]; } ];
	  groups = [ { name = "data"; gid = 2000; } ];
	}`)
	checkBundle(t, bundle)
	u := unprivUser(t)
	ensureSubIDs(t, u)
	want := "uid=1000(app) gid=1000(app)\n/var/lib/app\ndrwxr-xr-x\nhome=writable\n3\n"
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", bundle))
			if res.code != 0 || res.stdout != want {
				t.Errorf("exit %d, stdout %q, want %q\nstderr: %s", res.code, res.stdout, want, res.stderr)
			}
		})
	}
	verifyStorePath(t, bundle)
	log := nixBuildFail(t, `ociTools.buildContainer { args = [ "${busybox}/bin/sh" ]; users = [ { name = "admin"; uid = 0; } ]; }`)
	if want := "buildContainer: `users` element 0 (admin): uid 0 is root's"; !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}
