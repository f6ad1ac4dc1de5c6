package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// umociBase packs, with umoci (not ocitools), a busybox base image in a new
// layout: /bin/busybox with sh, cat and echo, /etc/base-release saying
// release. Tags: "amd" (linux/amd64) and "arm" (the same with linux/arm64).
func umociBase(t *testing.T, dir, release string) string {
	t.Helper()
	requireTools(t, "umoci")
	l := filepath.Join(dir, "layout")
	mustRun(t, 2*time.Minute, "umoci", "init", "--layout", l)
	mustRun(t, 2*time.Minute, "umoci", "new", "--image", l+":amd")
	umociLayer(t, l, func(rootfs string) {
		for _, d := range []string{"bin", "etc"} {
			must(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
		}
		data, err := os.ReadFile(filepath.Join(busyboxDir, "bin", "busybox"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755))
		for _, applet := range []string{"sh", "cat", "echo"} {
			must(t, os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)))
		}
		must(t, os.WriteFile(filepath.Join(rootfs, "etc/base-release"), []byte(release+"\n"), 0o644))
	})
	mustRun(t, 2*time.Minute, "umoci", "config", "--image", l+":amd", "--os", "linux", "--architecture", "amd64",
		"--config.cmd", "/bin/sh", "--config.env", "PATH=/usr/bin:/bin", "--config.label", "from=umoci", "--config.workingdir", "/etc")
	mustRun(t, 2*time.Minute, "umoci", "config", "--image", l+":amd", "--tag", "arm", "--architecture", "arm64")
	return l
}

// umociLayer adds to layout's "amd" image a layer of what change does to
// its unpacked rootfs.
func umociLayer(t *testing.T, layout string, change func(rootfs string)) {
	t.Helper()
	b := filepath.Join(t.TempDir(), "bundle")
	mustRun(t, 2*time.Minute, "umoci", "unpack", "--image", layout+":amd", b)
	change(filepath.Join(b, "rootfs"))
	mustRun(t, 2*time.Minute, "umoci", "repack", "--image", layout+":amd", b)
}

// blobGets counts the blob downloads of repo in the registry's log since mark.
func (r *testRegistry) blobGets(from int, repo string) int {
	n := 0
	for _, l := range r.logLines(from) {
		if m := accessRe.FindStringSubmatch(l); m != nil && m[1] == "GET" && strings.HasPrefix(m[2], "/v2/"+repo+"/blobs/sha256:") && m[3] == "200" {
			n++
		}
	}
	return n
}

var gotHashRe = regexp.MustCompile(`got:\s+(sha256-[A-Za-z0-9+/=]+)`)

