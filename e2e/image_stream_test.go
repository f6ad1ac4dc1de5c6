package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 16: streamed images (ociTools.streamImage) store the manifest, the
// config and stream.json; every reader makes the layers again, byte-identical
// to buildImage's, and a layer that comes out different stops the copy before
// any manifest is written.

func streamExpr(compression string) string {
	return strings.Replace(imageExpr(compression), "ociTools.buildImage {", "ociTools.streamImage {", 1)
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// storedBytes is the size of the regular files under dir (symlinks are not
// followed: a link into another store path costs that path nothing more).
func storedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImageStreamed(t *testing.T) {
	requireTools(t, "skopeo", "podman", "docker-registry", "dockerd", "docker")
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	for _, comp := range []string{"gzip", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			stored := readImage(t, nixBuildImage(t, imageExpr(comp)))
			// nixBuildImage validates the layout: every streamed layer is
			// made again and checked by `ocitools validate`.
			streamed := readImage(t, nixBuildImage(t, streamExpr(comp)))
			if s, d := streamed.index.Manifests[0].Digest, stored.index.Manifests[0].Digest; s != d {
				t.Fatalf("streamed manifest %s, stored %s: not the same image", s, d)
			}
			if _, err := os.Stat(filepath.Join(streamed.dir, "stream.json")); err != nil {
				t.Fatalf("no stream.json: %v", err)
			}
			for i, l := range streamed.manifest.Layers {
				_, err := os.Lstat(streamed.blob(l.Digest.Encoded()))
				if i == 0 && err != nil {
					t.Errorf("the buildLayer blob (a link) is missing: %v", err)
				}
				if i > 0 && !os.IsNotExist(err) {
					t.Errorf("layer %d (%s) is stored in the streamed image", i, l.Digest)
				}
			}
			if n := storedBytes(t, streamed.dir); n > 64<<10 {
				t.Errorf("the streamed image stores %d bytes, want a few KiB", n)
			}
			t.Logf("%s: stored image %d bytes, streamed %d bytes", comp, storedBytes(t, stored.dir), storedBytes(t, streamed.dir))

			// archive (docker load's file): the same bytes from both.
			a := nixBuild(t, archivesExpr(imageExpr(comp), "toArchive"))
			b := nixBuild(t, archivesExpr(streamExpr(comp), "toArchive"))
			if fileSHA(t, a) != fileSHA(t, b) {
				t.Errorf("the streamed image's archive differs from the stored image's")
			}

			// push: the registry gets the stored image's manifest digest.
			ref := r.addr + "/stream/" + comp + ":t"
			m := r.mark()
			push(t, env, streamed.dir, ref)
			tr := r.traffic(m, "stream/"+comp)
			if tr.manifestPuts != 1+referrerManifestPuts || len(imageBlobsSent(t, tr, streamed.dir)) != len(stored.manifest.Layers)+1 {
				t.Errorf("push of the streamed image: %+v, want %d blobs and 1 manifest (and the SBOM referrer's)", tr, len(stored.manifest.Layers)+1)
			}
			raw := mustRun(t, time.Minute, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
			if sum := sha256.Sum256([]byte(raw)); "sha256:"+hex.EncodeToString(sum[:]) != string(stored.index.Manifests[0].Digest) {
				t.Errorf("the registry holds another manifest than the stored image's")
			}

			// unpack straight from the streamed layout.
			bundle := filepath.Join(t.TempDir(), "bundle")
			if out, err := ocitoolsCmd(t, env, "unpack", streamed.dir, bundle); err != nil {
				t.Fatalf("ocitools unpack of the streamed image: %v\n%s", err, out)
			}
			if data, err := os.ReadFile(filepath.Join(bundle, "rootfs", "msg")); err != nil || strings.TrimSpace(string(data)) != "from-root" {
				t.Errorf("unpacked /msg: %q, %v", data, err)
			}

			// copyTo oci: and copyToPodman, the programs the image carries.
			dir := filepath.Join(t.TempDir(), "copy")
			copyTo := filepath.Join(nixAttr(t, streamExpr(comp), "copyTo"), "bin", "copyTo")
			if out, err := exec.Command(copyTo, "oci:"+dir+":copied").CombinedOutput(); err != nil {
				t.Fatalf("copyTo oci: of the streamed image: %v\n%s", err, out)
			}
			if out, err := ocitoolsCmd(t, env, "validate", dir); err != nil {
				t.Errorf("ocitools validate of the oci: copy: %v\n%s", err, out)
			}
			if comp == "gzip" {
				copyToPodmanRuns(t, nixAttr(t, streamExpr(comp), "copyToPodman"))
				// copyToDockerDaemon, into a dockerd of the test's own.
				d := startDockerd(t)
				dd := exec.Command(filepath.Join(nixAttr(t, streamExpr(comp), "copyToDockerDaemon"), "bin", "copyToDockerDaemon"), "streamed/app:docker")
				dd.Env = append(os.Environ(), append(env, "DOCKER_HOST=unix://"+d.sock)...)
				if out, err := dd.CombinedOutput(); err != nil {
					t.Fatalf("copyToDockerDaemon of the streamed image: %v\n%s", err, out)
				}
				out, errs, err := d.run(2*time.Minute, "run", "--rm", "--network", "none", "streamed/app:docker")
				if err != nil {
					t.Fatalf("docker run of the streamed image: %v\n%s%s", err, out, errs)
				}
				wantRan(t, "docker run of the streamed image", out)
			}
		})
	}
}

