package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// registryNix is an expression with buildImage results for two arches, each
// with nix/registry.nix's copy programs, and their buildIndex.
func registryNix(host string) string {
	return fmt.Sprintf(`
let
  reg = import %s/nix/registry.nix { ocitools = %s; };
  img = arch: reg.withCopyPrograms (ociTools.buildImage {
    name = "%s/nix/app";
    tag = "t-${arch}";
    inherit arch;
    config.Cmd = [ "${busybox}/bin/sh" "-c" "echo hello from nix ${arch}" ];
  });
in {
  amd = img "amd64";
  arm = img "arm64";
  index = reg.buildIndex { name = "%s/nix/multi"; tag = "both"; images = [ (img "amd64") (img "arm64") ]; };
}`, repoRoot, filepath.Dir(filepath.Dir(ocitoolsBin)), host, host)
}

func nixAttr(t *testing.T, expr, attr string) string {
	t.Helper()
	out, log, err := nixBuildResult(t, expr, "-A", attr)
	if err != nil {
		t.Fatalf("nix-build -A %s: %v\n%s", attr, err, log)
	}
	return out
}

// TestRegistryNix: buildImage results pushed by their copy programs (as nix
// run starts them: bin/NAME), buildIndex of two arches pushed and read back.
func TestRegistryNix(t *testing.T) {
	requireTools(t, "skopeo", "podman", "dockerd", "docker")
	r := startRegistry(t, registryOpts{})
	expr := registryNix(r.addr)
	env := isolatedEnv(t)
	run := func(prog string, args ...string) string {
		t.Helper()
		cmd := exec.Command(prog, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
		}
		return string(out)
	}

	// copyToRegistry: to the image's own name:tag. Three manifest PUTs: the
	// image, its SBOM referrer and the sha256-<hex> index this registry
	// needs for it (no referrers API).
	prog := nixAttr(t, expr, "amd.copyToRegistry")
	m := r.mark()
	out := run(filepath.Join(prog, "bin", "copyToRegistry"), "--quiet")
	if tr := r.traffic(m, "nix/app"); tr.manifestPuts != 3 || len(tr.blobsSent) < 2 || !strings.Contains(out, "SBOM attached") {
		t.Errorf("copyToRegistry: the registry got %+v\n%s", tr, out)
	}
	if out := podmanPullRun(t, r.addr+"/nix/app:t-amd64"); !strings.Contains(out, "hello from nix amd64") {
		t.Errorf("podman run of the pushed buildImage result: %q", out)
	}
	// Again: nothing sent.
	m = r.mark()
	run(filepath.Join(prog, "bin", "copyToRegistry"), "--quiet")
	if tr := r.traffic(m, "nix/app"); tr.manifestPuts != 0 || len(tr.blobsSent) != 0 {
		t.Errorf("second copyToRegistry: %+v", tr)
	}

	// copyTo: a destination as argument, registry and oci:.
	copyTo := filepath.Join(nixAttr(t, expr, "amd.copyTo"), "bin", "copyTo")
	m = r.mark()
	run(copyTo, "--quiet", "docker://"+r.addr+"/elsewhere/app:x")
	// The image's blobs and the referrer's two (the SBOM and the empty
	// config {}) are mounted, none sent.
	if tr := r.traffic(m, "elsewhere/app"); tr.manifestPuts != 3 || len(tr.blobsSent) != 0 || tr.mounts < 4 {
		t.Errorf("copyTo another repository: %+v (want every blob mounted, the referrer's too, none sent)", tr)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	run(copyTo, "oci:"+dir+":copied")
	data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if !strings.Contains(string(data), `"copied"`) {
		t.Errorf("copyTo oci: index.json %s", data)
	}
	if out, err := ocitoolsCmd(t, env, "validate", dir); err != nil {
		t.Errorf("ocitools validate of the oci: copy: %v\n%s", err, out)
	}
	// The SBOM goes with the copy.
	if out, err := ocitoolsCmd(t, env, "sbom", dir); err != nil || !strings.Contains(out, `"bomFormat": "CycloneDX"`) {
		t.Errorf("ocitools sbom of the oci: copy: %v\n%s", err, out)
	}

	// copyToPodman, into a podman storage of the test's own.
	storage := t.TempDir()
	conf := filepath.Join(storage, "storage.conf")
	_ = os.WriteFile(conf, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(storage, "g"), filepath.Join(storage, "r"))), 0o644)
	penv := append(env, "CONTAINERS_STORAGE_CONF="+conf)
	cmd := exec.Command(filepath.Join(nixAttr(t, expr, "amd.copyToPodman"), "bin", "copyToPodman"))
	cmd.Env = append(os.Environ(), penv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copyToPodman: %v\n%s", err, out)
	}
	imgs := exec.Command("podman", "images", "--format", "{{.Repository}}:{{.Tag}}")
	imgs.Env = cmd.Env
	if out, err := imgs.CombinedOutput(); err != nil || !strings.Contains(string(out), r.addr+"/nix/app:t-amd64") {
		t.Errorf("podman images after copyToPodman: %v\n%s", err, out)
	}
	defer func() {
		reset := exec.Command("podman", "system", "reset", "--force")
		reset.Env = cmd.Env
		_ = reset.Run()
	}()

	// copyToDockerDaemon without docker on PATH: says what is missing.
	dd := exec.Command(filepath.Join(nixAttr(t, expr, "amd.copyToDockerDaemon"), "bin", "copyToDockerDaemon"))
	dd.Env = append(os.Environ(), "PATH=/nonexistent")
	if out, err := dd.CombinedOutput(); err == nil || !strings.Contains(string(out), "docker is not installed") {
		t.Errorf("copyToDockerDaemon without docker: %v\n%s", err, out)
	}

	// copyToDockerDaemon into a dockerd of the test's own; docker runs it.
	d := startDockerd(t)
	dd = exec.Command(filepath.Join(nixAttr(t, expr, "amd.copyToDockerDaemon"), "bin", "copyToDockerDaemon"))
	dd.Env = append(os.Environ(), append(env, "DOCKER_HOST=unix://"+d.sock)...)
	if out, err := dd.CombinedOutput(); err != nil {
		t.Fatalf("copyToDockerDaemon: %v\n%s", err, out)
	}
	if out, errs, err := d.run(2*time.Minute, "run", "--rm", "--network", "none", r.addr+"/nix/app:t-amd64"); err != nil || !strings.Contains(out, "hello from nix amd64") {
		t.Errorf("docker run after copyToDockerDaemon: %v\n%s%s", err, out, errs)
	}

	// buildIndex: both arches in one index, pushed by its own copy program.
	idx := nixAttr(t, expr, "index")
	for _, attr := range []string{"index", "index.copyToRegistry"} {
		nixAttr(t, expr, attr)
		if _, log, err := nixBuildResult(t, expr, "-A", attr, "--check"); err != nil {
			t.Errorf("nix-build -A %s --check: not reproducible: %v\n%s", attr, err, log)
		}
	}
	// Its blobs are links to the images' blobs: validate follows them and
	// checks their digests.
	if out, err := exec.Command(ocitoolsBin, "validate", idx).CombinedOutput(); err != nil {
		t.Errorf("ocitools validate %s: %v\n%s", idx, err, out)
	}
	fi, err := os.Lstat(filepath.Join(idx, "blobs", "sha256"))
	if err != nil || !fi.IsDir() {
		t.Fatalf("index layout: %v", err)
	}
	m = r.mark()
	run(filepath.Join(nixAttr(t, expr, "index.copyToRegistry"), "bin", "copyToRegistry"), "--quiet")
	// The two images and the index, then each image's SBOM: its referrer
	// and the sha256-<hex> index this registry needs (no referrers API).
	if tr := r.traffic(m, "nix/multi"); tr.manifestPuts != 3+2*referrerManifestPuts {
		t.Errorf("index push: %+v", tr)
	}
	for _, arch := range []string{"amd", "arm"} {
		img := readImage(t, nixAttr(t, expr, arch))
		want, _ := os.ReadFile(filepath.Join(img.dir, "sbom.cdx.json"))
		got, err := ocitoolsCmdOut(t, env, "sbom", r.addr+"/nix/multi@"+img.index.Manifests[0].Digest.String())
		if err != nil || len(want) == 0 || string(got) != string(want) {
			t.Errorf("ocitools sbom of the %s image in the index: %v", arch, err)
		}
	}
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+r.addr+"/nix/multi:both").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	var index struct {
		Manifests []struct{ Platform struct{ Architecture string } }
	}
	_ = json.Unmarshal(raw, &index)
	var arches []string
	for _, m := range index.Manifests {
		arches = append(arches, m.Platform.Architecture)
	}
	if strings.Join(arches, ",") != "amd64,arm64" {
		t.Errorf("index platforms %v\n%s", arches, raw)
	}
	if out := podmanPullRun(t, r.addr+"/nix/multi:both"); !strings.Contains(out, "hello from nix amd64") {
		t.Errorf("podman run of the index: %q", out)
	}

	// Bad buildIndex arguments fail at evaluation with a clear message.
	for _, tc := range []struct{ expr, want string }{
		{`(import ` + repoRoot + `/nix/registry.nix { ocitools = ` + filepath.Dir(filepath.Dir(ocitoolsBin)) + `; }).buildIndex { name = "x"; tag = "1"; images = [ ]; }`, "buildIndex: `images` must not be empty"},
		{`(import ` + repoRoot + `/nix/registry.nix { ocitools = ` + filepath.Dir(filepath.Dir(ocitoolsBin)) + `; }).buildIndex { name = "X Y"; tag = "1"; images = [ "/nix/store/x" ]; }`, "buildIndex: `name` must be an image name"},
		{`(import ` + repoRoot + `/nix/registry.nix { ocitools = ` + filepath.Dir(filepath.Dir(ocitoolsBin)) + `; }).buildIndex { name = "x"; tag = "1"; imgs = [ ]; }`, "unknown argument `imgs`"},
	} {
		if log := nixBuildFail(t, tc.expr); !strings.Contains(log, tc.want) {
			t.Errorf("%s: log lacks %q:\n%s", tc.expr, tc.want, log)
		}
	}
}