// TestBaseImage: a base image packed by umoci and pushed by skopeo is pulled
// inside a sandboxed nix-build (pullImage from an index digest with a
// platform, and pullImageFromLock from `ocitools lock`), built on with
// fromImage, validated, run by podman and docker (a program of the base and
// a store path), and pushed sending only the new layers.
func TestBaseImage(t *testing.T) {
	requireTools(t, "umoci", "skopeo", "podman")
	reg := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	work := t.TempDir()
	base := umociBase(t, filepath.Join(work, "v1"), "base 1")
	// A two-platform index: each platform's layout by skopeo, the index by build-index.
	amd, arm := filepath.Join(work, "amd"), filepath.Join(work, "arm")
	mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "oci:"+base+":amd", "oci:"+amd+":amd")
	mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "oci:"+base+":arm", "oci:"+arm+":arm")
	idx := filepath.Join(work, "index")
	if out, err := ocitoolsCmd(t, env, "build-index", "--out", idx, "--tag", "1", amd, arm); err != nil {
		t.Fatalf("build-index: %v\n%s", err, out)
	}
	if out, err := ocitoolsCmd(t, env, "push", "--quiet", idx, reg.addr+"/base:1"); err != nil {
		t.Fatalf("push of the base: %v\n%s", err, out)
	}
	var index v1.Index
	readJSONFile(t, filepath.Join(idx, "index.json"), &index)
	indexDigest := index.Manifests[0].Digest.String()

	// pull --platform fetches one image of the index.
	one := filepath.Join(work, "one")
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", "--platform", "linux/arm64", reg.addr+"/base:1", one); err != nil {
		t.Fatalf("pull --platform: %v\n%s", err, out)
	}
	var pulled v1.Index
	readJSONFile(t, filepath.Join(one, "index.json"), &pulled)
	if len(pulled.Manifests) != 1 || pulled.Manifests[0].Platform == nil || pulled.Manifests[0].Platform.Architecture != "arm64" || len(layoutBlobs(t, one)) != 3 {
		t.Errorf("pull --platform linux/arm64: index.json %+v, %d blobs; want the arm64 manifest, its config and layer", pulled.Manifests, len(layoutBlobs(t, one)))
	}

	// unpack of a registry reference fetches this machine's image only: its
	// config and layer, not the arm64 config.
	mark := reg.mark()
	if out, err := ocitoolsCmd(t, env, "unpack", reg.addr+"/base:1", filepath.Join(work, "bundle")); err != nil {
		t.Fatalf("unpack of a registry reference: %v\n%s", err, out)
	}
	if n := reg.blobGets(mark, "base"); n != 2 {
		t.Errorf("unpack of a two-platform index downloaded %d blobs, want 2 (one platform's config and layer)", n)
	}

	// The lock file, for this machine's platform.
	lockOut, err := ocitoolsCmd(t, env, "lock", reg.addr+"/base:1")
	if err != nil {
		t.Fatalf("lock: %v\n%s", err, lockOut)
	}
	lockFile := filepath.Join(work, "base.lock.json")
	must(t, os.WriteFile(lockFile, []byte(lockOut), 0o644))
	var lock struct {
		ImageDigest string
		Platform    v1.Platform
		Blobs       []v1.Descriptor
	}
	if err := json.Unmarshal([]byte(lockOut), &lock); err != nil || lock.Platform.Architecture != "amd64" || len(lock.Blobs) != 2 {
		t.Fatalf("lock printed %s (%v): want the amd64 image with its config and layer", lockOut, err)
	}

	pullExpr := func(hash string) string {
		return fmt.Sprintf(`ociTools.pullImage { imageName = "%s/base"; imageDigest = "%s"; tag = "1"; platform = "linux/amd64"; hash = "%s"; }`, reg.addr, indexDigest, hash)
	}
	// The first build with no hash says which one to write, as fetchurl does.
	log := nixBuildFail(t, pullExpr(""))
	m := gotHashRe.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("pullImage with hash = \"\" does not say the hash:\n%s", log)
	}
	pullOut := nixBuild(t, pullExpr(m[1]))
	if _, log, err := nixBuildResult(t, pullExpr(m[1]), "--check"); err != nil {
		t.Fatalf("pullImage is not reproducible (nix-build --check): %v\n%s", err, log)
	}
	lockedOut := nixBuild(t, fmt.Sprintf("ociTools.pullImageFromLock %s", lockFile))
	for _, p := range []string{pullOut, lockedOut} {
		if out, err := ocitoolsCmd(t, env, "validate", p); err != nil {
			t.Errorf("validate %s: %v\n%s", p, err, out)
		}
	}

	app := func(baseExpr string) string {
		return fmt.Sprintf(`let
  base = %s;
  hello = writeScript "hello" "#!/bin/sh\necho from-nix $GREETING; /bin/cat /etc/base-release; echo \"PATH=$PATH\"\n";
in ociTools.buildImage { name = "app"; tag = "1"; fromImage = base; arch = "amd64";
  config = { Entrypoint = [ "${hello}" ]; Env = [ "GREETING=hi" "PATH=/opt/bin" ]; }; }`, baseExpr)
	}
	var outs []string
	for _, baseExpr := range []string{pullExpr(m[1]), "ociTools.pullImageFromLock " + lockFile} {
		out := nixBuild(t, app(baseExpr))
		if o, err := ocitoolsCmd(t, env, "validate", out); err != nil {
			t.Errorf("validate: %v\n%s", err, o)
		}
		outs = append(outs, out)
	}
	// Both bases are the same image: so are the images built on them (the
	// same manifest; the store paths differ, their inputs do).
	if a, b := mustReadFile(t, filepath.Join(outs[0], "index.json")), mustReadFile(t, filepath.Join(outs[1], "index.json")); a != b {
		t.Errorf("on pullImage: %s, on pullImageFromLock: %s; want the same manifest", a, b)
	}
	out := outs[0]
	newLayers := checkOnBase(t, out, amd)
	podman := podmanCmd(t)
	o, e, err := podman(append(podmanRun, "oci:"+out+":1")...)
	if err != nil {
		t.Fatalf("podman run: %v\n%s%s", err, o, e)
	}
	if want := "from-nix hi\nbase 1\nPATH=/opt/bin:/usr/bin:/bin\n"; o != want {
		t.Errorf("podman run printed %q, want %q", o, want)
	}
	runInDocker(t, app(pullExpr(m[1])))
	// To another repository, with no record of where blobs are: the base's
	// layer is mounted from the repository the base.name annotation names.
	mark = reg.mark()
	if o, err := ocitoolsCmd(t, isolatedEnv(t), "push", "--quiet", out, reg.addr+"/app:1"); err != nil {
		t.Fatalf("push: %v\n%s", err, o)
	}
	if tr := reg.traffic(mark, "app"); len(imageBlobsSent(t, tr, out)) != newLayers+1 || tr.mounts != 1 {
		t.Errorf("push to another repository sent %d blobs (%v; the SBOM referrer's left out), mounted %d; want the base's layer mounted from there, the %d new layers and the config sent", len(imageBlobsSent(t, tr, out)), tr.blobsSent, tr.mounts, newLayers)
	}

	// Pushed to the base's repository: only the new layer and the config go.
	mark = reg.mark()
	if o, err := ocitoolsCmd(t, isolatedEnv(t), "push", "--quiet", out, reg.addr+"/base:app"); err != nil {
		t.Fatalf("push: %v\n%s", err, o)
	}
	if tr := reg.traffic(mark, "base"); len(imageBlobsSent(t, tr, out)) != newLayers+1 || tr.mounts != 0 {
		t.Errorf("push to the base's repository sent %d blobs (%v; the SBOM referrer's left out), mounted %d; want the %d new layers and the config", len(imageBlobsSent(t, tr, out)), tr.blobsSent, tr.mounts, newLayers)
	}

	// A base of another platform is refused at evaluation, naming both.
	wrong := fmt.Sprintf(`ociTools.buildImage { name = "x"; arch = "amd64"; fromImage = ociTools.pullImage { imageName = "%s/base"; imageDigest = "%s"; platform = "linux/arm64"; hash = ""; }; config.Cmd = [ "/bin/sh" ]; }`, reg.addr, indexDigest)
	if log := nixBuildFail(t, wrong); !strings.Contains(log, "is an image for linux/arm64, but this image is for linux/amd64") {
		t.Errorf("a base of another platform: the error does not name both:\n%s", log)
	}

	// A new version of the base shares its first layer: from its lock file
	// only the new layer and config are downloaded.
	v2 := filepath.Join(work, "v2")
	mustRun(t, time.Minute, "cp", "-a", base, v2)
	umociLayer(t, v2, func(rootfs string) {
		must(t, os.WriteFile(filepath.Join(rootfs, "etc/extra"), []byte("extra\n"), 0o644))
	})
	mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:"+v2+":amd", "docker://"+reg.addr+"/base2:2")
	lock2, err := ocitoolsCmd(t, env, "lock", reg.addr+"/base2:2")
	if err != nil {
		t.Fatalf("lock: %v\n%s", err, lock2)
	}
	lock2File := filepath.Join(work, "base2.lock.json")
	must(t, os.WriteFile(lock2File, []byte(lock2), 0o644))
	mark = reg.mark()
	out2 := nixBuild(t, "ociTools.pullImageFromLock "+lock2File)
	if n := reg.blobGets(mark, "base2"); n != 2 {
		t.Errorf("pullImageFromLock of the new version downloaded %d blobs, want 2 (the new layer and config; the first layer is in the store)", n)
	}
	if o, err := ocitoolsCmd(t, env, "validate", out2); err != nil {
		t.Errorf("validate: %v\n%s", err, o)
	}
}