// copyToPodmanRuns loads an image with its copyToPodman program into a podman
// storage of the test's own and runs it.
func copyToPodmanRuns(t *testing.T, prog string) {
	t.Helper()
	storage := t.TempDir()
	conf := filepath.Join(storage, "storage.conf")
	if err := os.WriteFile(conf, []byte("[storage]\ndriver = \"vfs\"\ngraphroot = \""+filepath.Join(storage, "g")+"\"\nrunroot = \""+filepath.Join(storage, "r")+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	penv := append(os.Environ(), append(isolatedEnv(t), "CONTAINERS_STORAGE_CONF="+conf)...)
	t.Cleanup(func() {
		reset := exec.Command("podman", "system", "reset", "--force")
		reset.Env = penv
		_ = reset.Run()
	})
	cmd := exec.Command(filepath.Join(prog, "bin", "copyToPodman"), "streamed/app:loaded")
	cmd.Env = penv
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copyToPodman: %v\n%s", err, out)
	}
	run := exec.Command("podman", "run", "--rm", "--network", "none", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "streamed/app:loaded")
	run.Env = penv
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("podman run of the loaded streamed image: %v\n%s", err, out)
	}
	wantRan(t, "podman run of the streamed image", string(out))
}

// A streamed layer that comes out different (here: stream.json edited so
// that the layer is made with another owner) stops push and archive with an
// error naming the layer, and no manifest reaches the registry.
func TestImageStreamedMismatch(t *testing.T) {
	requireTools(t, "docker-registry")
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	src := nixBuildImage(t, streamExpr("zstd"))
	dir := filepath.Join(t.TempDir(), "edited")
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	_ = exec.Command("chmod", "-R", "u+w", dir).Run()
	var rec map[string]any
	readJSONFile(t, filepath.Join(dir, "stream.json"), &rec)
	layers := rec["layers"].([]any)
	first := layers[0].(map[string]any)
	first["spec"].(map[string]any)["UID"] = 4242
	data, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, "stream.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	out := pushFails(t, env, dir, r.addr+"/mismatch/app:t")
	for _, want := range []string{first["digest"].(string), "came out as", "refusing"} {
		if !strings.Contains(out, want) {
			t.Errorf("push's error does not say %q:\n%s", want, out)
		}
	}
	if tr := r.traffic(m, "mismatch/app"); tr.manifestPuts != 0 {
		t.Errorf("a manifest reached the registry after the mismatch: %+v", tr)
	}
	arch := filepath.Join(t.TempDir(), "a.tar")
	if out, err := ocitoolsCmd(t, env, "archive", dir, arch); err == nil || !strings.Contains(out, "came out as") {
		t.Errorf("archive of the edited streamed image: %v\n%s", err, out)
	}
}