// checkOnBase: the image's first layer is the base's, the same bytes (a link
// to the base's blob), and its history and diff_ids match its layers.
// It returns the number of the image's own layers.
func checkOnBase(t *testing.T, out, baseLayout string) int {
	t.Helper()
	var idx v1.Index
	var m, bm v1.Manifest
	var cfg v1.Image
	readJSONFile(t, filepath.Join(out, "index.json"), &idx)
	readJSONFile(t, filepath.Join(out, "blobs/sha256", idx.Manifests[0].Digest.Encoded()), &m)
	readJSONFile(t, filepath.Join(out, "blobs/sha256", m.Config.Digest.Encoded()), &cfg)
	var bidx v1.Index
	readJSONFile(t, filepath.Join(baseLayout, "index.json"), &bidx)
	readJSONFile(t, filepath.Join(baseLayout, "blobs/sha256", bidx.Manifests[0].Digest.Encoded()), &bm)
	if len(m.Layers) < 2 || m.Layers[0].Digest != bm.Layers[0].Digest {
		t.Fatalf("layers %v: want the base's %s first", m.Layers, bm.Layers[0].Digest)
	}
	if fi, err := os.Lstat(filepath.Join(out, "blobs/sha256", bm.Layers[0].Digest.Encoded())); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the base's layer is not a link to the base's blob (%v)", err)
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || nonEmpty != len(m.Layers) {
		t.Errorf("%d layers, %d diff_ids, %d history entries with a layer", len(m.Layers), len(cfg.RootFS.DiffIDs), nonEmpty)
	}
	if cfg.Config.Labels["from"] != "umoci" || cfg.Config.WorkingDir != "/etc" || cfg.Config.Cmd != nil {
		t.Errorf("config %+v: want the base's label and WorkingDir, and no Cmd (the Entrypoint given replaces the base's)", cfg.Config)
	}
	if m.Annotations[v1.AnnotationBaseImageDigest] != bidx.Manifests[0].Digest.String() {
		t.Errorf("annotations %v: want %s = the base's manifest", m.Annotations, v1.AnnotationBaseImageDigest)
	}
	return len(m.Layers) - len(bm.Layers)
}

// runInDocker loads the image's archive into a private dockerd and runs it.
func runInDocker(t *testing.T, expr string) {
	t.Helper()
	archive := nixBuild(t, "("+expr+").archive")
	d := startDockerd(t)
	if o, e, err := d.run(3*time.Minute, "load", "--input", archive); err != nil {
		t.Fatalf("docker load: %v\n%s%s", err, o, e)
	}
	o, e, err := d.run(3*time.Minute, "run", "--rm", "--network", "none", "app:1")
	if err != nil {
		t.Fatalf("docker run: %v\n%s%s", err, o, e)
	}
	if !strings.Contains(o, "from-nix hi\nbase 1\n") {
		t.Errorf("docker run printed %q", o)
	}
}

// TestBaseImageHostile: a base is carried as it is and dealt with where it
// would act. Its whiteout is applied when the image is unpacked, its dot-dot
// entry refused there; a base layer whose bytes do not match its digest fails
// the build before anything is written.
func TestBaseImageHostile(t *testing.T) {
	requireE2E(t)
	env := isolatedEnv(t)
	makeBase := func(escape bool) string {
		dir := filepath.Join(t.TempDir(), "base")
		w := newLayout(t, dir)
		lower := w.layer(append(append([]tarEntry{}, baseEntries(t)...),
			tarEntry{name: "old/", mode: 0o755, dir: true}, tarEntry{name: "old/x", mode: 0o644, data: []byte("x")}))
		upperEntries := []tarEntry{{name: ".wh.old", mode: 0o644}}
		if escape {
			upperEntries = append(upperEntries, tarEntry{name: "../../escape", mode: 0o644, data: []byte("escaped")})
		}
		w.image("amd64", []string{"/bin/sh"}, []desc{lower, w.layer(upperEntries)}, "base")
		return dir
	}
	build := func(base string) (string, string, error) {
		return nixBuildResult(t, fmt.Sprintf(`ociTools.buildImage { name = "on-hostile"; tag = "1"; arch = "amd64";
  fromImage = builtins.path { path = %s; name = "base"; };
  config.Entrypoint = [ "${busybox}/bin/sh" "-c" "/bin/cat /etc/nothing; ls /" ]; }`, base))
	}
	unpackTo := func(image string) (string, string, error) {
		bundle := filepath.Join(t.TempDir(), "bundle")
		out, err := ocitoolsCmd(t, env, "unpack", "--platform", "linux/amd64", image, bundle)
		return bundle, out, err
	}

	out, log, err := build(makeBase(false))
	if err != nil {
		t.Fatalf("nix-build on a base with a whiteout: %v\n%s", err, log)
	}
	bundle, msg, err := unpackTo(out)
	if err != nil {
		t.Fatalf("unpack: %v\n%s", err, msg)
	}
	if _, err := os.Lstat(filepath.Join(bundle, "rootfs/old")); !os.IsNotExist(err) {
		t.Errorf("/old survived the base's whiteout (%v)", err)
	}

	out, log, err = build(makeBase(true))
	if err != nil {
		t.Fatalf("nix-build on a base with a dot-dot entry: %v\n%s", err, log)
	}
	bundle, msg, err = unpackTo(out)
	if err == nil || !strings.Contains(msg, `".."`) {
		t.Errorf("unpack of an image on a base with ../../escape: %v, want it refused\n%s", err, msg)
	}
	if _, err := os.Lstat(bundle); !os.IsNotExist(err) {
		t.Errorf("the refused unpack left %s", bundle)
	}

	// The same base, its first layer's bytes changed (same size).
	tampered := makeBase(false)
	var idx v1.Index
	var m v1.Manifest
	readJSONFile(t, filepath.Join(tampered, "index.json"), &idx)
	readJSONFile(t, filepath.Join(tampered, "blobs/sha256", idx.Manifests[0].Digest.Encoded()), &m)
	p := filepath.Join(tampered, "blobs/sha256", m.Layers[0].Digest.Encoded())
	data, err := os.ReadFile(p)
	must(t, err)
	data[len(data)/2] ^= 0xff
	must(t, os.WriteFile(p, data, 0o644))
	expr := fmt.Sprintf(`ociTools.buildImage { name = "on-tampered"; arch = "amd64"; fromImage = builtins.path { path = %s; name = "base"; }; config.Cmd = [ "/bin/sh" ]; }`, tampered)
	if log := nixBuildFail(t, expr); !strings.Contains(log, "`fromImage`") || !strings.Contains(log, "layer 1") {
		t.Errorf("a tampered base layer: the error does not name fromImage and the layer:\n%s", log)
	}
	wantNoOutput(t, expr)
}

// TestPullImageAuthTLS: pullImage and pullImageFromLock from a registry with
// TLS (a private CA, caFile) and basic auth. Inside the sandbox the
// credentials come from $REGISTRY_AUTH_FILE, passed as an impure variable,
// with the file let in by extra-sandbox-paths; without it the fetch fails
// saying that credentials are missing.
func TestPullImageAuthTLS(t *testing.T) {
	r := startRegistry(t, registryOpts{tls: true, auth: true})
	env := isolatedEnv(t)
	img := filepath.Join(t.TempDir(), "img")
	// A new image each run: fixed-output paths already in the store are not fetched again.
	testImage(t, img, "amd64", randomID("hello through TLS "), "v1")
	ref := r.addr + "/sec/base:v1"
	if out, err := ocitoolsCmd(t, env, "push", "--quiet", "--ca", r.caFile, "--creds", r.user+":"+r.pass, img, ref); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	lockOut, err := ocitoolsCmd(t, env, "lock", "--ca", r.caFile, "--creds", r.user+":"+r.pass, "--platform", "linux/amd64", ref)
	if err != nil {
		t.Fatalf("lock: %v\n%s", err, lockOut)
	}
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	lockFile, authFile := filepath.Join(dir, "base.lock.json"), filepath.Join(dir, "auth.json")
	must(t, os.WriteFile(lockFile, []byte(lockOut), 0o644))
	// Readable by the build users: the sandbox runs the fetch as one of them.
	auth := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.addr, base64.StdEncoding.EncodeToString([]byte(r.user+":"+r.pass)))
	must(t, os.WriteFile(authFile, []byte(auth), 0o644))
	var lock struct{ ImageDigest string }
	must(t, json.Unmarshal([]byte(lockOut), &lock))

	build := func(expr string, withAuth bool, extra ...string) (string, string, error) {
		args := append([]string{nixFile(t, expr)}, nixFlags...)
		args = append(args, extra...)
		cmd := exec.Command("nix-build", args...)
		cmd.Env = append(os.Environ(), "REGISTRY_AUTH_FILE=")
		if withAuth {
			cmd.Env = append(cmd.Env, "REGISTRY_AUTH_FILE="+authFile)
			cmd.Args = append(cmd.Args, "--option", "extra-sandbox-paths", authFile)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return strings.TrimSpace(stdout.String()), stderr.String(), err
	}
	locked := fmt.Sprintf(`ociTools.pullImageFromLock { lockFile = %s; caFile = %s; }`, lockFile, r.caFile)
	if _, log, err := build(locked, false); err == nil || !strings.Contains(log, "asks for credentials") {
		t.Errorf("pullImageFromLock without credentials: %v, want a failure saying credentials are missing\n%s", err, log)
	}
	out, log, err := build(locked, true)
	if err != nil {
		t.Fatalf("pullImageFromLock with $REGISTRY_AUTH_FILE: %v\n%s", err, log)
	}
	if o, err := ocitoolsCmd(t, env, "validate", out); err != nil {
		t.Errorf("validate: %v\n%s", err, o)
	}
	pull := func(hash string) string {
		return fmt.Sprintf(`ociTools.pullImage { imageName = "%s/sec/base"; imageDigest = "%s"; tag = "v1"; caFile = %s; hash = "%s"; }`, r.addr, lock.ImageDigest, r.caFile, hash)
	}
	_, log, _ = build(pull(""), true)
	m := gotHashRe.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("pullImage with hash = \"\" does not say the hash:\n%s", log)
	}
	out2, log, err := build(pull(m[1]), true)
	if err != nil {
		t.Fatalf("pullImage: %v\n%s", err, log)
	}
	var a, b v1.Index
	readJSONFile(t, filepath.Join(out, "index.json"), &a)
	readJSONFile(t, filepath.Join(out2, "index.json"), &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("pullImage and pullImageFromLock name different images:\n%+v\n%+v", a, b)
	}
}

// TestPullImageNixErrors: pullImage's and pullImageFromLock's arguments are
// checked at evaluation, naming the argument.
func TestPullImageNixErrors(t *testing.T) {
	requireE2E(t)
	d := "sha256:" + strings.Repeat("a", 64)
	lock := filepath.Join(t.TempDir(), "old.lock.json")
	must(t, os.WriteFile(lock, []byte(`{"version":7}`), 0o644))
	for _, tc := range []struct{ expr, want string }{
		{`ociTools.pullImage { imageDigest = "` + d + `"; hash = ""; }`, "pullImage: `imageName` is required"},
		{`ociTools.pullImage { imageName = "r.example/a"; hash = ""; }`, "pullImage: `imageDigest` is required"},
		{`ociTools.pullImage { imageName = "r.example/a"; imageDigest = "latest"; hash = ""; }`, "`imageDigest` must be \"sha256:\""},
		{`ociTools.pullImage { imageName = "r.example/a"; imageDigest = "` + d + `"; }`, "give `hash`"},
		{`ociTools.pullImage { imageName = "r.example/a"; imageDigest = "` + d + `"; hash = ""; platform = "amd64"; }`, "`platform` must be \"os/arch\""},
		{`ociTools.pullImage { imageName = "r.example/a"; imageDigest = "` + d + `"; hash = ""; digest = "x"; }`, "unknown argument `digest`"},
		{`ociTools.pullImage { imageName = "A"; imageDigest = "` + d + `"; hash = ""; }`, "must be REGISTRY[:PORT]/REPOSITORY"},
		{`ociTools.pullImageFromLock ` + lock, "is not a version 1 lock file"},
		{`ociTools.buildImage { name = "x"; fromImage = 3; }`, "`fromImage` must be an OCI image layout"},
	} {
		if log := nixBuildFail(t, tc.expr); !strings.Contains(log, tc.want) {
			t.Errorf("%s: the error does not say %q:\n%s", tc.expr, tc.want, log)
		}
	}
}

// TestFromBuildImage: a buildImage result is a base too (its blobs are
// linked, not copied), and ocitools run runs the image built on it; a base
// built for another architecture is refused at evaluation, naming both.
func TestFromBuildImage(t *testing.T) {
	requireE2E(t)
	expr := `let
  base = ociTools.buildImage { name = "base"; tag = "b"; arch = "amd64"; copyToRoot = [ busybox ]; config.Env = [ "PATH=/bin" "FROM_BASE=yes" ]; };
  hello = writeScript "hello" "#!/bin/sh\necho from-app $FROM_BASE; ls /bin/busybox\n";
in ociTools.buildImage { name = "app"; tag = "a"; arch = "amd64"; fromImage = base; config.Entrypoint = [ "${hello}" ]; }`
	out := nixBuild(t, expr)
	if _, log, err := nixBuildResult(t, expr, "--check"); err != nil {
		t.Errorf("an image on a base is not reproducible (nix-build --check): %v\n%s", err, log)
	}
	if o, err := ocitoolsCmd(t, nil, "validate", out); err != nil {
		t.Errorf("validate: %v\n%s", err, o)
	}
	o, err := exec.Command(ocitoolsBin, "run", out).CombinedOutput()
	if err != nil || !strings.Contains(string(o), "from-app yes\n/bin/busybox\n") {
		t.Errorf("ocitools run: %v\n%s", err, o)
	}
	wrong := `ociTools.buildImage { name = "app"; arch = "amd64"; fromImage = ociTools.buildImage { name = "base"; arch = "aarch64"; config.Cmd = [ "/bin/sh" ]; }; config.Cmd = [ "/bin/sh" ]; }`
	if log := nixBuildFail(t, wrong); !strings.Contains(log, "`fromImage` base is an image for linux/arm64, but this image is for linux/amd64") {
		t.Errorf("a base for arm64 under an amd64 image: the error does not name both:\n%s", log)
	}
}
